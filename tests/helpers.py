"""Test helpers: a JSON API client, and proof that a refused request changed nothing."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Protocol

from django.apps import apps
from django.test import Client

PERSONAS = ("admin", "staff", "alice", "bob", "anonymous")

# (persona, status, code) of everyone refused an admins-only or a staff-only action.
REFUSED_ADMIN_ONLY = [
    ("staff", 403, "admin_only"),
    ("alice", 403, "admin_only"),
    ("bob", 403, "admin_only"),
    ("anonymous", 401, "not_authenticated"),
]
REFUSED_STAFF_ONLY = [
    ("alice", 403, "staff_only"),
    ("bob", 403, "staff_only"),
    ("anonymous", 401, "not_authenticated"),
]


@dataclass
class Response:
    status: int
    body: Any


class Api:
    """A JSON client acting as one persona through a bearer token (or none)."""

    def __init__(self, token: str | None) -> None:
        self.client = Client()
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}

    def request(self, method: str, path: str, body: Any = None, raw: str | None = None) -> Response:
        data = raw if raw is not None else (json.dumps(body) if body is not None else None)
        response = self.client.generic(
            method, path, data=data or "", content_type="application/json", headers=self.headers
        )
        content = response.content
        return Response(response.status_code, json.loads(content) if content else None)

    def get(self, path: str) -> Response:
        return self.request("GET", path)

    def post(self, path: str, body: Any = None, raw: str | None = None) -> Response:
        return self.request("POST", path, body, raw)

    def patch(self, path: str, body: Any = None, raw: str | None = None) -> Response:
        return self.request("PATCH", path, body, raw)

    def put(self, path: str, body: Any = None, raw: str | None = None) -> Response:
        return self.request("PUT", path, body, raw)

    def delete(self, path: str) -> Response:
        return self.request("DELETE", path)


# --- proving that a refused request changed nothing -------------------------------------

_VOLATILE = {"accounts.apitoken": {"last_used_at"}}
# The security log records refusals too (a failed sign-in, a wrong code): a line there is
# the refusal being witnessed, not a change it made. Its tests assert its lines exactly.
# So do the heartbeats: a periodic pass or a reconcile that changed nothing still ran.
_WITNESSES = {"accounts.securityevent", "core.heartbeat"}


def db_state() -> dict[str, list[dict[str, Any]]]:
    """Every row of every Tranche table (tokens without their last-use stamp), but the
    security log's and the heartbeats'."""
    state = {}
    for model in apps.get_models():
        if not model.__module__.startswith("tranche."):
            continue
        label = model._meta.label_lower
        if label in _WITNESSES:
            continue
        skip = _VOLATILE.get(label, set())
        rows = model._default_manager.order_by("pk").values()
        state[label] = [{k: v for k, v in row.items() if k not in skip} for row in rows]
    return state


@contextmanager
def unchanged() -> Iterator[None]:
    before = db_state()
    yield
    after = db_state()
    assert after == before, "the refused request changed the database"


class AfterCommit(Protocol):
    """pytest-django's `django_capture_on_commit_callbacks`: with execute=True, what the
    code under test queued for after commit runs (the test's own transaction never
    commits)."""

    def __call__(self, *, using: str = ..., execute: bool = ...) -> Any: ...
