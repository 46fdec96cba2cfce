"""Row locks of projects. Locks are taken in one order everywhere (customer, project,
milestone, invoice): a project's row is locked before any of its invoices."""

from __future__ import annotations

from collections.abc import Iterable

from tranche.core.db import lock_many, lock_one
from tranche.projects.models import Project


def lock_project(project_id: int) -> Project:
    return lock_one(Project, project_id, not_found=f"Project {project_id} does not exist.")


def lock_projects(project_ids: Iterable[int]) -> dict[int, Project]:
    return lock_many(Project, project_ids)
