"""Emails are plain text and HTML: only the HTML part is HTML-escaped."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.core import mail

from tests.billing.helpers import draft_for
from tests.helpers import AfterCommit, Api
from tranche.accounts.models import User
from tranche.notifications.models import OutboxEmail
from tranche.projects.models import Project

pytestmark = pytest.mark.django_db


def test_a_business_name_with_an_apostrophe_and_ampersand_reads_as_written_in_the_subject(
    as_: Callable[[str], Api],
    project_a: Project,
    admin: User,
    after_commit: AfterCommit,
    settings: Any,
) -> None:
    settings.BUSINESS_NAME = "O'Brien & Sons"
    draft = draft_for(project_a, 1, admin)

    with after_commit(execute=True):
        assert (
            as_("admin").post(f"/api/projects/{project_a.pk}/invoices/{draft.pk}/send").status
            == 200
        )

    queued = OutboxEmail.objects.get(kind="invoice_sent")
    [sent] = mail.outbox
    assert sent.subject == queued.subject
    assert queued.subject.startswith("Invoice INV-")
    assert " from O'Brien & Sons: $300.00 due " in queued.subject
    assert "O'Brien & Sons has sent you invoice" in queued.body_text
    assert "O&#x27;Brien &amp; Sons" in queued.body_html
    assert "O'Brien & Sons" not in queued.body_html
