from __future__ import annotations

from django.http import HttpRequest
from ninja import Router, Schema, Status

from tranche.notifications.readiness import FAILED, SKIPPED, readiness

router = Router(tags=["health"])


class ReadyOut(Schema):
    status: str  # "ready" or "not_ready"
    checks: dict[str, str]  # check name -> "ok", "failed", "skipped" or "off"
    failed: list[str]


@router.get("/ready", auth=None, response={200: ReadyOut, 503: ReadyOut})
def ready(request: HttpRequest) -> Status[ReadyOut]:
    """Readiness (database, migrations, worker heartbeat, stuck emails): 200 when every
    check passes, 503 naming the ones that did not. For monitoring; a load balancer
    should probe /api/health, since every web machine shares these answers."""
    checks = readiness()
    failed = [name for name, outcome in checks.items() if outcome in (FAILED, SKIPPED)]
    body = ReadyOut(status="not_ready" if failed else "ready", checks=checks, failed=failed)
    return Status(503 if failed else 200, body)
