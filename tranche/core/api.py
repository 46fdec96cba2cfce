from __future__ import annotations

from django.http import HttpRequest
from ninja import Router, Schema

router = Router(tags=["health"])


class HealthOut(Schema):
    status: str


@router.get("/health", auth=None, response={200: HealthOut})
def health(request: HttpRequest) -> HealthOut:
    """Liveness: the process answers. Nothing else is asked, the database least of all: a
    supervisor or load balancer that restarted web processes because the database was
    away would only add to the outage. Readiness, with the database, is /api/ready."""
    return HealthOut(status="ok")
