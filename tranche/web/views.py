from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from tranche.accounts.access import require_admin, require_staff
from tranche.accounts.models import User
from tranche.accounts.services import authenticate_login
from tranche.billing import selectors as billing
from tranche.billing.models import InvoiceStatus
from tranche.billing.services.drafts import milestone_complete, milestone_reopen
from tranche.billing.services.sending import invoice_send
from tranche.core.errors import DomainError, NotAuthenticated, NotFound, TooManyAttempts
from tranche.projects.selectors import (
    access_project,
    project_detail,
    project_details,
    project_list,
)

PROJECTS_PER_PAGE = 25


def _user(request: HttpRequest) -> User:
    assert isinstance(request.user, User)
    return request.user


@login_required
def home(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    search = request.GET.get("q", "")[:200]
    page = Paginator(project_list(user=user, search=search), PROJECTS_PER_PAGE).get_page(
        request.GET.get("page")
    )
    return render(
        request,
        "web/home.html",
        {"details": project_details(list(page.object_list)), "page": page, "search": search},
    )


@login_required
def project(request: HttpRequest, project_id: int) -> HttpResponse:
    user = _user(request)
    try:
        found = access_project(user, project_id)
    except NotFound:
        raise Http404("No such project.") from None
    invoices, summary = billing.project_invoices(user=user, project=found)
    return render(
        request,
        "web/project.html",
        {
            "detail": project_detail(found),
            "invoices": invoices,
            "summary": summary,
        },
    )


def _statuses_for(user: User) -> list[tuple[str, str]]:
    """The status filters a person can use: a customer is never given a draft."""
    if user.is_staff_member:
        return list(InvoiceStatus.choices)
    return [(v, label) for v, label in InvoiceStatus.choices if v != InvoiceStatus.DRAFT]


@login_required
def financials(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    status = request.GET.get("status") or None
    try:
        page = billing.invoice_page(
            user=user, status=status, cursor=request.GET.get("cursor"), limit=50
        )
    except DomainError as exc:
        messages.error(request, exc.detail)
        return redirect("financials")
    return render(
        request,
        "web/financials.html",
        {"page": page, "status": status, "statuses": _statuses_for(user)},
    )


def _act(request: HttpRequest, action: Any, success: str) -> None:
    try:
        action()
    except DomainError as exc:
        messages.error(request, exc.detail)
    else:
        messages.success(request, success)


def _back(request: HttpRequest, fallback: str) -> HttpResponse:
    target = request.POST.get("next", "")
    return redirect(target if target.startswith("/") and not target.startswith("//") else fallback)


def _milestone_action(
    request: HttpRequest,
    project_id: int,
    milestone_id: int,
    *,
    allowed: Callable[[User], None],
    service: Callable[..., object],
    success: str,
) -> HttpResponse:
    user = _user(request)
    try:
        allowed(user)
        found = access_project(user, project_id)
    except DomainError:
        raise Http404("No such project.") from None
    _act(
        request,
        lambda: service(actor=user, project_id=found.pk, milestone_id=milestone_id),
        success,
    )
    return redirect("project", project_id=found.pk)


@login_required
@require_POST
def complete_milestone(request: HttpRequest, project_id: int, milestone_id: int) -> HttpResponse:
    return _milestone_action(
        request,
        project_id,
        milestone_id,
        allowed=require_staff,
        service=milestone_complete,
        success="Milestone completed. A billable milestone now has a draft invoice to review.",
    )


@login_required
@require_POST
def reopen_milestone(request: HttpRequest, project_id: int, milestone_id: int) -> HttpResponse:
    return _milestone_action(
        request,
        project_id,
        milestone_id,
        allowed=require_admin,
        service=milestone_reopen,
        success="Milestone reopened.",
    )


@login_required
@require_POST
def send_invoice(request: HttpRequest, invoice_id: int) -> HttpResponse:
    user = _user(request)
    try:
        require_admin(user)
        invoice = billing.access_invoice(user, invoice_id)
    except DomainError:
        raise Http404("No such invoice.") from None
    _act(
        request,
        lambda: invoice_send(actor=user, invoice_id=invoice.pk),
        "Invoice sent: it is numbered and the customer has been emailed the payment link.",
    )
    return _back(request, f"/projects/{invoice.project_id}/")


def api_not_found(request: HttpRequest, *args: Any, **kwargs: Any) -> JsonResponse:
    return JsonResponse(
        {"detail": "No API endpoint at this address.", "code": "not_found"}, status=404
    )


class LoginForm(AuthenticationForm):
    """Django's sign-in form, checking the password through the same service as the API
    so both count failures, match the email and refuse a lockout the same way."""

    def clean(self) -> dict[str, Any]:
        email = self.cleaned_data.get("username")
        password = self.cleaned_data.get("password")
        if email is not None and password:
            # LoginView always passes the request; axes needs it to count the attempt.
            assert self.request is not None
            try:
                self.user_cache = authenticate_login(
                    request=self.request, email=email, password=password
                )
            except TooManyAttempts as exc:
                # AxesMiddleware answers with the lockout page; this only stops the login.
                raise ValidationError(exc.detail, code=exc.code) from None
            except NotAuthenticated:
                raise self.get_invalid_login_error() from None
        return self.cleaned_data


def lockout(
    request: HttpRequest, credentials: dict[str, Any] | None = None, *args: Any
) -> HttpResponse:
    """django-axes calls this when a login/address pair is locked out."""
    detail = "Too many failed sign-in attempts. Wait a while, then try again."
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": detail, "code": "too_many_attempts"}, status=429)
    return render(request, "web/login.html", {"lockout": detail}, status=429)
