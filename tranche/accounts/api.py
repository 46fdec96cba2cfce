from __future__ import annotations

from django.http import HttpRequest
from ninja import Query, Router, Status

from tranche.accounts import selectors, services
from tranche.accounts.access import require_staff
from tranche.accounts.auth import actor, bearer_auth
from tranche.accounts.schemas import CustomerIn, CustomerOut, CustomerPage, TokenIn, TokenOut
from tranche.core.schemas import PageParams

auth_router = Router(tags=["auth"])
customers_router = Router(tags=["customers"])


@auth_router.post("/token", auth=None, response={201: TokenOut})
def create_token(request: HttpRequest, payload: TokenIn) -> Status[TokenOut]:
    token = services.token_login(request=request, email=payload.email, password=payload.password)
    return Status(201, TokenOut(token=token))


@auth_router.delete("/token", auth=bearer_auth, response={204: None})
def revoke_token(request: HttpRequest) -> Status[None]:
    token = request.headers["Authorization"].split(" ", 1)[1].strip()
    services.token_revoke(token=token)
    return Status(204, None)


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
