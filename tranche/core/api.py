from __future__ import annotations

from django.db import DatabaseError, connection
from django.http import HttpRequest
from ninja import Router, Schema, Status

router = Router(tags=["health"])


class HealthOut(Schema):
    status: str


@router.get("/health", auth=None, response={200: HealthOut, 503: HealthOut})
def health(request: HttpRequest) -> Status[HealthOut]:
    """Up when a real round trip to the database works; 503 when it does not."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except DatabaseError:
        return Status(503, HealthOut(status="database_unavailable"))
    return Status(200, HealthOut(status="ok"))
