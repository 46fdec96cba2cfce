"""Signing in (Django's views, checked by the same service as the API), its second step
for people with two-factor authentication, and the lockout page django-axes shows."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import REDIRECT_FIELD_NAME, login
from django.contrib.auth import views as auth_views
from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect
from django.views.decorators.http import require_http_methods
from django_otp import login as otp_login

from tranche.accounts.models import SecurityEventKind, User
from tranche.accounts.security import security_event
from tranche.accounts.services import authenticate_login
from tranche.accounts.sessions import mark_signed_in
from tranche.accounts.two_factor import (
    Verified,
    has_two_factor,
    pending_begin,
    pending_clear,
    pending_failed,
    pending_user,
    two_factor_verify,
)
from tranche.core.errors import NotAuthenticated, TooManyAttempts

MODEL_BACKEND = "django.contrib.auth.backends.ModelBackend"


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


def sign_in(
    request: HttpRequest, user: User, *, verified: Verified | None = None, how: str
) -> None:
    """The one way a page signs a person in: the session, its two-factor device, its
    clock (see `sessions`), and a line in the security log."""
    login(request, user, backend=MODEL_BACKEND)
    if verified is not None:
        otp_login(request, verified.device)
    mark_signed_in(request, now=timezone.now())
    security_event(kind=SecurityEventKind.SIGN_IN, actor=user, detail=f"Signed in {how}.")


def _next_of(request: HttpRequest) -> str:
    target = request.POST.get(REDIRECT_FIELD_NAME) or request.GET.get(REDIRECT_FIELD_NAME, "")
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return settings.LOGIN_REDIRECT_URL


class LoginView(auth_views.LoginView):
    """Django's sign-in page. A person with two-factor is not signed in by the password:
    the session remembers whose password was right and the code page finishes."""

    template_name = "web/login.html"
    authentication_form = LoginForm

    def form_valid(self, form: AuthenticationForm) -> HttpResponse:
        user = form.get_user()
        assert isinstance(user, User)
        if has_two_factor(user):
            pending_begin(self.request, user, now=timezone.now())
            target = _next_of(self.request)
            return redirect(f"{reverse('login-code')}?{urlencode({REDIRECT_FIELD_NAME: target})}")
        sign_in(self.request, user, how="with the password")
        return HttpResponseRedirect(self.get_success_url())


CODE_HELP = (
    "Open your authenticator app and type the 6-digit code it shows for this site. "
    "Lost your phone? Type one of your recovery codes instead."
)


@never_cache
@csrf_protect
@require_http_methods(["GET", "POST"])
def login_code(request: HttpRequest) -> HttpResponse:
    """The second step: a code from the authenticator app or a recovery code."""
    user = pending_user(request, now=timezone.now())
    if user is None:
        messages.info(request, "Sign in with your email and password first.")
        return redirect(settings.LOGIN_URL)
    target = _next_of(request)
    error = ""
    status = 200
    if request.method == "POST":
        try:
            verified = two_factor_verify(user=user, code=request.POST.get("code", "")[:64])
        except TooManyAttempts as exc:
            error, status = exc.detail, 429
        except NotAuthenticated as exc:
            if pending_failed(request):
                messages.error(request, "Too many wrong codes: sign in with your password again.")
                return redirect(settings.LOGIN_URL)
            error, status = exc.detail, 422
        else:
            pending_clear(request)
            how = (
                "with the password and a recovery code"
                if verified.method == "recovery_code"
                else "with the password and an authenticator code"
            )
            sign_in(request, user, verified=verified, how=how)
            if verified.method == "recovery_code":
                messages.warning(
                    request,
                    "You signed in with a recovery code; it cannot be used again. "
                    "If you lost your phone, set up two-factor again on your account page.",
                )
            return redirect(target)
    return render(
        request,
        "web/login_code.html",
        {"error": error, "help": CODE_HELP, "next": target, "email": user.email},
        status=status,
    )
