from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.db import connection

from tests.helpers import Api


@pytest.mark.django_db
def test_health_is_ok_after_a_database_round_trip() -> None:
    response = Api(None).get("/api/health")
    assert response.status == 200
    assert response.body == {"status": "ok"}


@pytest.fixture
def unreachable_database() -> Iterator[None]:
    """Point the default connection at a database that cannot be reached (a closed port on
    PostgreSQL, a file in a missing folder on SQLite), then restore it."""
    saved = dict(connection.settings_dict)
    connection.close()
    if connection.vendor == "postgresql":
        connection.settings_dict.update(HOST="127.0.0.1", PORT="9", OPTIONS={"connect_timeout": 2})
    else:
        connection.settings_dict["NAME"] = "/nonexistent-folder/tranche.sqlite3"
    try:
        yield
    finally:
        connection.close()
        connection.settings_dict.clear()
        connection.settings_dict.update(saved)


@pytest.mark.django_db(transaction=True)
def test_health_is_503_when_the_database_is_unreachable(unreachable_database: None) -> None:
    response = Api(None).get("/api/health")
    assert response.status == 503
    assert response.body == {"status": "database_unavailable"}
