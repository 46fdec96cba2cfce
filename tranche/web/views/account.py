"""Everyone's own account: profile, changing the password, and the one-time links that
set a password (an invitation, or a forgotten password asked for on the sign-in page)."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth import update_session_auth_hash
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from tranche.accounts.links import user_for_link
from tranche.accounts.two_factor import has_two_factor, pending_begin
from tranche.accounts.users import password_change, password_set_by_link, profile_update
from tranche.notifications.invitations import password_reset_request
from tranche.web.views.auth import sign_in
from tranche.web.views.common import user_of
from tranche.web.views.people_forms import submit

# The same answer whether or not the address has an account, so the form cannot be used
# to find out who is a customer.
RESET_ANSWER = (
    "If an account uses that address, we have emailed it a link to choose a new password. "
    "It can take a minute to arrive; check your spam folder too."
)


class ProfileForm(forms.Form):
    full_name = forms.CharField(max_length=200, required=False)


class PasswordChangeForm(forms.Form):
    current = forms.CharField(
        max_length=1024, strip=False, error_messages={"required": "Enter your current password."}
    )
    password1 = forms.CharField(
        max_length=1024, strip=False, error_messages={"required": "Enter a new password."}
    )
    password2 = forms.CharField(
        max_length=1024, strip=False, error_messages={"required": "Type the new password again."}
    )


class SetPasswordForm(forms.Form):
    password1 = forms.CharField(
        max_length=1024, strip=False, error_messages={"required": "Enter a new password."}
    )
    password2 = forms.CharField(
        max_length=1024, strip=False, error_messages={"required": "Type the new password again."}
    )


class ForgotForm(forms.Form):
    email = forms.CharField(
        max_length=254, error_messages={"required": "Enter the email address you sign in with."}
    )


PASSWORD_FIELDS = {
    "current_password_wrong": "current",
    "password_required": "password1",
    "password_invalid": "password1",
    "password_mismatch": "password2",
}


def _account_page(
    request: HttpRequest,
    profile: ProfileForm | None = None,
    password: PasswordChangeForm | None = None,
    status: int = 200,
) -> HttpResponse:
    user = user_of(request)
    return render(
        request,
        "web/account/account.html",
        {
            "profile": profile or ProfileForm(initial={"full_name": user.full_name}),
            "password": password or PasswordChangeForm(),
            "two_factor": has_two_factor(user),
        },
        status=status,
    )


@login_required
def account(request: HttpRequest) -> HttpResponse:
    return _account_page(request)


@login_required
@require_POST
def profile(request: HttpRequest) -> HttpResponse:
    user = user_of(request)
    form = ProfileForm(request.POST)
    saved = submit(
        request,
        form,
        lambda data: profile_update(actor=user, full_name=data["full_name"]),
        {"full_name_too_long": "full_name"},
    )
    if saved is None:
        return _account_page(request, profile=form, status=422)
    messages.success(request, "Your profile is saved.")
    return redirect("account")


@login_required
@require_POST
def password(request: HttpRequest) -> HttpResponse:
    user = user_of(request)
    form = PasswordChangeForm(request.POST)
    changed = submit(
        request,
        form,
        lambda data: password_change(actor=user, keep_session=request.session.session_key, **data),
        PASSWORD_FIELDS,
    )
    if changed is None:
        return _account_page(request, password=form, status=422)
    # Changing the password signs out every other session; this one stays signed in.
    update_session_auth_hash(request, changed)
    messages.success(request, "Your password is changed. Other devices will need to sign in again.")
    return redirect("account")


@never_cache
@require_http_methods(["GET", "POST"])
def forgot_password(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        form = ForgotForm(request.POST)
        if form.is_valid():
            password_reset_request(email=form.cleaned_data["email"])
            messages.success(request, RESET_ANSWER)
            return redirect("login")
        messages.error(request, str(form.errors["email"][0]))
        return render(request, "web/account/forgot.html", {"form": form}, status=422)
    return render(request, "web/account/forgot.html", {"form": ForgotForm()})


@never_cache
@require_http_methods(["GET", "POST"])
def set_password(request: HttpRequest, uidb64: str, token: str) -> HttpResponse:
    person = user_for_link(uidb64, token, now=timezone.now())
    if person is None:
        response = render(request, "web/account/link_invalid.html", status=410)
    elif request.method == "POST":
        form = SetPasswordForm(request.POST)
        done = submit(
            request,
            form,
            lambda data: password_set_by_link(user=person, **data),
            PASSWORD_FIELDS,
        )
        if done is not None:
            if has_two_factor(done):
                # The link proves the email, not the second factor.
                pending_begin(request, done, now=timezone.now())
                messages.success(request, "Your password is set. Now enter your two-factor code.")
                return redirect("login-code")
            sign_in(request, done, how="with a link to set the password")
            messages.success(request, "Your password is set and you are signed in. Welcome!")
            return redirect("/")
        response = render(
            request, "web/account/set_password.html", {"form": form, "person": person}, status=422
        )
    else:
        response = render(
            request, "web/account/set_password.html", {"form": SetPasswordForm(), "person": person}
        )
    # The token is in this page's address; the site's Referrer-Policy (same-origin) keeps
    # it from other sites. Not "no-referrer": the browser would then post the form with
    # `Origin: null`, which the CSRF check refuses.
    return response


urlpatterns = [
    path("account/", account, name="account"),
    path("account/profile", profile, name="account-profile"),
    path("account/password", password, name="account-password"),
    path("account/forgot-password/", forgot_password, name="forgot-password"),
    path("account/set-password/<str:uidb64>/<str:token>/", set_password, name="set-password"),
]
