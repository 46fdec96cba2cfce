"""Two-factor authentication on one's own account (staff and admins): set it up with an
authenticator app, see how many recovery codes are left, replace them, turn it off."""

from __future__ import annotations

from base64 import b32encode

import segno
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_http_methods, require_POST
from django_otp import login as otp_login
from django_otp.plugins.otp_totp.models import TOTPDevice

from tranche.accounts.models import User
from tranche.accounts.two_factor import (
    RECOVERY_CODE_COUNT,
    enrolment_device,
    has_two_factor,
    recovery_codes_left,
    recovery_codes_regenerate,
    two_factor_disable,
    two_factor_enable,
    two_factor_offered,
    two_factor_required,
)
from tranche.core.errors import DomainError
from tranche.web.views.common import user_of


def _member(request: HttpRequest) -> User:
    """Customers are not offered two-factor: the pages do not exist for them."""
    user = user_of(request)
    if not two_factor_offered(user):
        raise Http404("No such page.")
    return user


def _secret(device: TOTPDevice) -> str:
    """The key as an app asks for it when typed by hand: base32, in groups of four."""
    key = b32encode(device.bin_key).decode()
    return " ".join(key[i : i + 4] for i in range(0, len(key), 4))


def _qr_svg(device: TOTPDevice) -> str:
    # segno writes only the SVG's own markup from the otpauth URL: no script, no styles.
    svg = segno.make(device.config_url, error="m").svg_inline(
        scale=5, border=4, dark="#000", light="#fff", title="Scan with your authenticator app"
    )
    return mark_safe(svg)  # noqa: S308 - generated markup, no user input but the URL it encodes


@login_required
def status(request: HttpRequest) -> HttpResponse:
    user = _member(request)
    return render(
        request,
        "web/account/two_factor.html",
        {
            "enabled": has_two_factor(user),
            "required": two_factor_required(user),
            "codes_left": recovery_codes_left(user),
            "code_count": RECOVERY_CODE_COUNT,
        },
    )


def _codes_page(request: HttpRequest, codes: list[str], *, new: bool) -> HttpResponse:
    return render(request, "web/account/recovery_codes.html", {"codes": codes, "new": new})


@login_required
@require_http_methods(["GET", "POST"])
def enrol(request: HttpRequest) -> HttpResponse:
    user = _member(request)
    try:
        device = enrolment_device(user=user)
    except DomainError as exc:
        messages.info(request, exc.detail)
        return redirect("two-factor")
    error = ""
    status = 200
    if request.method == "POST":
        try:
            confirmed, codes = two_factor_enable(user=user, code=request.POST.get("code", "")[:64])
        except DomainError as exc:
            error, status = exc.detail, exc.status
        else:
            # This session proved the new device just now: it counts as verified by it.
            otp_login(request, confirmed)
            return _codes_page(request, codes, new=False)
    return render(
        request,
        "web/account/two_factor_enrol.html",
        {
            "qr": _qr_svg(device),
            "secret": _secret(device),
            "error": error,
            "required": two_factor_required(user),
        },
        status=status,
    )


@login_required
@require_POST
def regenerate(request: HttpRequest) -> HttpResponse:
    user = _member(request)
    try:
        codes = recovery_codes_regenerate(actor=user, proof=request.POST.get("proof", "")[:1024])
    except DomainError as exc:
        messages.error(request, exc.detail)
        return redirect("two-factor")
    return _codes_page(request, codes, new=True)


@login_required
@require_POST
def disable(request: HttpRequest) -> HttpResponse:
    user = _member(request)
    try:
        two_factor_disable(actor=user, proof=request.POST.get("proof", "")[:1024])
    except DomainError as exc:
        messages.error(request, exc.detail)
        return redirect("two-factor")
    if two_factor_required(user):
        messages.success(
            request,
            "Two-factor authentication is off. Admins must use it: set it up again now.",
        )
        return redirect("two-factor-enrol")
    messages.success(request, "Two-factor authentication is off: you sign in with your password.")
    return redirect("two-factor")


urlpatterns = [
    path("account/two-factor/", status, name="two-factor"),
    path("account/two-factor/enrol/", enrol, name="two-factor-enrol"),
    path("account/two-factor/codes", regenerate, name="two-factor-codes"),
    path("account/two-factor/disable", disable, name="two-factor-disable"),
]
