"""What the customers, users and account pages share: refusals turned into the 403 and
404 pages, a form whose service refusals land next to their field, and the invite form."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404, HttpRequest

from tranche.core.errors import DomainError, NotFound, PermissionDenied


def guarded(lookup: Callable[[], Any]) -> Any:
    """Run an access check or lookup: a refused role is the 403 page, an id that is not
    there (or not yours) the 404 page."""
    try:
        return lookup()
    except PermissionDenied:
        raise DjangoPermissionDenied from None
    except NotFound:
        raise Http404 from None


def submit(
    request: HttpRequest,
    form: forms.Form,
    action: Callable[[dict[str, Any]], Any],
    fields: dict[str, str],
) -> Any:
    """Validate `form`, then run the service; a refusal lands next to its field (by the
    error's code) and in the live region, with the service's own sentence. The service's
    result, or None when anything was refused."""
    if not form.is_valid():
        # Every sentence, in the order of the fields: the live region reads them all.
        messages.error(request, " ".join(str(e) for errors in form.errors.values() for e in errors))
        return None
    try:
        return action(form.cleaned_data)
    except DomainError as exc:
        form.add_error(fields.get(exc.code), exc.detail)
        messages.error(request, exc.detail)
        return None


class InviteForm(forms.Form):
    email = forms.CharField(
        max_length=254, error_messages={"required": "Enter the email address to invite."}
    )
    full_name = forms.CharField(max_length=200, required=False)


INVITE_FIELDS = {
    "email_invalid": "email",
    "email_taken": "email",
    "user_inactive": "email",
    "already_joined": "email",
}
