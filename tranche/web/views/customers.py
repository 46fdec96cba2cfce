"""Customers (staff and admins): the list with balances, creating and editing, one
customer's page with their projects, quotes and portal users, and inviting and
deactivating those users."""

from __future__ import annotations

from collections.abc import Callable

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path
from django.views.decorators.http import require_POST

from tranche.accounts.business import business_profile, countries
from tranche.accounts.models import Customer, Role, TaxTreatment, User
from tranche.accounts.selectors import (
    access_customer,
    access_customer_user,
    customer_search,
    customer_users,
)
from tranche.accounts.services import customer_create, customer_update
from tranche.accounts.users import user_deactivate, user_reactivate
from tranche.billing.selectors import customer_balances
from tranche.notifications.invitations import user_invite, user_reinvite
from tranche.projects.selectors import project_list
from tranche.sales.selectors import quote_list
from tranche.web.views.common import act, page_of, search_of, user_of
from tranche.web.views.people_forms import INVITE_FIELDS, InviteForm, guarded, submit

# How many of a customer's newest projects and quotes their page lists; the rest are a
# link away on the projects and quotes lists.
RECENT = 10


class CustomerForm(forms.Form):
    name = forms.CharField(max_length=200, error_messages={"required": "A customer needs a name."})
    billing_email = forms.CharField(max_length=254, required=False)
    contact_name = forms.CharField(max_length=200, required=False)
    address = forms.CharField(max_length=2000, required=False, widget=forms.Textarea)
    tax_id = forms.CharField(max_length=64, required=False)
    # Checked by the service (an unknown code gets its sentence there).
    country = forms.CharField(max_length=2, required=False)
    tax_treatment = forms.ChoiceField(
        choices=TaxTreatment.choices,
        required=False,
        error_messages={"invalid_choice": "Choose how this customer's invoices are taxed."},
    )
    payment_terms_days = forms.IntegerField(
        min_value=0,
        max_value=365,
        error_messages={
            "required": "Enter the payment terms in days (0 means due on receipt).",
            "invalid": "Payment terms must be a whole number of days.",
            "min_value": "Payment terms must be between 0 and 365 days.",
            "max_value": "Payment terms must be between 0 and 365 days.",
        },
    )

    def clean_tax_treatment(self) -> str:
        return self.cleaned_data.get("tax_treatment") or TaxTreatment.STANDARD


CUSTOMER_FIELDS = {
    "name_required": "name",
    "email_invalid": "billing_email",
    "payment_terms_invalid": "payment_terms_days",
    "country_invalid": "country",
    "tax_treatment_invalid": "tax_treatment",
}


def _form_context(form: CustomerForm, customer: Customer | None) -> dict[str, object]:
    return {
        "form": form,
        "customer": customer,
        "countries": countries(),
        "treatments": TaxTreatment.choices,
        "notes": {
            TaxTreatment.REVERSE_CHARGE.value: business_profile().reverse_charge_note,
            TaxTreatment.EXEMPT.value: business_profile().tax_exempt_note,
        },
    }


@login_required
def customers(request: HttpRequest) -> HttpResponse:
    user = user_of(request)
    search = search_of(request)
    page = guarded(lambda: page_of(request, customer_search(user=user, search=search)))
    rows = list(page.object_list)
    balances = customer_balances([c.pk for c in rows])
    return render(
        request,
        "web/customers/list.html",
        {
            "rows": [(c, balances.get(c.pk, [])) for c in rows],
            "page": page,
            "search": search,
        },
    )


@login_required
def customer_new(request: HttpRequest) -> HttpResponse:
    user = user_of(request)
    guarded(lambda: customer_search(user=user))  # staff only, before anything else
    if request.method == "POST":
        form = CustomerForm(request.POST)
        created = submit(
            request,
            form,
            lambda data: customer_create(actor=user, **data),
            CUSTOMER_FIELDS,
        )
        if created is not None:
            messages.success(request, f"Customer {created.name} created.")
            return redirect("customer", customer_id=created.pk)
        status = 422
    else:
        form = CustomerForm(
            initial={
                "payment_terms_days": business_profile().payment_terms_days,
                "tax_treatment": TaxTreatment.STANDARD,
            }
        )
        status = 200
    return render(request, "web/customers/form.html", _form_context(form, None), status=status)


@login_required
def customer_edit(request: HttpRequest, customer_id: int) -> HttpResponse:
    user = user_of(request)
    customer: Customer = guarded(lambda: access_customer(user, customer_id))
    if request.method == "POST":
        form = CustomerForm(request.POST)
        updated = submit(
            request,
            form,
            lambda data: customer_update(actor=user, customer_id=customer.pk, **data),
            CUSTOMER_FIELDS,
        )
        if updated is not None:
            messages.success(request, f"Customer {updated.name} saved.")
            return redirect("customer", customer_id=customer.pk)
        status = 422
    else:
        form = CustomerForm(
            initial={field: getattr(customer, field) for field in CustomerForm.base_fields}
        )
        status = 200
    return render(request, "web/customers/form.html", _form_context(form, customer), status=status)


def _customer_page(
    request: HttpRequest, user: User, customer: Customer, invite: InviteForm, status: int = 200
) -> HttpResponse:
    projects = project_list(user=user).filter(customer=customer)
    quotes = quote_list(user=user).filter(customer=customer)
    users = page_of(request, customer_users(user=user, customer=customer))
    return render(
        request,
        "web/customers/detail.html",
        {
            "customer": customer,
            "balance": customer_balances([customer.pk]).get(customer.pk, []),
            "projects": list(projects[:RECENT]),
            "project_count": projects.count(),
            "quotes": list(quotes[:RECENT]),
            "quote_count": quotes.count(),
            "users": users,
            "invite": invite,
        },
        status=status,
    )


@login_required
def customer(request: HttpRequest, customer_id: int) -> HttpResponse:
    user = user_of(request)
    found: Customer = guarded(lambda: access_customer(user, customer_id))
    return _customer_page(request, user, found, InviteForm())


@login_required
@require_POST
def customer_invite(request: HttpRequest, customer_id: int) -> HttpResponse:
    user = user_of(request)
    found: Customer = guarded(lambda: access_customer(user, customer_id))
    form = InviteForm(request.POST)
    invited = submit(
        request,
        form,
        lambda data: user_invite(
            actor=user,
            email=data["email"],
            full_name=data["full_name"],
            role=Role.CUSTOMER,
            customer_id=found.pk,
        ),
        INVITE_FIELDS,
    )
    if invited is None:
        return _customer_page(request, user, found, form, status=422)
    messages.success(
        request, f"Invitation sent to {invited.email}. The link works for a limited time."
    )
    return redirect("customer", customer_id=found.pk)


def _user_action(
    request: HttpRequest,
    customer_id: int,
    user_id: int,
    service: Callable[..., User],
    success: Callable[[User], str],
) -> HttpResponse:
    actor = user_of(request)
    person: User = guarded(lambda: access_customer_user(actor, customer_id, user_id))
    act(request, lambda: service(actor=actor, user_id=person.pk), success(person))
    return redirect("customer", customer_id=customer_id)


@login_required
@require_POST
def customer_user_deactivate(request: HttpRequest, customer_id: int, user_id: int) -> HttpResponse:
    return _user_action(
        request,
        customer_id,
        user_id,
        user_deactivate,
        lambda u: f"{u.email} is deactivated: they can no longer sign in.",
    )


@login_required
@require_POST
def customer_user_reactivate(request: HttpRequest, customer_id: int, user_id: int) -> HttpResponse:
    return _user_action(
        request,
        customer_id,
        user_id,
        user_reactivate,
        lambda u: f"{u.email} is active again and can sign in.",
    )


@login_required
@require_POST
def customer_user_reinvite(request: HttpRequest, customer_id: int, user_id: int) -> HttpResponse:
    return _user_action(
        request,
        customer_id,
        user_id,
        user_reinvite,
        lambda u: f"A new invitation is on its way to {u.email}; the earlier link no longer works.",
    )


urlpatterns = [
    path("customers/", customers, name="customers"),
    path("customers/new/", customer_new, name="customer-new"),
    path("customers/<int:customer_id>/", customer, name="customer"),
    path("customers/<int:customer_id>/edit/", customer_edit, name="customer-edit"),
    path("customers/<int:customer_id>/users/invite", customer_invite, name="customer-invite"),
    path(
        "customers/<int:customer_id>/users/<int:user_id>/deactivate",
        customer_user_deactivate,
        name="customer-user-deactivate",
    ),
    path(
        "customers/<int:customer_id>/users/<int:user_id>/reactivate",
        customer_user_reactivate,
        name="customer-user-reactivate",
    ),
    path(
        "customers/<int:customer_id>/users/<int:user_id>/reinvite",
        customer_user_reinvite,
        name="customer-user-reinvite",
    ),
]
