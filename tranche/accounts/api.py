from __future__ import annotations

from django.http import HttpRequest
from ninja import Query, Router, Status

from tranche.accounts import selectors, services
from tranche.accounts.access import require_admin, require_staff
from tranche.accounts.auth import actor, bearer_auth
from tranche.accounts.business import business_row, business_tax_update
from tranche.accounts.models import SecurityEventKind
from tranche.accounts.schemas import (
    CustomerIn,
    CustomerOut,
    CustomerPage,
    SecurityEventOut,
    SecurityEventPage,
    TaxRateIn,
    TaxRateOut,
    TaxRatePatch,
    TaxSettingsIn,
    TaxSettingsOut,
    TokenIn,
    TokenOut,
)
from tranche.accounts.security import security_log
from tranche.accounts.tax_rates import (
    access_tax_rate,
    tax_rate_create,
    tax_rate_list,
    tax_rate_set_active,
    tax_rate_update,
)
from tranche.core.schemas import PageParams

auth_router = Router(tags=["auth"])
customers_router = Router(tags=["customers"])


@auth_router.post("/token", auth=None, response={201: TokenOut})
def create_token(request: HttpRequest, payload: TokenIn) -> Status[TokenOut]:
    """Exchange an email and password (and, with two-factor on, a `code`) for a bearer
    token (shown once). 401 when they do not match or the code is missing or wrong; 403
    for an admin who must enrol in two-factor first; 429 after too many failures for one
    email from one address (a lockout, `too_many_attempts`) or too many attempts from one
    address or for one account (`rate_limited`, with Retry-After)."""
    token = services.token_login(
        request=request, email=payload.email, password=payload.password, code=payload.code
    )
    return Status(201, TokenOut(token=token))


@auth_router.delete("/token", auth=bearer_auth, response={204: None})
def revoke_token(request: HttpRequest) -> Status[None]:
    token = request.headers["Authorization"].split(" ", 1)[1].strip()
    services.token_revoke(token=token, actor=actor(request))
    return Status(204, None)


security_router = Router(tags=["security"])


class SecurityLogQuery(PageParams):
    kind: SecurityEventKind | None = None
    target_id: int | None = None


@security_router.get("", response=SecurityEventPage)
def list_security_log(request: HttpRequest, query: Query[SecurityLogQuery]) -> SecurityEventPage:
    """The security log, newest first (admins): sign-ins, failures, lockouts, two-factor
    changes, role changes and deactivations, API tokens, exports. `kind` and
    `target_id` (whose account) filter it."""
    events = security_log(
        user=actor(request),
        kind=query.kind.value if query.kind else "",
        target_id=query.target_id,
    )
    items = events[query.offset : query.offset + query.limit]
    return SecurityEventPage(items=[SecurityEventOut.of(e) for e in items], count=events.count())


@customers_router.post("", response={201: CustomerOut})
def create_customer(request: HttpRequest, payload: CustomerIn) -> Status[CustomerOut]:
    user = actor(request)
    require_staff(user)
    customer = services.customer_create(actor=user, **payload.model_dump())
    return Status(201, CustomerOut.of(customer))


@customers_router.get("", response=CustomerPage)
def list_customers(request: HttpRequest, page: Query[PageParams]) -> CustomerPage:
    customers = selectors.customer_list(user=actor(request))
    items = customers[page.offset : page.offset + page.limit]
    return CustomerPage(items=[CustomerOut.of(c) for c in items], count=customers.count())


@customers_router.get("/{customer_id}", response=CustomerOut)
def get_customer(request: HttpRequest, customer_id: int) -> CustomerOut:
    return CustomerOut.of(selectors.access_customer(actor(request), customer_id))


@customers_router.put("/{customer_id}", response=CustomerOut)
def replace_customer(request: HttpRequest, customer_id: int, payload: CustomerIn) -> CustomerOut:
    """Replace a customer's details (what the customer's edit page does). Invoices already
    sent keep the name, email and terms they were sent with."""
    user = actor(request)
    found = selectors.access_customer(user, customer_id)
    values = payload.model_dump()
    if values["payment_terms_days"] is None:
        values["payment_terms_days"] = found.payment_terms_days
    return CustomerOut.of(services.customer_update(actor=user, customer_id=found.pk, **values))


tax_rates_router = Router(tags=["tax"])
settings_router = Router(tags=["settings"])


@tax_rates_router.get("", response=list[TaxRateOut])
def list_tax_rates(request: HttpRequest, active: bool = False) -> list[TaxRateOut]:
    """Every tax rate (staff), or only those still offered on new quote lines
    (`?active=true`)."""
    rates = tax_rate_list(user=actor(request), active_only=active)
    return [TaxRateOut.of(rate) for rate in rates]


@tax_rates_router.post("", response={201: TaxRateOut})
def create_tax_rate(request: HttpRequest, payload: TaxRateIn) -> Status[TaxRateOut]:
    """A new rate (admins). Names are unique (409 `tax_rate_name_taken`)."""
    rate = tax_rate_create(actor=actor(request), name=payload.name, percentage=payload.percentage)
    return Status(201, TaxRateOut.of(rate))


@tax_rates_router.get("/{rate_id}", response=TaxRateOut)
def get_tax_rate(request: HttpRequest, rate_id: int) -> TaxRateOut:
    return TaxRateOut.of(access_tax_rate(actor(request), rate_id))


@tax_rates_router.patch("/{rate_id}", response=TaxRateOut)
def edit_tax_rate(request: HttpRequest, rate_id: int, payload: TaxRatePatch) -> TaxRateOut:
    """Rename a rate or change its percentage (admins). Quote lines and invoices already
    made keep the name and percentage they were made with."""
    user = actor(request)
    require_admin(user)
    rate = access_tax_rate(user, rate_id)
    return TaxRateOut.of(
        tax_rate_update(
            actor=user, rate_id=rate.pk, name=payload.name, percentage=payload.percentage
        )
    )


@tax_rates_router.post("/{rate_id}/retire", response=TaxRateOut)
def retire_tax_rate(request: HttpRequest, rate_id: int) -> TaxRateOut:
    """No longer offer the rate on new quote lines (admins); lines keep their copy."""
    user = actor(request)
    require_admin(user)
    rate = access_tax_rate(user, rate_id)
    return TaxRateOut.of(tax_rate_set_active(actor=user, rate_id=rate.pk, active=False))


@tax_rates_router.post("/{rate_id}/reactivate", response=TaxRateOut)
def reactivate_tax_rate(request: HttpRequest, rate_id: int) -> TaxRateOut:
    """Offer a retired rate again (admins)."""
    user = actor(request)
    require_admin(user)
    rate = access_tax_rate(user, rate_id)
    return TaxRateOut.of(tax_rate_set_active(actor=user, rate_id=rate.pk, active=True))


@settings_router.get("/tax", response=TaxSettingsOut)
def get_tax_settings(request: HttpRequest) -> TaxSettingsOut:
    """The tax settings (admins): a blank note means the default wording, given too."""
    require_admin(actor(request))
    return TaxSettingsOut.of(business_row())


@settings_router.put("/tax", response=TaxSettingsOut)
def replace_tax_settings(request: HttpRequest, payload: TaxSettingsIn) -> TaxSettingsOut:
    """Replace the tax settings (admins). The price mode applies to quotes made from now
    on; each quote keeps the mode it was made with."""
    return TaxSettingsOut.of(business_tax_update(actor=actor(request), **payload.model_dump()))
