from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.security.world import World, world_kept


@pytest.fixture(scope="module")
def world(django_db_setup: Any, django_db_blocker: Any) -> Iterator[World]:
    """The rich world of tests/security/world.py, built once per module and rolled back
    after it; each test runs in a savepoint inside it."""
    with world_kept(django_db_blocker) as built:
        yield built
