"""`require_atomic()`: writes that must commit with the caller's change refuse to run alone."""

from __future__ import annotations

import pytest
from django.db import transaction

from tranche.core.db import require_atomic


@pytest.mark.django_db(transaction=True)
def test_outside_a_transaction_it_refuses_with_a_clear_message() -> None:
    with pytest.raises(RuntimeError, match=r"inside the transaction .*`transaction\.atomic\(\)`"):
        require_atomic()


@pytest.mark.django_db(transaction=True)
def test_inside_a_transaction_it_lets_the_caller_go_on() -> None:
    with transaction.atomic():
        require_atomic()
        with transaction.atomic():  # a savepoint is still inside the transaction
            require_atomic()
