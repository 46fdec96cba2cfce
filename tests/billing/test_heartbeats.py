"""The background jobs say when they last ran (core.Heartbeat): readiness and the
Operations page read it."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from django.utils import timezone

from tranche.core.models import Heartbeat

pytestmark = pytest.mark.django_db


def test_the_worker_writes_its_heartbeat_and_the_periodic_pass_its_summary() -> None:
    started = timezone.now()
    out = io.StringIO()
    call_command("worker", "--once", stdout=out)

    beats = {row.name: row for row in Heartbeat.objects.all()}
    assert set(beats) == {"worker", "tick"}
    assert beats["worker"].seen_at >= started
    assert beats["tick"].seen_at >= started
    assert beats["tick"].summary.startswith("tick: 0 marked overdue")
    assert beats["tick"].summary in out.getvalue()


def test_a_second_run_overwrites_the_row() -> None:
    call_command("tick", stdout=io.StringIO())
    first = Heartbeat.objects.get(name="tick").seen_at
    call_command("tick", stdout=io.StringIO())
    assert Heartbeat.objects.filter(name="tick").count() == 1
    assert Heartbeat.objects.get(name="tick").seen_at >= first


def test_reconcile_records_its_run() -> None:
    call_command("reconcile", stdout=io.StringIO())
    row = Heartbeat.objects.get(name="reconcile")
    assert row.summary == "0 invoice(s) checked, 0 change(s) or problem(s)"
