"""Property-based: every operation in our own OpenAPI document, called with generated
(valid and invalid) input as an admin, answers without a server error."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from tests.factories import make_project
from tranche.accounts.models import Customer, User
from tranche.accounts.services import token_create
from tranche.wsgi import application

# Reading /api/openapi.json needs no database, so the schema loads at import.
schema = schemathesis.openapi.from_wsgi("/api/openapi.json", application)


@pytest.fixture
def admin_token(db: None, admin: User, customer_a: Customer) -> Iterator[str]:
    # Some rows for generated ids to hit: a customer, a quote, a project, milestones.
    make_project(actor=admin, customer=customer_a)
    # Called straight through WSGI, each request would end by closing the database
    # connection the test runs in; Django's test client disconnects this handler too.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield token_create(user=admin)
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.mark.slow
@schema.parametrize()
@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_no_operation_answers_with_a_server_error(case: Any, admin_token: str) -> None:
    case.call_and_validate(
        headers={"Authorization": f"Bearer {admin_token}"}, checks=[not_a_server_error]
    )
