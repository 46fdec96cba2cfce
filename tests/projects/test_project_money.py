"""A project's contract total is Money in the project's currency."""

from __future__ import annotations

from decimal import Decimal

from tranche.core.money import Money
from tranche.projects.models import Project


def test_a_projects_contract_is_money_in_its_currency() -> None:
    project = Project(currency="JPY", contract_total=Decimal("100001"))
    assert project.contract == Money(Decimal("100001"), "JPY")
    assert (str(project.contract), project.contract.api) == ("¥100,001", "100001")
