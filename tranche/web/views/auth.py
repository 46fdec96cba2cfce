"""Signing in (Django's views, checked by the same service as the API) and the lockout
page django-axes shows."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render

from tranche.accounts.services import authenticate_login
from tranche.core.errors import NotAuthenticated, TooManyAttempts


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
