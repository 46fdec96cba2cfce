"""However many workers run, the periodic pass runs once per interval: three worker
processes asking at the same instant get one pass between them, none while the
interval lasts, and one again once it is over."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from django.db import connection

from tranche.billing.services.periodic import periodic_pass_claim

ROOT = Path(__file__).resolve().parents[2]
INTERVAL = timedelta(minutes=15)
START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)

# A worker process: set up, say so, then at each "go <time>" line claim the pass at that
# time and answer whether it runs it.
CLAIMANT = """
import json, sys
from datetime import datetime, timedelta
import django
django.setup()
from tranche.billing.services.periodic import periodic_pass_claim
print("ready", flush=True)
for line in sys.stdin:
    now = datetime.fromisoformat(line.split()[1])
    ran = periodic_pass_claim(interval=timedelta(minutes=15), now=now)
    print(json.dumps(ran), flush=True)
"""


def database_url() -> str:
    settings = connection.settings_dict
    if connection.vendor == "postgresql":
        auth = settings["USER"] + (f":{settings['PASSWORD']}" if settings["PASSWORD"] else "")
        return (
            f"postgresql://{auth}@{settings['HOST']}:{settings['PORT'] or 5432}/{settings['NAME']}"
        )
    return f"sqlite:///{Path(settings['NAME']).resolve()}"


@pytest.mark.django_db
def test_a_worker_claims_the_pass_once_per_interval() -> None:
    assert periodic_pass_claim(interval=INTERVAL, now=START) is True
    assert periodic_pass_claim(interval=INTERVAL, now=START) is False
    assert periodic_pass_claim(interval=INTERVAL, now=START + INTERVAL / 2) is False
    assert periodic_pass_claim(interval=INTERVAL, now=START + INTERVAL) is True


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_three_workers_asking_at_once_run_one_pass_per_interval() -> None:
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "DJANGO_SETTINGS_MODULE": "tranche.settings",
        "DATABASE_URL": database_url(),
    }
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", CLAIMANT],
            env=env,
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    try:
        for worker in workers:
            assert worker.stdout is not None
            assert worker.stdout.readline().strip() == "ready"

        def ask_all(now: datetime) -> list[bool]:
            # Every worker is told before any answer is read: they claim side by side.
            for worker in workers:
                assert worker.stdin is not None
                worker.stdin.write(f"go {now.isoformat()}\n")
                worker.stdin.flush()
            return [json.loads(worker.stdout.readline()) for worker in workers]  # type: ignore[union-attr]

        passes = [
            sum(ask_all(at))
            for at in (
                START,
                START + timedelta(minutes=1),
                START + INTERVAL - timedelta(seconds=1),
                START + INTERVAL,
                START + INTERVAL + timedelta(minutes=5),
                START + 2 * INTERVAL,
            )
        ]
    finally:
        for worker in workers:
            if worker.stdin is not None:
                worker.stdin.close()
            worker.wait(timeout=60)

    assert passes == [1, 0, 0, 1, 0, 1]
