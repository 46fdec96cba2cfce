"""The quote pages: staff write, preview, send, accept and decline quotes; a customer reads
the quotes sent to them and accepts (with a typed signature) or declines them online."""

from __future__ import annotations

import html
import re
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.factories import make_quote
from tests.helpers import unchanged
from tests.web.test_pages import signed_in
from tranche.accounts.models import Customer, User
from tranche.notifications.models import OutboxEmail
from tranche.notifications.quotes import quote_send
from tranche.projects.models import Project
from tranche.sales.models import Quote, QuoteEvent, QuoteStatus
from tranche.sales.services import quote_decline

pytestmark = pytest.mark.django_db


def form_body(customer: Customer, **overrides: Any) -> dict[str, str]:
    """The editor's fields for a quote of $1,000.01 with a 30/30/40 schedule."""
    body = {
        "customer": str(customer.pk),
        "title": "Loft conversion",
        "currency": "USD",
        "line_count": "2",
        "line-1-description": "Design",
        "line-1-quantity": "1",
        "line-1-unit_price": "400.01",
        "line-2-description": "Build",
        "line-2-quantity": "2",
        "line-2-unit_price": "300",
        "item_count": "3",
        "item-1-title": "Deposit",
        "item-1-billable": "on",
        "item-1-percentage": "30",
        "item-2-title": "Structure",
        "item-2-billable": "on",
        "item-2-percentage": "30",
        "item-3-title": "Handover",
        "item-3-billable": "on",
        "item-3-percentage": "40",
        "save": "1",
    }
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not None}


def messages_of(page: str) -> str:
    match = re.search(r'<div id="messages"[^>]*>(.*?)</div>', page, re.S)
    return html.unescape(match.group(1)) if match else ""


def sent(quote: Quote, by: User) -> Quote:
    quote_send(actor=by, quote_id=quote.pk)
    quote.refresh_from_db()
    return quote


# --- the list --------------------------------------------------------------------------------


def quote_titles(page: str) -> list[str]:
    return re.findall(r'data-label="Quote"><a href="/quotes/\d+/">([^<]+)</a>', page)


def test_staff_list_quotes_with_customer_total_status_and_date(
    staff: User, admin: User, customer_a: Customer, customer_b: Customer
) -> None:
    make_quote(actor=admin, customer=customer_a, title="Kitchen", total="1234.50")
    sent(make_quote(actor=admin, customer=customer_b, title="Studio"), admin)

    page = signed_in(staff).get("/quotes/").content.decode()

    assert quote_titles(page) == ["Studio", "Kitchen"]
    assert "Acme Builders" in page
    assert "Globex Studio" in page
    assert "$1,234.50" in page
    assert '<span class="badge quote-draft">Draft</span>' in page
    assert '<span class="badge quote-sent">Sent</span>' in page
    assert 'href="/quotes/new"' in page


def test_staff_search_quotes_by_title_or_customer_and_filter_by_status(
    staff: User, admin: User, customer_a: Customer, customer_b: Customer
) -> None:
    make_quote(actor=admin, customer=customer_a, title="Kitchen")
    sent(make_quote(actor=admin, customer=customer_b, title="Studio"), admin)
    client = signed_in(staff)

    assert quote_titles(client.get("/quotes/?q=kitch").content.decode()) == ["Kitchen"]
    assert quote_titles(client.get("/quotes/?q=globex").content.decode()) == ["Studio"]
    assert quote_titles(client.get("/quotes/?status=sent").content.decode()) == ["Studio"]
    assert quote_titles(client.get("/quotes/?status=draft").content.decode()) == ["Kitchen"]
    nothing = client.get("/quotes/?q=nowhere").content.decode()
    assert "No quote matches “nowhere”." in nothing


def test_the_quote_list_is_paged(staff: User, admin: User, customer_a: Customer) -> None:
    for n in range(1, 28):
        make_quote(actor=admin, customer=customer_a, title=f"Quote {n:02d}")
    client = signed_in(staff)
    first = client.get("/quotes/").content.decode()
    assert len(quote_titles(first)) == 25
    assert "Page 1 of 2 · 27 quotes" in first
    assert quote_titles(client.get("/quotes/?page=2").content.decode()) == ["Quote 02", "Quote 01"]


@pytest.mark.parametrize("persona", ["staff", "alice"])
def test_a_page_of_quotes_costs_the_same_queries_for_1_and_50_rows(
    persona: str, staff: User, alice: User, admin: User, customer_a: Customer
) -> None:
    client = signed_in({"staff": staff, "alice": alice}[persona])

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client.get("/quotes/").status_code == 200
        return len(captured)

    sent(make_quote(actor=admin, customer=customer_a, title="First"), admin)
    one = queries()
    for n in range(49):
        sent(make_quote(actor=admin, customer=customer_a, title=f"More {n}"), admin)
    assert queries() == one


def test_a_customer_lists_only_their_own_sent_quotes_waiting_first(
    alice: User, admin: User, customer_a: Customer, customer_b: Customer
) -> None:
    sent(make_quote(actor=admin, customer=customer_a, title="Waiting"), admin)
    make_quote(actor=admin, customer=customer_a, title="Still a draft")
    sent(make_quote(actor=admin, customer=customer_b, title="Globex's"), admin)
    answered = sent(make_quote(actor=admin, customer=customer_a, title="Declined one"), admin)
    quote_decline(actor=admin, quote_id=answered.pk)

    page = signed_in(alice).get("/quotes/").content.decode()

    assert quote_titles(page) == ["Waiting", "Declined one"]
    assert "Waiting for your answer" in page
    assert "Customer</th>" not in page
    assert 'value="draft"' not in page  # no draft filter offered to a customer


# --- the editor --------------------------------------------------------------------------------


def test_staff_create_a_quote_with_lines_and_a_schedule(staff: User, customer_a: Customer) -> None:
    response = signed_in(staff).post("/quotes/new", form_body(customer_a), follow=True)

    quote = Quote.objects.get()
    assert response.redirect_chain[-1][0] == f"/quotes/{quote.pk}/"
    assert quote.status == QuoteStatus.DRAFT
    assert quote.total == Decimal("1000.01")
    assert [line.line_total for line in quote.lines.all()] == [Decimal("400.01"), Decimal("600")]
    assert [i.billing_percentage for i in quote.schedule.all()] == [30, 30, 40]
    page = response.content.decode()
    assert "Quote “Loft conversion” created as a draft." in messages_of(page)
    # The amounts exactly as allocate() bills them: 300.00 + 300.00 + 400.01.
    assert "$300.00" in page
    assert "$400.01" in page
    assert QuoteEvent.objects.get().kind == "created"


def test_the_preview_shows_totals_each_steps_amount_and_the_schedule_error(
    staff: User, customer_a: Customer
) -> None:
    client = signed_in(staff)
    with unchanged():
        response = client.post(
            "/quotes/preview",
            form_body(customer_a, **{"item-3-percentage": "30"}),
            HTTP_HX_REQUEST="true",
        )
    page = response.content.decode()
    assert response.status_code == 200
    assert "<html" not in page  # only the summary fragment
    assert re.search(r'data-testid="quote-total">\$1,000.01<', page)
    # 30/30/30 of $1,000.01, as allocate() splits it: the leftover cent goes to the first
    # step, and the unscheduled 10 % is billed by none.
    assert re.search(r'data-testid="step-1-amount">\$300.01<', page)
    assert re.search(r'data-testid="step-3-amount">\$300.00<', page)
    assert "Billable percentages add up to 90 %; they must add up to 100 %." in page


def test_the_preview_shows_the_services_own_refusals(staff: User, customer_a: Customer) -> None:
    body = form_body(
        customer_a,
        **{"item-3-percentage": "50", "line-1-unit_price": "10.001", "line-2-quantity": "two"},
    )
    page = signed_in(staff).post("/quotes/preview", body).content.decode()
    assert "Billable percentages add up to 110%; they may add up to at most 100%." in page
    assert "Line 1: unit price 10.001 has more decimal places than USD allows." in page
    assert "Line 2: write the quantity as a number greater than 0, like 1 or 2.5." in page


def test_a_refused_save_shows_errors_next_to_the_fields_and_in_the_live_region(
    staff: User, customer_a: Customer
) -> None:
    client = signed_in(staff)
    with unchanged():
        response = client.post(
            "/quotes/new",
            form_body(customer_a, title="", **{"item-2-billable": None}),
        )
    page = html.unescape(response.content.decode())
    assert response.status_code == 422
    assert 'id="title-error"><li>A quote needs a title.</li>' in page
    assert (
        "id=\"item-2-percentage-error\"><li>Item 'Structure' is not billable, so it cannot have"
        in page
    )
    assert "The quote was not saved: 2 problems to fix." in messages_of(page)
    # What was typed is kept.
    assert 'value="Handover"' in page


def test_row_buttons_add_remove_and_reorder_without_saving(
    staff: User, customer_a: Customer
) -> None:
    client = signed_in(staff)
    with unchanged():
        added = client.post("/quotes/new", form_body(customer_a, save=None, add_line="1"))
        removed = client.post("/quotes/new", form_body(customer_a, save=None, remove_item="1"))
        moved = client.post("/quotes/new", form_body(customer_a, save=None, item_down="1"))
    assert 'name="line-3-description" autofocus' in added.content.decode()
    page = removed.content.decode()
    assert 'name="item-3-title"' not in page
    assert 'id="item-1-title" name="item-1-title" value="Structure"' in page
    page = moved.content.decode()
    assert 'id="item-1-title" name="item-1-title" value="Structure"' in page
    # The moved step keeps the focus after the page reloads.
    assert 'id="item-2-title" name="item-2-title" autofocus value="Deposit"' in page
    assert 'aria-label="Move step 2 (Deposit) down"' in page


def test_staff_edit_a_draft_quote(staff: User, admin: User, customer_a: Customer) -> None:
    quote = make_quote(actor=admin, customer=customer_a)
    client = signed_in(staff)
    form = client.get(f"/quotes/{quote.pk}/edit").content.decode()
    assert 'value="Garden office"' in form
    body = form_body(customer_a, title="Garden office, larger")
    response = client.post(f"/quotes/{quote.pk}/edit", body, follow=True)
    quote.refresh_from_db()
    assert quote.title == "Garden office, larger"
    assert quote.total == Decimal("1000.01")
    assert quote.lines.count() == 2
    assert "Quote “Garden office, larger” saved as a draft." in messages_of(
        response.content.decode()
    )
    assert [e.kind for e in quote.events.all()] == ["created", "updated"]


def test_a_sent_quote_cannot_be_edited(staff: User, admin: User, customer_a: Customer) -> None:
    quote = sent(make_quote(actor=admin, customer=customer_a), admin)
    client = signed_in(staff)
    with unchanged():
        response = client.post(f"/quotes/{quote.pk}/edit", form_body(customer_a), follow=True)
    assert "only a draft quote can be edited" in messages_of(response.content.decode())


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/quotes/new"),
        ("post", "/quotes/new"),
        ("post", "/quotes/preview"),
        ("get", "/quotes/{id}/edit"),
        ("post", "/quotes/{id}/edit"),
        ("post", "/quotes/{id}/send"),
    ],
)
def test_a_customer_cannot_reach_the_staff_quote_actions(
    alice: User, admin: User, customer_a: Customer, method: str, path: str
) -> None:
    quote = make_quote(actor=admin, customer=customer_a)
    client = signed_in(alice)
    with unchanged():
        response = getattr(client, method)(path.format(id=quote.pk), form_body(customer_a))
    assert response.status_code == 404


# --- sending, accepting for the customer, declining ---------------------------------------------


def test_staff_send_a_quote_and_the_customer_is_emailed_a_link(
    staff: User, admin: User, customer_a: Customer, settings: Any
) -> None:
    settings.BASE_URL = "https://portal.example"
    quote = make_quote(actor=admin, customer=customer_a)
    response = signed_in(staff).post(f"/quotes/{quote.pk}/send", follow=True)

    quote.refresh_from_db()
    assert quote.status == QuoteStatus.SENT
    assert quote.sent_at is not None
    email = OutboxEmail.objects.get()
    assert email.to == "accounts@acme.example"
    assert email.kind == "quote_sent"
    assert f"https://portal.example/quotes/{quote.pk}/" in email.body_text
    assert f"https://portal.example/quotes/{quote.pk}/" in email.body_html
    assert "$1,000.00" in email.subject
    assert (
        "Quote “Garden office” sent to accounts@acme.example: they can read and accept it in "
        "the portal." in messages_of(response.content.decode())
    )


def test_sending_is_refused_without_a_billing_email_and_links_to_the_customer(
    staff: User, admin: User, customer_a: Customer
) -> None:
    customer_a.billing_email = ""
    customer_a.save()
    quote = make_quote(actor=admin, customer=customer_a)
    client = signed_in(staff)
    with unchanged():
        response = client.post(f"/quotes/{quote.pk}/send", follow=True)
    page = response.content.decode()
    assert (
        "Acme Builders has no billing email, so the quote cannot be emailed. Add one on the "
        "customer's page first." in messages_of(page)
    )
    assert f'href="/customers/{customer_a.pk}/edit"' in page


def test_sending_is_refused_while_the_schedule_does_not_add_up_to_100(
    staff: User, admin: User, customer_a: Customer
) -> None:
    quote = make_quote(actor=admin, customer=customer_a, percentages=("50", "40"))
    client = signed_in(staff)
    with unchanged():
        response = client.post(f"/quotes/{quote.pk}/send", follow=True)
    assert "Billable percentages add up to 90 %; they must add up to 100 %." in messages_of(
        response.content.decode()
    )


def test_staff_accept_on_the_customers_behalf_and_the_project_is_linked(
    staff: User, admin: User, customer_a: Customer
) -> None:
    quote = sent(make_quote(actor=admin, customer=customer_a), admin)
    client = signed_in(staff)
    before = client.get(f"/quotes/{quote.pk}/").content.decode()
    assert "with 3 milestones" in before

    response = client.post(f"/quotes/{quote.pk}/accept", follow=True)

    project = Project.objects.get()
    page = response.content.decode()
    assert "accepted on the customer's behalf: its project has been created." in messages_of(page)
    assert f'href="/projects/{project.pk}/"' in page
    assert project.milestones.count() == 3
    quote.refresh_from_db()
    assert quote.accepted_by == staff
    assert quote.accepted_name == ""


def test_staff_decline_with_a_reason(staff: User, admin: User, customer_a: Customer) -> None:
    quote = make_quote(actor=admin, customer=customer_a)
    response = signed_in(staff).post(
        f"/quotes/{quote.pk}/decline", {"reason": "Went with a cheaper builder"}, follow=True
    )
    quote.refresh_from_db()
    assert quote.status == QuoteStatus.DECLINED
    # Staff's reason is the quote's activity, not a comment the customer would be shown.
    assert quote.decline_reason == ""
    assert quote.events.get(kind="declined").details["reason"] == "Went with a cheaper builder"
    page = response.content.decode()
    assert "Quote “Garden office” declined." in messages_of(page)
    assert "Went with a cheaper builder" in page


def test_a_quote_staff_declined_before_sending_never_reaches_the_customer(
    staff: User, admin: User, alice: User, customer_a: Customer
) -> None:
    quote = make_quote(actor=admin, customer=customer_a)
    signed_in(staff).post(f"/quotes/{quote.pk}/decline", {"reason": "INTERNAL: margin too thin"})
    customer = signed_in(alice)
    assert customer.get(f"/quotes/{quote.pk}/").status_code == 404
    assert "Garden office" not in customer.get("/quotes/").content.decode()


def test_a_sent_quote_staff_declined_for_her_shows_her_no_staff_reason(
    staff: User, admin: User, alice: User, customer_a: Customer
) -> None:
    quote = make_quote(actor=admin, customer=customer_a)
    quote_send(actor=admin, quote_id=quote.pk)
    signed_in(staff).post(f"/quotes/{quote.pk}/decline", {"reason": "INTERNAL: margin too thin"})
    page = signed_in(alice).get(f"/quotes/{quote.pk}/").content.decode()
    assert "Declined on" in page
    assert "INTERNAL" not in page


def test_an_answered_quote_cannot_be_answered_again(
    staff: User, admin: User, customer_a: Customer
) -> None:
    quote = make_quote(actor=admin, customer=customer_a)
    client = signed_in(staff)
    client.post(f"/quotes/{quote.pk}/decline")
    with unchanged():
        accepted = client.post(f"/quotes/{quote.pk}/accept", follow=True)
        resent = client.post(f"/quotes/{quote.pk}/send", follow=True)
    assert "is already declined" in messages_of(accepted.content.decode())
    assert "is already declined" in messages_of(resent.content.decode())


# --- the customer's side -----------------------------------------------------------------------


def test_a_customer_reads_a_sent_quote_as_a_document(
    alice: User, admin: User, customer_a: Customer
) -> None:
    quote = sent(make_quote(actor=admin, customer=customer_a, total="1000.01"), admin)
    page = signed_in(alice).get(f"/quotes/{quote.pk}/").content.decode()
    assert "Garden office" in page
    assert "$1,000.01" in page
    assert "$300.00" in page
    assert "$400.01" in page
    assert "Your full name" in page
    # No staff things: no activity, no staff emails, no editing.
    assert "Activity" not in page
    assert admin.email not in page
    assert "/edit" not in page


def test_alice_accepts_online_with_her_typed_name(
    alice: User, admin: User, customer_a: Customer
) -> None:
    quote = sent(make_quote(actor=admin, customer=customer_a), admin)
    response = signed_in(alice).post(
        f"/quotes/{quote.pk}/accept",
        {"name": "Alice Anders", "agree": "on"},
        REMOTE_ADDR="203.0.113.9",
        HTTP_X_FORWARDED_FOR="198.51.100.1",
        follow=True,
    )
    quote.refresh_from_db()
    assert quote.status == QuoteStatus.ACCEPTED
    assert quote.accepted_name == "Alice Anders"
    assert quote.accepted_ip == "203.0.113.9"  # the peer; X-Forwarded-For is not trusted
    assert quote.accepted_by == alice
    project = Project.objects.get(origin_quote=quote)
    assert project.milestones.count() == 3
    page = response.content.decode()
    assert "Thank you: you accepted “Garden office”." in messages_of(page)
    assert f'href="/projects/{project.pk}/"' in page
    event = quote.events.get(kind="accepted")
    assert event.actor == alice
    assert event.details == {"on_behalf": False, "name": "Alice Anders", "ip": "203.0.113.9"}


def test_staff_see_the_acceptance_record(
    staff: User, alice: User, admin: User, customer_a: Customer
) -> None:
    quote = sent(make_quote(actor=admin, customer=customer_a), admin)
    signed_in(alice).post(
        f"/quotes/{quote.pk}/accept",
        {"name": "Alice Anders", "agree": "on"},
        REMOTE_ADDR="203.0.113.9",
    )
    page = signed_in(staff).get(f"/quotes/{quote.pk}/").content.decode()
    assert "<dt>Signed by</dt><dd>Alice Anders</dd>" in page
    assert "<dt>From address</dt><dd>203.0.113.9</dd>" in page
    assert "alice@acme.example" in page


@pytest.mark.parametrize(
    ("body", "sentence"),
    [
        ({"name": "  ", "agree": "on"}, "Type your full name to sign the acceptance."),
        ({"name": "Alice Anders"}, "Tick “I accept this quote” to accept it."),
    ],
)
def test_accepting_online_needs_a_name_and_the_tick(
    alice: User, admin: User, customer_a: Customer, body: dict[str, str], sentence: str
) -> None:
    quote = sent(make_quote(actor=admin, customer=customer_a), admin)
    client = signed_in(alice)
    with unchanged():
        response = client.post(f"/quotes/{quote.pk}/accept", body, follow=True)
    assert sentence in messages_of(response.content.decode())


def test_alice_declines_with_a_comment(alice: User, admin: User, customer_a: Customer) -> None:
    quote = sent(make_quote(actor=admin, customer=customer_a), admin)
    response = signed_in(alice).post(
        f"/quotes/{quote.pk}/decline",
        {"reason": "Too expensive for us this year"},
        REMOTE_ADDR="203.0.113.9",
        follow=True,
    )
    quote.refresh_from_db()
    assert quote.status == QuoteStatus.DECLINED
    assert quote.decline_reason == "Too expensive for us this year"
    assert "You declined “Garden office”." in messages_of(response.content.decode())
    event = quote.events.get(kind="declined")
    assert event.actor == alice
    assert event.details["ip"] == "203.0.113.9"
    assert not Project.objects.exists()


@pytest.mark.parametrize("action", ["", "accept", "decline"])
def test_bob_gets_404_for_alices_quote(
    bob: User, admin: User, customer_a: Customer, action: str
) -> None:
    quote = sent(make_quote(actor=admin, customer=customer_a), admin)
    client = signed_in(bob)
    with unchanged():
        if action:
            response = client.post(f"/quotes/{quote.pk}/{action}", {"name": "Bob", "agree": "on"})
        else:
            response = client.get(f"/quotes/{quote.pk}/")
    assert response.status_code == 404


@pytest.mark.parametrize("action", ["", "accept", "decline"])
def test_a_draft_is_never_shown_to_or_answered_by_the_customer(
    alice: User, admin: User, customer_a: Customer, action: str
) -> None:
    quote = make_quote(actor=admin, customer=customer_a)
    client = signed_in(alice)
    with unchanged():
        if action:
            response = client.post(f"/quotes/{quote.pk}/{action}", {"name": "Alice", "agree": "on"})
        else:
            response = client.get(f"/quotes/{quote.pk}/")
    assert response.status_code == 404


def test_a_customer_cannot_answer_a_quote_twice(
    alice: User, admin: User, customer_a: Customer
) -> None:
    quote = sent(make_quote(actor=admin, customer=customer_a), admin)
    client = signed_in(alice)
    client.post(f"/quotes/{quote.pk}/decline")
    with unchanged():
        response = client.post(
            f"/quotes/{quote.pk}/accept", {"name": "Alice Anders", "agree": "on"}, follow=True
        )
    assert "is already declined" in messages_of(response.content.decode())
    page = response.content.decode()
    assert "Your full name" not in page  # no accept form on an answered quote


def test_without_javascript_a_confirmation_opens_as_part_of_the_page(
    staff: User, alice: User, admin: User, customer_a: Customer
) -> None:
    quote = sent(make_quote(actor=admin, customer=customer_a), admin)
    staff_page = signed_in(staff).get(f"/quotes/{quote.pk}/?confirm=accept").content.decode()
    assert 'aria-labelledby="accept-title" open>' in staff_page
    assert 'aria-labelledby="send-title">' in staff_page  # the others stay closed
    customer_page = signed_in(alice).get(f"/quotes/{quote.pk}/?confirm=decline").content.decode()
    assert 'aria-labelledby="decline-title" open>' in customer_page


def test_a_new_quote_form_points_out_nothing_before_anything_is_typed(
    staff: User, customer_a: Customer
) -> None:
    page = signed_in(staff).get(f"/quotes/new?customer={customer_a.pk}").content.decode()
    assert "errorlist" not in page
    assert f'<option value="{customer_a.pk}" selected>Acme Builders</option>' in page
    assert 'hx-post="/quotes/preview"' in page


@pytest.mark.parametrize("customer", ["", "²", "99999999999999999999999", "424242"])
def test_a_quote_for_no_real_customer_is_refused_next_to_the_customer_field(
    staff: User, customer_a: Customer, customer: str
) -> None:
    client = signed_in(staff)
    with unchanged():
        response = client.post("/quotes/new", {**form_body(customer_a), "customer": customer})
    assert response.status_code == 422
    assert 'id="customer-error"><li>Choose the customer this quote is for.</li>' in (
        response.content.decode()
    )
