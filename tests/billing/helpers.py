from __future__ import annotations

from tranche.accounts.models import User
from tranche.billing.models import Invoice
from tranche.billing.services.drafts import milestone_complete
from tranche.projects.models import Project


def draft_for(project: Project, position: int, by: User) -> Invoice:
    milestone = project.milestones.get(position=position)
    done = milestone_complete(actor=by, project_id=project.pk, milestone_id=milestone.pk)
    assert done.invoice is not None
    return done.invoice
