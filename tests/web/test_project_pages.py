"""One project's pages: staff manage the schedule on the Milestones tab (add, edit, move,
delete, complete, reopen, each through the services, consequential ones behind a dialog
that says what will happen), read the Financials and the Activity tabs; the customer sees
a milestone timeline and their invoices, nothing of the staff's."""

from __future__ import annotations

import html
import re
from decimal import Decimal

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from tests.billing.helpers import draft_for
from tests.factories import make_project
from tests.helpers import unchanged
from tests.web.test_pages import signed_in
from tranche.accounts.models import Customer, User
from tranche.billing.models import Invoice
from tranche.billing.services.cancelling import invoice_cancel
from tranche.billing.services.drafts import milestone_complete, milestone_reopen
from tranche.billing.services.payments import payment_record_manual
from tranche.billing.services.sending import invoice_send
from tranche.projects.models import Milestone, Project
from tranche.projects.services import milestone_create

pytestmark = pytest.mark.django_db


def text(response: object) -> str:
    """The page's HTML with entities decoded, so sentences read as people see them."""
    return html.unescape(response.content.decode())  # type: ignore[attr-defined]


def messages_of(page: str) -> str:
    found = re.search(r'<div id="messages"[^>]*>(.*?)</div>', page, re.S)
    return re.sub(r"<[^>]+>", "", found.group(1)).strip() if found else ""


def titles(project: Project) -> list[tuple[int, str]]:
    return list(project.milestones.order_by("position").values_list("position", "title"))


def url(project: Project, milestone: Milestone | None = None, action: str = "") -> str:
    base = f"/projects/{project.pk}/"
    return f"{base}milestones/{milestone.pk}/{action}" if milestone else base


# --- tabs ---------------------------------------------------------------------------------


def test_staff_see_three_tabs_the_current_one_marked(staff: User, project_a: Project) -> None:
    browser = signed_in(staff)
    for path, current in (
        (url(project_a), "Milestones"),
        (f"{url(project_a)}financials", "Financials"),
        (f"{url(project_a)}activity", "Activity"),
    ):
        page = text(browser.get(path))
        marked = re.findall(r'<a href="[^"]+" aria-current="page">([^<]+)</a>', page)
        assert marked == [current], path
        for tab in ("Milestones", "Financials", "Activity"):
            assert f">{tab}</a>" in page


@pytest.mark.parametrize("tab", ["", "financials", "activity"])
def test_customers_cannot_open_staff_tabs_and_nobody_opens_another_customers_project(
    alice: User, bob: User, project_a: Project, tab: str
) -> None:
    if tab:
        assert signed_in(alice).get(f"{url(project_a)}{tab}").status_code == 404
    assert signed_in(bob).get(f"{url(project_a)}{tab}").status_code == 404


# --- adding, editing, moving, deleting ----------------------------------------------------


def test_staff_add_a_milestone_at_the_end_and_hear_so(staff: User, customer_a: Customer) -> None:
    project = make_project(actor=staff, customer=customer_a, percentages=("30", "30"))
    browser = signed_in(staff)

    response = browser.post(
        f"{url(project)}milestones/add",
        {
            "title": "Handover",
            "planned_date": "2026-12-20",
            "is_billable": "on",
            "billing_percentage": "40",
        },
    )

    assert response.status_code == 302
    assert response["Location"] == url(project)
    added = project.milestones.get(title="Handover")
    assert (added.position, added.is_billable, added.billing_percentage) == (3, True, Decimal(40))
    assert str(added.planned_date) == "2026-12-20"
    assert messages_of(text(browser.get(url(project)))) == (
        "Added milestone 'Handover' at the end of the schedule."
    )


def test_a_share_that_takes_the_schedule_past_100_is_refused_next_to_the_field(
    staff: User, project_a: Project
) -> None:
    browser = signed_in(staff)
    with unchanged():
        response = browser.post(
            f"{url(project_a)}milestones/add",
            {"title": "Extra", "is_billable": "on", "billing_percentage": "10"},
        )
    assert response.status_code == 422
    page = text(response)
    sentence = "Billable percentages add up to 110.00%; they may add up to at most 100%."
    assert f'<ul class="errorlist" id="add-percentage-error"><li>{sentence}</li></ul>' in page
    assert messages_of(page) == sentence
    assert 'aria-invalid="true"' in page
    assert 'value="Extra"' in page  # what was typed is kept


def test_a_milestone_without_a_title_is_refused_with_the_services_sentence(
    staff: User, project_a: Project
) -> None:
    browser = signed_in(staff)
    with unchanged():
        response = browser.post(f"{url(project_a)}milestones/add", {"title": "  "})
    assert response.status_code == 422
    assert (
        '<ul class="errorlist" id="add-title-error"><li>A milestone needs a title.</li></ul>'
        in text(response)
    )


def test_staff_edit_a_pending_milestone(staff: User, project_a: Project) -> None:
    milestone = project_a.milestones.get(position=2)
    browser = signed_in(staff)
    form = text(browser.get(url(project_a, milestone, "edit")))
    assert 'value="Step 2"' in form
    assert 'value="30.00"' in form

    response = browser.post(
        url(project_a, milestone, "edit"),
        {"title": "Design approval", "planned_date": "2027-01-15", "billing_percentage": ""},
    )

    assert response.status_code == 302
    milestone.refresh_from_db()
    assert (milestone.title, milestone.is_billable, milestone.billing_percentage) == (
        "Design approval",
        False,
        None,
    )
    assert str(milestone.planned_date) == "2027-01-15"
    assert messages_of(text(browser.get(url(project_a)))) == "Saved milestone 'Design approval'."


def test_editing_a_share_past_100_is_refused_next_to_the_field(
    staff: User, project_a: Project
) -> None:
    milestone = project_a.milestones.get(position=2)
    browser = signed_in(staff)
    with unchanged():
        response = browser.post(
            url(project_a, milestone, "edit"),
            {"title": "Step 2", "is_billable": "on", "billing_percentage": "31"},
        )
    assert response.status_code == 422
    assert (
        '<ul class="errorlist" id="edit-percentage-error"><li>Billable percentages add up to '
        "101.00%; they may add up to at most 100%.</li></ul>"
    ) in text(response)


def test_a_completed_milestone_offers_no_edit_move_or_delete_and_refuses_them(
    staff: User, project_a: Project
) -> None:
    milestone = project_a.milestones.get(position=1)
    milestone_complete(actor=staff, project_id=project_a.pk, milestone_id=milestone.pk)
    browser = signed_in(staff)
    page = text(browser.get(url(project_a)))
    for label in ("Edit milestone Step 1", "Delete milestone Step 1", "Move Step 1 down"):
        assert f'aria-label="{label}"' not in page
    assert 'aria-label="Edit milestone Step 2"' in page

    sentence = "Milestone 'Step 1' is completed; only a pending milestone can be {}."
    with unchanged():
        edited = browser.post(url(project_a, milestone, "edit"), {"title": "Renamed"})
    assert edited.status_code == 422
    assert messages_of(text(edited)) == sentence.format("edited")
    for action, data, verb in (("move", {"position": "2"}, "edited"), ("delete", {}, "deleted")):
        with unchanged():
            assert browser.post(url(project_a, milestone, action), data).status_code == 302
        assert messages_of(text(browser.get(url(project_a)))) == sentence.format(verb)


def test_staff_move_a_pending_milestone_up_and_down(staff: User, project_a: Project) -> None:
    third = project_a.milestones.get(position=3)
    browser = signed_in(staff)
    page = text(browser.get(url(project_a)))
    assert 'aria-label="Move Step 1 up"' not in page  # the first has nowhere to go up
    assert 'aria-label="Move Step 3 down"' not in page
    assert 'aria-label="Move Step 3 up"' in page

    browser.post(url(project_a, third, "move"), {"position": "2"})
    assert titles(project_a) == [(1, "Step 1"), (2, "Step 3"), (3, "Step 2")]
    assert messages_of(text(browser.get(url(project_a)))) == "Moved 'Step 3' to position 2."

    browser.post(url(project_a, third, "move"), {"position": "3"})
    assert titles(project_a) == [(1, "Step 1"), (2, "Step 2"), (3, "Step 3")]


def test_a_move_past_the_ends_is_refused_with_the_services_sentence(
    staff: User, project_a: Project
) -> None:
    first = project_a.milestones.get(position=1)
    browser = signed_in(staff)
    for position in ("0", "4", "up"):
        with unchanged():
            browser.post(url(project_a, first, "move"), {"position": position})
        assert messages_of(text(browser.get(url(project_a)))) == "Position must be between 1 and 3."


def test_staff_delete_a_pending_milestone_after_a_confirmation(
    staff: User, project_a: Project
) -> None:
    second = project_a.milestones.get(position=2)
    browser = signed_in(staff)
    page = text(browser.get(url(project_a)))
    assert f'data-dialog="delete-{second.pk}" aria-label="Delete milestone Step 2"' in page
    assert (
        "Deleting 'Step 2' removes it from the schedule and frees its 30 % share; the "
        "milestones after it move up. This cannot be undone."
    ) in page

    response = browser.post(url(project_a, second, "delete"))

    assert response.status_code == 302
    assert titles(project_a) == [(1, "Step 1"), (2, "Step 3")]
    assert messages_of(text(browser.get(url(project_a)))) == "Deleted milestone 'Step 2'."


@pytest.mark.parametrize(
    ("action", "data"),
    [
        ("add", {"title": "X"}),
        ("edit", {"title": "X"}),
        ("move", {"position": "2"}),
        ("delete", {}),
        ("complete", {}),
        ("reopen", {}),
    ],
)
def test_customers_cannot_change_a_schedule_theirs_or_anyone_elses(
    alice: User, bob: User, project_a: Project, action: str, data: dict[str, str]
) -> None:
    milestone = project_a.milestones.get(position=1)
    path = (
        f"{url(project_a)}milestones/add" if action == "add" else url(project_a, milestone, action)
    )
    for browser in (signed_in(alice), signed_in(bob)):
        with unchanged():
            assert browser.post(path, data).status_code == 404


def test_a_milestone_of_another_project_is_not_found(
    staff: User, project_a: Project, project_b: Project
) -> None:
    theirs = project_b.milestones.get(position=1)
    browser = signed_in(staff)
    with unchanged():
        assert browser.get(url(project_a, theirs, "edit")).status_code == 404
        assert browser.post(url(project_a, theirs, "delete")).status_code == 404
        browser.post(url(project_a, theirs, "complete"))
    assert messages_of(text(browser.get(url(project_a)))) == (
        f"Milestone {theirs.pk} does not exist in project {project_a.pk}."
    )


# --- completing and reopening -------------------------------------------------------------


def test_the_complete_dialog_says_what_a_billable_completion_creates(
    staff: User, admin: User, customer_a: Customer
) -> None:
    project = make_project(
        actor=admin, customer=customer_a, total="10000.00", percentages=("30", "70")
    )
    first = project.milestones.get(position=1)
    survey = milestone_create(actor=admin, project_id=project.pk, title="Survey")
    page = text(signed_in(staff).get(url(project)))

    assert f'data-dialog="complete-{first.pk}" aria-label="Complete milestone Step 1"' in page
    assert (
        "Completing 'Step 1' creates a draft invoice for $3,000.00 (30 % of the contract). "
        "Nobody is emailed until an admin sends it."
    ) in page
    assert "Completing 'Survey' marks it done. It is not billable: no invoice is created." in page
    assert f'<dialog id="complete-{survey.pk}" aria-labelledby="complete-{survey.pk}-title">' in (
        page
    )


def test_staff_complete_a_billable_milestone_and_hear_about_its_draft(
    staff: User, project_a: Project
) -> None:
    first = project_a.milestones.get(position=1)
    browser = signed_in(staff)
    response = browser.post(url(project_a, first, "complete"))
    assert response.status_code == 302
    invoice = Invoice.objects.get()
    assert invoice.status == "draft"
    page = text(browser.get(url(project_a)))
    assert messages_of(page) == (
        "Completed 'Step 1'. A draft invoice for $300.00 is waiting for an admin to send it."
    )
    assert f'<a class="small" href="/invoices/{invoice.pk}/">Draft invoice</a>' in page
    # Staff cannot reopen: said, not offered.
    assert "Only an admin can reopen it." in page
    assert 'aria-label="Reopen milestone Step 1"' not in page


def test_completing_a_non_billable_milestone_says_no_invoice_was_created(
    staff: User, project_a: Project
) -> None:
    survey = milestone_create(actor=staff, project_id=project_a.pk, title="Survey")
    browser = signed_in(staff)
    browser.post(url(project_a, survey, "complete"))
    assert not Invoice.objects.exists()
    assert messages_of(text(browser.get(url(project_a)))) == (
        "Completed 'Survey'. No invoice was created."
    )


def test_a_title_with_quotes_is_announced_as_typed_not_as_python_would_print_it(
    staff: User, project_a: Project
) -> None:
    survey = milestone_create(actor=staff, project_id=project_a.pk, title='Owner\'s "final" walk')
    browser = signed_in(staff)
    browser.post(url(project_a, survey, "complete"))
    assert messages_of(text(browser.get(url(project_a)))) == (
        "Completed 'Owner's \"final\" walk'. No invoice was created."
    )


def test_a_billable_milestone_that_bills_nothing_is_not_offered_for_completion(
    staff: User, admin: User, customer_a: Customer
) -> None:
    project = make_project(actor=admin, customer=customer_a, total="0.01", percentages=("50", "50"))
    second = project.milestones.get(position=2)  # allocate() gives the cent to the first
    page = text(signed_in(staff).get(url(project)))
    sentence = (
        "Milestone 'Step 2' bills nothing (its amount is zero); make it non-billable or "
        "change its percentage before completing it."
    )
    assert (
        f'<button type="button" class="small" disabled aria-describedby="complete-why-'
        f'{second.pk}">Complete</button>'
    ) in page
    assert f'<span class="ms-why" id="complete-why-{second.pk}">{sentence}</span>' in page
    browser = signed_in(staff)
    with unchanged():
        browser.post(url(project, second, "complete"))


def test_an_admin_reopens_through_a_dialog_that_says_the_draft_is_cancelled(
    admin: User, project_a: Project
) -> None:
    draft = draft_for(project_a, 1, admin)
    first = project_a.milestones.get(position=1)
    browser = signed_in(admin)
    page = text(browser.get(url(project_a)))
    assert f'data-dialog="reopen-{first.pk}" aria-label="Reopen milestone Step 1"' in page
    assert (
        "Reopening 'Step 1' sets it back to pending and cancels its draft invoice for $300.00."
    ) in page

    browser.post(url(project_a, first, "reopen"))

    first.refresh_from_db()
    draft.refresh_from_db()
    assert (first.status, draft.status) == ("pending", "cancelled")
    assert messages_of(text(browser.get(url(project_a)))) == (
        "Reopened 'Step 1'. Any draft invoice for it was cancelled."
    )


def test_a_milestone_whose_invoice_was_sent_cannot_be_reopened_and_the_page_says_why(
    admin: User, project_a: Project
) -> None:
    sent = invoice_send(actor=admin, invoice_id=draft_for(project_a, 1, admin).pk)
    first = project_a.milestones.get(position=1)
    browser = signed_in(admin)
    page = text(browser.get(url(project_a)))
    sentence = (
        f"Invoice {sent.number} was already sent for this milestone. Cancel the invoice "
        "first, then reopen the milestone."
    )
    assert (
        f'<button type="button" class="small secondary" disabled aria-describedby="reopen-why-'
        f'{first.pk}">Reopen</button>'
    ) in page
    assert f'{sentence} <a href="/invoices/{sent.pk}/">Open invoice {sent.number}</a>' in page
    assert f'id="reopen-{first.pk}"' not in page  # no dialog to open

    with unchanged():
        browser.post(url(project_a, first, "reopen"))
    assert messages_of(text(browser.get(url(project_a)))) == sentence


def test_staff_cannot_reopen(staff: User, project_a: Project) -> None:
    draft_for(project_a, 1, staff)
    first = project_a.milestones.get(position=1)
    browser = signed_in(staff)
    with unchanged():
        assert browser.post(url(project_a, first, "reopen")).status_code == 404


# --- financials and activity --------------------------------------------------------------


def test_the_financials_tab_totals_the_project_and_links_each_invoice(
    staff: User, admin: User, project_a: Project
) -> None:
    sent = invoice_send(actor=admin, invoice_id=draft_for(project_a, 1, admin).pk)
    payment_record_manual(
        actor=admin,
        invoice_id=sent.pk,
        amount=Decimal("100.00"),
        method="bank_transfer",
        received_on=timezone.localdate(),
    )
    draft = draft_for(project_a, 2, admin)

    for user in (staff, admin):
        page = text(signed_in(user).get(f"{url(project_a)}financials"))
        for shown in (
            "<span>Contract</span><strong>$1,000.00</strong>",
            "<span>Invoiced</span><strong>$300.00</strong>",
            "<span>Paid</span><strong>$100.00</strong>",
            "<span>Outstanding</span><strong>$200.00</strong>",
            "<span>In draft</span><strong>$300.00</strong>",
            "<span>Not yet billed</span><strong>$400.00</strong>",
            f'<a href="/invoices/{sent.pk}/">{sent.number}</a>',
            f'<a href="/invoices/{draft.pk}/" aria-label="Draft invoice for Step 2">Draft</a>',
            '<td data-label="Milestone">Step 1</td>',
        ):
            assert shown in page, (user.email, shown)
        # No one-click send: an admin goes to the invoice's own send confirmation.
        assert "/send" not in page
        assert "Send</button>" not in page
        review = (
            f'<a class="button small" href="/invoices/{draft.pk}/#send" '
            'aria-label="Review and send the draft invoice for Step 2">Review and send</a>'
        )
        assert (review in page) == user.is_admin


def test_the_activity_tab_tells_the_story_newest_first(
    staff: User, admin: User, project_a: Project
) -> None:
    admin.full_name = "Ada Admin"
    admin.save(update_fields=["full_name"])
    sent = invoice_send(actor=admin, invoice_id=draft_for(project_a, 1, staff).pk)
    payment_record_manual(
        actor=admin,
        invoice_id=sent.pk,
        amount=Decimal("300.00"),
        method="bank_transfer",
        received_on=timezone.localdate(),
    )
    draft_for(project_a, 2, staff)
    second = project_a.milestones.get(position=2)
    milestone_reopen(actor=admin, project_id=project_a.pk, milestone_id=second.pk)

    page = text(signed_in(staff).get(f"{url(project_a)}activity"))
    sentences = re.findall(r"<li><span>(.*?)</span>", page)
    assert sentences == [
        "Ada Admin reopened milestone 'Step 2', cancelling the draft invoice for 'Step 2'",
        f"{staff.email} completed milestone 'Step 2', creating a draft invoice for $300.00",
        f"Invoice {sent.number} became paid",
        f"Ada Admin recorded a payment of $300.00 by bank transfer on invoice {sent.number}",
        f"Ada Admin sent invoice {sent.number} to {sent.customer_email}",
        f"{staff.email} completed milestone 'Step 1', creating a draft invoice for $300.00",
    ]
    assert re.search(r"— <time datetime=\"[^\"]+\">\w{3} \d+, \d{4}, \d+:\d\d [AP]M</time>", page)


def test_the_activity_tab_is_paged(staff: User, admin: User, customer_a: Customer) -> None:
    project = make_project(actor=admin, customer=customer_a, percentages=("2",) * 30)
    for position in range(1, 31):
        draft_for(project, position, staff)
    browser = signed_in(staff)
    first = text(browser.get(f"{url(project)}activity"))
    assert "Page 1 of 2 · 30 events" in first
    assert first.count("<li><span>") == 25
    assert "creating a draft invoice" in first
    assert text(browser.get(f"{url(project)}activity?page=2")).count("<li><span>") == 5


# --- the customer's view ------------------------------------------------------------------


def test_the_customer_sees_a_timeline_and_her_invoices_with_pay_links_never_a_draft(
    admin: User, alice: User, project_a: Project
) -> None:
    milestone_create(actor=admin, project_id=project_a.pk, title="Survey")
    project_a.milestones.filter(position=3).update(planned_date="2027-02-01")
    paid = invoice_send(actor=admin, invoice_id=draft_for(project_a, 1, admin).pk)
    payment_record_manual(
        actor=admin,
        invoice_id=paid.pk,
        amount=Decimal("300.00"),
        method="bank_transfer",
        received_on=timezone.localdate(),
    )
    never_sent = draft_for(project_a, 2, admin)
    invoice_cancel(actor=admin, invoice_id=never_sent.pk, reason="Wrong amount")
    second = project_a.milestones.get(position=2)
    milestone_reopen(actor=admin, project_id=project_a.pk, milestone_id=second.pk)
    draft = draft_for(project_a, 2, admin)

    page = text(signed_in(alice).get(url(project_a)))

    steps = re.findall(r'<strong>([^<]+)</strong> <span class="badge step-\w+">(\w+)</span>', page)
    assert steps == [
        ("Step 1", "Paid"),
        ("Step 2", "Completed"),
        ("Step 3", "Upcoming"),
        ("Survey", "Upcoming"),
    ]
    assert "Planned for Feb 1, 2027" in page
    assert '$400.00 <span class="muted">(40 % of the contract)</span>' in page
    assert "No charge" in page
    assert "<span>Contract total</span><strong>$1,000.00</strong>" in page
    # Only the sent invoice: neither the cancelled one that never went out nor the draft.
    assert page.count('<td data-label="Invoice">') == 1
    # Its number opens her invoice page, where the PDF and the receipt are.
    assert f'<td data-label="Invoice"><a href="/invoices/{paid.pk}/">{paid.number}</a></td>' in page
    assert draft.status == "draft"
    for staff_word in ("draft", "Draft", "Activity", "Edit", "Reopen", "Complete milestone"):
        assert staff_word not in page, staff_word


def test_the_customer_pays_from_her_project(admin: User, alice: User, project_a: Project) -> None:
    sent = invoice_send(actor=admin, invoice_id=draft_for(project_a, 1, admin).pk)
    page = text(signed_in(alice).get(url(project_a)))
    assert (
        f'<a class="button small" href="{sent.payment_link}" '
        f'aria-label="Pay $300.00 for invoice {sent.number}">Pay $300.00</a>'
    ) in page
    assert '<span class="badge step-invoiced">Invoiced</span>' in page


# --- a page costs the same whatever its size ----------------------------------------------


def _queries(browser: Client, path: str) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = browser.get(path)
    assert response.status_code == 200, path
    return len(queries)


@pytest.mark.parametrize("tab", ["", "financials", "activity"])
def test_each_tab_costs_the_same_queries_with_one_milestone_or_fifty(
    staff: User, admin: User, alice: User, customer_a: Customer, tab: str
) -> None:
    small = make_project(actor=admin, customer=customer_a, percentages=("100",))
    draft_for(small, 1, admin)
    large = make_project(actor=admin, customer=customer_a, percentages=("2",) * 50)
    for position in range(1, 51):
        invoice = draft_for(large, position, admin)
        if position % 2:
            invoice_send(actor=admin, invoice_id=invoice.pk)
    invoice_send(actor=admin, invoice_id=Invoice.objects.get(project=small).pk)

    browser = signed_in(staff)
    assert _queries(browser, f"{url(small)}{tab}") == _queries(browser, f"{url(large)}{tab}")
    if not tab:
        customer = signed_in(alice)
        assert _queries(customer, url(small)) == _queries(customer, url(large))


def test_a_cancelled_draft_shows_as_never_sent_with_nothing_due(
    admin: User, project_a: Project
) -> None:
    draft = draft_for(project_a, 1, admin)
    first = project_a.milestones.get(position=1)
    milestone_reopen(actor=admin, project_id=project_a.pk, milestone_id=first.pk)
    page = text(signed_in(admin).get(f"{url(project_a)}financials"))
    assert (
        f'<a href="/invoices/{draft.pk}/" aria-label="Never sent, cancelled draft for Step 1">'
        "Never sent</a>"
    ) in page
    assert '<td class="num" data-label="Amount due">—</td>' in page
    assert "Review and send" not in page


def test_the_edit_form_says_how_much_of_the_contract_the_schedule_bills(
    staff: User, project_a: Project
) -> None:
    milestone = project_a.milestones.get(position=2)
    page = text(signed_in(staff).get(url(project_a, milestone, "edit")))
    assert "Billable shares may add up to at most 100 %; the schedule bills 100 % now." in page
