"""The business's settings (admins only) and the logo they uploaded (public: it appears
on pay pages and in emails)."""

from __future__ import annotations

import mimetypes
from pathlib import Path
from typing import Any

from django import forms
from django.conf import settings as django_settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import redirect, render
from django.urls import path
from django.utils.cache import patch_cache_control
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from tranche.accounts.business import (
    DEFAULT_CREDIT_NOTE_NUMBER_FORMAT,
    DEFAULT_REVERSE_CHARGE_NOTE,
    DEFAULT_TAX_EXEMPT_NOTE,
    BusinessInvalid,
    business_profile,
    business_tax_update,
    business_update,
    countries,
    logo_open,
    number_format_problem,
)
from tranche.accounts.models import Business, PriceModeChoice, User
from tranche.accounts.tax_rates import (
    access_tax_rate,
    tax_rate_create,
    tax_rate_list,
    tax_rate_set_active,
    tax_rate_update,
)
from tranche.billing.numbering import invoice_number_preview
from tranche.core.errors import DomainError, NotFound
from tranche.web.views.common import act, user_of


class SettingsForm(forms.Form):
    """Parses what the page posts; every rule is checked by `business_update`."""

    name = forms.CharField(required=False, label="Business name")
    logo = forms.FileField(required=False, label="Logo")
    remove_logo = forms.BooleanField(required=False, label="Remove the current logo")
    address = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 3}))
    tax_id = forms.CharField(required=False, label="Tax id (VAT, GST, EIN …)")
    sender_name = forms.CharField(required=False, label="Sender name")
    reply_to = forms.CharField(required=False, label="Reply-to address")
    payment_terms_days = forms.CharField(required=False, label="Default payment terms (days)")
    invoice_number_format = forms.CharField(required=False, label="Invoice number format")
    credit_note_number_format = forms.CharField(required=False, label="Credit note number format")
    reminder_days = forms.CharField(required=False, label="Reminder steps (days from the due date)")
    bank_details = forms.CharField(
        required=False,
        label="Bank-transfer details",
        widget=forms.Textarea(attrs={"rows": 3}),
    )
    notify_daily_digest = forms.BooleanField(
        required=False, label="A daily digest of draft invoices waiting for review"
    )
    notify_payment_received = forms.BooleanField(required=False, label="Each payment received")
    notify_payment_failed = forms.BooleanField(
        required=False, label="Each online payment that failed"
    )


def _initial(row: Business) -> dict[str, Any]:
    return {
        "name": row.name,
        "address": row.address,
        "tax_id": row.tax_id,
        "sender_name": row.sender_name,
        "reply_to": row.reply_to,
        "payment_terms_days": "" if row.payment_terms_days is None else row.payment_terms_days,
        "invoice_number_format": row.invoice_number_format,
        "credit_note_number_format": row.credit_note_number_format,
        "reminder_days": row.reminder_days,
        "bank_details": row.bank_details,
        "notify_daily_digest": row.notify_daily_digest,
        "notify_payment_received": row.notify_payment_received,
        "notify_payment_failed": row.notify_payment_failed,
    }


def _defaults() -> dict[str, str]:
    """What a blank field falls back to: the environment's values."""
    return {
        "name": django_settings.BUSINESS_NAME,
        "payment_terms_days": str(django_settings.DEFAULT_PAYMENT_TERMS_DAYS),
        "invoice_number_format": django_settings.INVOICE_NUMBER_FORMAT,
        "credit_note_number_format": DEFAULT_CREDIT_NOTE_NUMBER_FORMAT,
        "reminder_days": ", ".join(str(d) for d in django_settings.REMINDER_DAYS),
        "bank_details": django_settings.BANK_DETAILS,
    }


def _admin_only(request: HttpRequest) -> User:
    """Staff may know the page exists (403); a customer is shown nothing (404)."""
    user = user_of(request)
    if user.is_customer:
        raise Http404("No such page.")
    if not user.is_admin:
        raise PermissionDenied("Only an admin can change the business settings.")
    return user


def _terms(value: str) -> int | str | None:
    value = value.strip()
    if not value:
        return None
    try:
        return int(value)
    except ValueError:
        return "Payment terms must be a whole number of days, e.g. 14."


@login_required
@require_http_methods(["GET", "POST"])
def settings_page(request: HttpRequest) -> HttpResponse:
    user = _admin_only(request)
    status = 200
    if request.method == "POST":
        form = SettingsForm(request.POST, request.FILES)
        form.is_valid()  # every field is optional text: this only parses
        data = form.cleaned_data
        terms = _terms(data.get("payment_terms_days", ""))
        try:
            if isinstance(terms, str):
                raise BusinessInvalid({"payment_terms_days": terms})
            business_update(
                actor=user,
                name=data.get("name", ""),
                address=data.get("address", ""),
                tax_id=data.get("tax_id", ""),
                sender_name=data.get("sender_name", ""),
                reply_to=data.get("reply_to", ""),
                payment_terms_days=terms,
                invoice_number_format=data.get("invoice_number_format", ""),
                credit_note_number_format=data.get("credit_note_number_format", ""),
                reminder_days=data.get("reminder_days", ""),
                bank_details=data.get("bank_details", ""),
                notify_daily_digest=bool(data.get("notify_daily_digest")),
                notify_payment_received=bool(data.get("notify_payment_received")),
                notify_payment_failed=bool(data.get("notify_payment_failed")),
                logo=data.get("logo") or None,
                remove_logo=bool(data.get("remove_logo")),
            )
        except BusinessInvalid as exc:
            for field, sentence in exc.errors.items():
                form.add_error(field, sentence)
            messages.error(request, exc.detail)
            status = 422
        except DomainError as exc:
            messages.error(request, exc.detail)
            status = exc.status
        else:
            messages.success(request, "Settings saved: new documents and emails use them.")
            return redirect("settings")
    else:
        row = Business.objects.filter(pk=1).first() or Business(pk=1)
        form = SettingsForm(initial=_initial(row))
    _describe(form)
    _placeholders(form)
    return render(
        request,
        "web/settings/settings.html",
        {
            "form": form,
            "business": business_profile(),
            "defaults": _defaults(),
            "preview": _preview(form["invoice_number_format"].value() or ""),
        },
        status=status,
    )


def _placeholders(form: SettingsForm) -> None:
    """A blank field shows the default it falls back to."""
    for name, value in _defaults().items():
        if name in form.fields and name != "bank_details":
            form.fields[name].widget.attrs["placeholder"] = value


def _describe(form: SettingsForm) -> None:
    """Tie each input to its help and its error, as the template writes them."""
    for name, field in form.fields.items():
        ids = [f"id_{name}-help"]
        if name in form.errors:
            ids.append(f"id_{name}-error")
            field.widget.attrs["aria-invalid"] = "true"
        if not isinstance(field, forms.BooleanField):
            field.widget.attrs["aria-describedby"] = " ".join(ids)


def _preview(fmt: str) -> dict[str, str]:
    fmt = fmt.strip()
    problem = number_format_problem(fmt) if fmt else None
    if problem:
        return {"problem": problem}
    return {"number": invoice_number_preview(fmt or None)}


@login_required
@require_GET
def number_preview(request: HttpRequest) -> HttpResponse:
    """The next invoice number as the format being typed would make it (htmx)."""
    _admin_only(request)
    return render(
        request,
        "web/settings/_number_preview.html",
        {"preview": _preview(request.GET.get("invoice_number_format", "")[:200])},
    )


@require_GET
def logo(request: HttpRequest, name: str) -> HttpResponseBase:
    """The current logo; any other name (an old logo, a guess) is 404. Its address
    changes with every upload, so it may be cached for good."""
    profile = business_profile()
    if not profile.logo_name or Path(profile.logo_name).name != name:
        raise Http404("No such logo.")
    try:
        handle = logo_open(profile.logo_name)  # FileResponse closes it
    except OSError:
        raise Http404("No such logo.") from None
    content_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
    response = FileResponse(handle, content_type=content_type)
    patch_cache_control(response, public=True, max_age=31_536_000, immutable=True)
    return response


# --- tax ----------------------------------------------------------------------------------


def _tax_page(
    request: HttpRequest,
    *,
    values: dict[str, Any] | None = None,
    errors: dict[str, str] | None = None,
    rate_errors: dict[str, str] | None = None,
    new_rate: dict[str, str] | None = None,
    status: int = 200,
) -> HttpResponse:
    row = Business.objects.filter(pk=1).first() or Business(pk=1)
    if values is None:
        values = {
            "price_mode": row.price_mode,
            "reverse_charge_note": row.reverse_charge_note,
            "tax_exempt_note": row.tax_exempt_note,
            "country": row.country,
            "send_deposits_automatically": row.send_deposits_automatically,
        }
    user = user_of(request)
    return render(
        request,
        "web/settings/tax.html",
        {
            "values": values,
            "errors": errors or {},
            "rate_errors": rate_errors or {},
            "new_rate": new_rate or {"name": "", "percentage": ""},
            "rates": list(tax_rate_list(user=user)),
            "countries": countries(),
            "modes": PriceModeChoice.choices,
            "default_reverse_charge_note": DEFAULT_REVERSE_CHARGE_NOTE,
            "default_tax_exempt_note": DEFAULT_TAX_EXEMPT_NOTE,
        },
        status=status,
    )


@login_required
@require_http_methods(["GET", "POST"])
def tax_settings_page(request: HttpRequest) -> HttpResponse:
    """The tax rates and the tax settings: price mode, legal notes, country, deposits."""
    user = _admin_only(request)
    if request.method == "GET":
        return _tax_page(request)
    values: dict[str, Any] = {
        "price_mode": request.POST.get("price_mode", ""),
        "reverse_charge_note": request.POST.get("reverse_charge_note", ""),
        "tax_exempt_note": request.POST.get("tax_exempt_note", ""),
        "country": request.POST.get("country", ""),
        "send_deposits_automatically": bool(request.POST.get("send_deposits_automatically")),
    }
    try:
        business_tax_update(actor=user, **values)
    except BusinessInvalid as exc:
        messages.error(request, exc.detail)
        return _tax_page(request, values=values, errors=exc.errors, status=422)
    except DomainError as exc:
        messages.error(request, exc.detail)
        return _tax_page(request, values=values, status=exc.status)
    messages.success(request, "Tax settings saved: new quotes and invoices use them.")
    return redirect("settings-tax")


@login_required
@require_POST
def tax_rate_add(request: HttpRequest) -> HttpResponse:
    user = _admin_only(request)
    name = request.POST.get("name", "")
    percentage = request.POST.get("percentage", "")
    try:
        rate = tax_rate_create(actor=user, name=name, percentage=percentage)
    except DomainError as exc:
        messages.error(request, exc.detail)
        field = "percentage" if exc.code.startswith("percentage") else "name"
        return _tax_page(
            request,
            rate_errors={field: exc.detail},
            new_rate={"name": name, "percentage": percentage},
            status=exc.status,
        )
    messages.success(request, f"Tax rate “{rate.name}” added: quote lines can use it now.")
    return redirect("settings-tax")


@login_required
@require_POST
def tax_rate_edit(request: HttpRequest, rate_id: int) -> HttpResponse:
    user = _admin_only(request)
    try:
        rate = access_tax_rate(user, rate_id)
    except NotFound as exc:
        raise Http404(exc.detail) from None
    act(
        request,
        lambda: tax_rate_update(
            actor=user,
            rate_id=rate.pk,
            name=request.POST.get("name", ""),
            percentage=request.POST.get("percentage", ""),
        ),
        "Tax rate saved. Quotes and invoices already made keep the rate they were made with.",
    )
    return redirect("settings-tax")


@login_required
@require_POST
def tax_rate_active(request: HttpRequest, rate_id: int, active: bool) -> HttpResponse:
    user = _admin_only(request)
    try:
        rate = access_tax_rate(user, rate_id)
    except NotFound as exc:
        raise Http404(exc.detail) from None
    act(
        request,
        lambda: tax_rate_set_active(actor=user, rate_id=rate.pk, active=active),
        f"“{rate.name}” is offered on quote lines again."
        if active
        else f"“{rate.name}” retired: no longer offered on new quote lines.",
    )
    return redirect("settings-tax")


urlpatterns = [
    path("settings/", settings_page, name="settings"),
    path("settings/tax/", tax_settings_page, name="settings-tax"),
    path("settings/tax/rates", tax_rate_add, name="settings-tax-rate-add"),
    path("settings/tax/rates/<int:rate_id>", tax_rate_edit, name="settings-tax-rate-edit"),
    path(
        "settings/tax/rates/<int:rate_id>/retire",
        tax_rate_active,
        {"active": False},
        name="settings-tax-rate-retire",
    ),
    path(
        "settings/tax/rates/<int:rate_id>/reactivate",
        tax_rate_active,
        {"active": True},
        name="settings-tax-rate-reactivate",
    ),
    path("settings/number-preview", number_preview, name="settings-number-preview"),
    path("branding/logo/<str:name>", logo, name="branding-logo"),
]
