"""Row locks of projects. Locks are taken in one order everywhere (customer, project,
milestone, invoice): a project's row is locked before any of its invoices."""

from __future__ import annotations

from collections.abc import Iterable

from tranche.accounts.models import User
from tranche.core.db import lock_many, lock_one, require_atomic
from tranche.projects.models import Project
from tranche.projects.selectors import project_list


def lock_project(project_id: int) -> Project:
    return lock_one(Project, project_id, not_found=f"Project {project_id} does not exist.")


def lock_projects(project_ids: Iterable[int]) -> dict[int, Project]:
    return lock_many(Project, project_ids)


def lock_visible_project(user: User, project_id: int) -> Project:
    """`access_project`, locked: the project (its customer read along) if `user` may see
    it, with the same 404 otherwise, in the one query that takes its lock. For a write
    whose request names the project: no second read of the row it locks."""
    require_atomic()
    return lock_one(
        Project,
        project_id,
        not_found=f"Project {project_id} does not exist.",
        code="project_not_found",
        within=project_list(user=user),
    )
