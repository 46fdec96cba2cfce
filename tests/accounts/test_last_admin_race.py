"""Two admins demote each other at the same moment: one wins, the other is told they
would leave no admin, and the business is never left without one."""

from __future__ import annotations

import itertools
import threading

import pytest

from tests.concurrency import at_once
from tests.factories import UserFactory
from tranche.accounts.models import Role, User
from tranche.accounts.users import user_deactivate, user_set_role
from tranche.core.errors import Conflict

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.parametrize("action", ["demote", "deactivate"])
def test_two_admins_removing_each_other_at_once_leave_one_admin(action: str) -> None:
    first = UserFactory.create(email="first@tranche.example", role=Role.ADMIN)
    second = UserFactory.create(email="second@tranche.example", role=Role.ADMIN)
    pairs = itertools.cycle([(first, second), (second, first)])
    lock = threading.Lock()

    def remove_the_other() -> object:
        with lock:
            actor, target = next(pairs)
        if action == "demote":
            return user_set_role(actor=actor, user_id=target.pk, role=Role.STAFF)
        return user_deactivate(actor=actor, user_id=target.pk)

    results = at_once(2, remove_the_other)

    refused = [r for r in results if isinstance(r, BaseException)]
    assert len(refused) == 1, results
    assert isinstance(refused[0], Conflict)
    assert refused[0].code == "last_admin"
    assert User.objects.filter(role=Role.ADMIN, is_active=True).count() == 1
