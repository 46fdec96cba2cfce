"""Schedule edits that can finish a project's billing. Deleting the last pending billable
milestone, or making it non-billable, leaves every billable milestone completed: the
retainage held is then released as completing the last one would have released it
(`retainage.release_when_finished`), in the same transaction as the edit.

The edits themselves are the projects layer's; these wrap them for every entry point."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from tranche.accounts.models import User
from tranche.billing.services.retainage import release_when_finished
from tranche.projects import services as projects_services
from tranche.projects.locks import lock_project
from tranche.projects.models import Milestone
from tranche.projects.selectors import milestones_of


def _release_if_finished(actor: User, project_id: int) -> None:
    project = lock_project(project_id)
    release_when_finished(
        actor=actor, project=project, milestones=milestones_of(project), now=timezone.now()
    )


def milestone_update(
    *, actor: User, project_id: int, milestone_id: int, **changes: Any
) -> Milestone:
    """`projects.services.milestone_update`, then the release if the project is finished."""
    with transaction.atomic():
        milestone = projects_services.milestone_update(
            actor=actor, project_id=project_id, milestone_id=milestone_id, **changes
        )
        if not milestone.is_billable:
            _release_if_finished(actor, project_id)
    return milestone


def milestone_delete(*, actor: User, project_id: int, milestone_id: int) -> None:
    """`projects.services.milestone_delete`, then the release if the project is finished."""
    with transaction.atomic():
        projects_services.milestone_delete(
            actor=actor, project_id=project_id, milestone_id=milestone_id
        )
        _release_if_finished(actor, project_id)
