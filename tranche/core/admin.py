"""The operations admin at /admin/: Django's admin, read-only, for admins only.

It lets an admin see what the background work did (outbox emails, Stripe events, invoice
events) and retry what failed; nothing can be added, changed or deleted through it. Each
app registers its models on `operations_site` in its own admin.py.

Signing in goes through the one sign-in page (/login/), so the admin is reached with the
same email login, and django-axes counts and locks out failures there as everywhere.
The site lives in core and asks the user for `is_admin` instead of importing accounts,
so every app can register on it without depending on a higher one."""

from __future__ import annotations

from collections.abc import Callable
from functools import update_wrapper
from typing import Any, NoReturn, TypeVar, cast

from django.conf import settings
from django.contrib import admin
from django.contrib.auth import REDIRECT_FIELD_NAME
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.db import models
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBase, HttpResponseRedirect
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme

M = TypeVar("M", bound=models.Model)
V = TypeVar("V", bound=Callable[..., HttpResponseBase])


def is_active_admin(request: HttpRequest) -> bool:
    user = request.user
    return bool(user.is_active and getattr(user, "is_admin", False))


class OperationsAdminSite(admin.AdminSite):
    site_header = "Tranche operations"
    site_title = "Tranche operations"
    index_title = "Operations"
    site_url = "/"

    def has_permission(self, request: HttpRequest) -> bool:
        """Active users with the admin role; never staff, customers or visitors."""
        return is_active_admin(request)

    def admin_view(self, view: V, cacheable: bool = False) -> V:
        """A visitor is sent to the sign-in page; a signed-in user who is not an admin is
        refused outright (Django would send them to a login form they cannot pass)."""
        wrapped = super().admin_view(view, cacheable)

        def inner(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path(), settings.LOGIN_URL)
            if not self.has_permission(request):
                raise PermissionDenied("Only an admin can use the operations admin.")
            return wrapped(request, *args, **kwargs)

        return cast(V, update_wrapper(inner, wrapped))

    def login(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        """No second login form: Django's would bypass ours (its email matching, its
        lockout answer). Whatever is posted here is ignored."""
        if self.has_permission(request):
            return HttpResponseRedirect(reverse("admin:index", current_app=self.name))
        if request.user.is_authenticated:
            raise PermissionDenied("Only an admin can use the operations admin.")
        target = request.GET.get(REDIRECT_FIELD_NAME, "")
        if not url_has_allowed_host_and_scheme(target, allowed_hosts=None):
            target = reverse("admin:index", current_app=self.name)
        return redirect_to_login(target, settings.LOGIN_URL)

    def password_change(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> NoReturn:
        raise Http404("Passwords are not changed through the operations admin.")

    def password_change_done(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> NoReturn:
        raise Http404("Passwords are not changed through the operations admin.")


operations_site = OperationsAdminSite(name="admin")


class ReadOnlyAdmin(admin.ModelAdmin[M]):
    """Rows are shown, never added, changed or deleted: writes go through the services,
    and the only buttons are the actions a model admin declares (each permission-checked)."""

    show_full_result_count = False  # a second COUNT(*) over every row, on every page

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: M | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: M | None = None) -> bool:
        return False

    def has_view_permission(self, request: HttpRequest, obj: M | None = None) -> bool:
        return is_active_admin(request)

    def has_module_permission(self, request: HttpRequest) -> bool:
        return is_active_admin(request)

    def has_retry_permission(self, request: HttpRequest) -> bool:
        """For actions declared with `permissions=["retry"]`."""
        return is_active_admin(request)
