"""Role checks for request-driven code. Lookups scoped to a user live in each app's
selectors (`access_project`, `access_quote`, …) and use `customer_scope` below."""

from __future__ import annotations

from tranche.accounts.models import User
from tranche.core.errors import PermissionDenied


def require_staff(user: User) -> None:
    """Admins and staff only. Checked before any lookup, so a refusal confirms no id."""
    if not user.is_staff_member:
        raise PermissionDenied("Only staff can do this.", code="staff_only")


def require_admin(user: User) -> None:
    if not user.is_admin:
        raise PermissionDenied("Only an admin can do this.", code="admin_only")


def customer_scope(user: User) -> int | None:
    """The one customer whose records this user may read, or None for staff (all)."""
    if user.is_staff_member:
        return None
    if user.customer_id is None:  # pragma: no cover - the database forbids it
        raise PermissionDenied("This account belongs to no customer.")
    return user.customer_id
