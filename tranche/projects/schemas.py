"""The JSON shapes of the schedule's writes. Projects as the portal shows them (each
milestone with its invoice) are billing's: billing/schemas.py."""

from __future__ import annotations

from tranche.core.schemas import Flag, Input, Percentage, PlannedDate, Position, Text200


class MilestoneIn(Input):
    title: Text200
    is_billable: Flag = False
    billing_percentage: Percentage | None = None
    planned_date: PlannedDate | None = None
    position: Position | None = None


class MilestonePatch(Input):
    title: Text200 | None = None
    is_billable: Flag | None = None
    billing_percentage: Percentage | None = None
    planned_date: PlannedDate | None = None
    position: Position | None = None
