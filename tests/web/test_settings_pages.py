"""The settings page: an admin changes the business's details; every document, email and
page reads them from the database, the environment giving only the defaults."""

from __future__ import annotations

import io
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.core import mail
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.utils import timezone
from PIL import Image

from tests.billing.helpers import draft_for
from tests.helpers import AfterCommit, unchanged
from tests.web.test_pages import signed_in
from tranche.accounts.business import business_profile, business_row
from tranche.accounts.models import Business, User
from tranche.billing.models import Invoice
from tranche.billing.services.reminders import invoices_tick
from tranche.billing.services.sending import invoice_send
from tranche.notifications.models import OutboxEmail
from tranche.projects.models import Project

pytestmark = pytest.mark.django_db

YEAR = timezone.localdate().year

VALID: dict[str, Any] = {
    "name": "Harbour & Sons Ltd",
    "address": "1 Quay Street\nPortsmouth PO1 2AB",
    "tax_id": "GB123456789",
    "sender_name": "Harbour Billing",
    "reply_to": "Accounts@Harbour.example",
    "payment_terms_days": "30",
    "invoice_number_format": "HB-{year}/{seq:04d}",
    "reminder_days": "14, -2,0, 7",
    "bank_details": "Harbour & Sons Ltd\nIBAN GB33BUKB20201555555555",
    "notify_daily_digest": "on",
    "notify_payment_failed": "on",
}


@pytest.fixture(autouse=True)
def media(settings: Any, tmp_path: Path) -> Path:
    settings.MEDIA_ROOT = tmp_path / "media"
    return Path(settings.MEDIA_ROOT)


def image(kind: str = "PNG", size: tuple[int, int] = (120, 40)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (41, 82, 204)).save(out, kind)
    return out.getvalue()


def upload(content: bytes, name: str = "logo.png", content_type: str = "image/png") -> Any:
    return SimpleUploadedFile(name, content, content_type=content_type)


# --- the page -------------------------------------------------------------------------------


def test_an_admin_sees_the_defaults_the_blank_fields_fall_back_to(admin: User) -> None:
    page = signed_in(admin).get("/settings/").content.decode()
    assert "<h1>Settings</h1>" in page
    assert 'placeholder="Harbour Build Co"' in page  # BUSINESS_NAME of the test environment
    assert "Default: INV-{year}-{seq:05d}" in page
    assert f"The next invoice will be numbered <strong>INV-{YEAR}-00001</strong>." in page
    assert not Business.objects.exists()  # reading the page writes nothing


def test_an_admin_saves_the_settings_and_sees_them_again(admin: User) -> None:
    browser = signed_in(admin)
    response = browser.post("/settings/", VALID)
    assert (response.status_code, response["Location"]) == (302, "/settings/")

    row = Business.objects.get()
    assert row.name == "Harbour & Sons Ltd"
    assert row.reply_to == "accounts@harbour.example"
    assert row.payment_terms_days == 30
    assert row.reminder_days == "-2, 0, 7, 14"
    assert (row.notify_daily_digest, row.notify_payment_received, row.notify_payment_failed) == (
        True,
        False,
        True,
    )
    page = browser.get("/settings/").content.decode()
    assert "Settings saved: new documents and emails use them." in page
    assert 'value="Harbour &amp; Sons Ltd"' in page
    assert f"<strong>HB-{YEAR}/0001</strong>" in page
    assert '<a class="brand" href="/">Harbour &amp; Sons Ltd</a>' in page


@pytest.mark.parametrize(
    ("field", "value", "sentence"),
    [
        (
            "invoice_number_format",
            "INV-{year}",
            "The invoice number format must contain {seq}, the running number (e.g. {seq:05d}).",
        ),
        (
            "invoice_number_format",
            "INV-{seq}",
            "The invoice number format must contain {year}: numbers restart every year, so "
            "without it they would repeat.",
        ),
        (
            "invoice_number_format",
            "INV-{year}-{seq}-{customer}",
            "The invoice number format may only use {year} and {seq}, not customer.",
        ),
        ("invoice_number_format", "INV-{year-{seq}", "The invoice number format is not valid"),
        (
            "invoice_number_format",
            'INV\n{year}"-{seq}',
            "The invoice number format may not contain line breaks, tabs, quotes or backslashes.",
        ),
        (
            "reminder_days",
            "-3, soon, 7",
            "Reminder steps must be whole numbers of days separated by commas, e.g. -3, 0, 7, 14.",
        ),
        (
            "reminder_days",
            "0, 400",
            "Each reminder step must be between -60 and 365 days from the due date.",
        ),
        ("reply_to", "accounts@localhost", "'accounts@localhost' is not an email address."),
        ("payment_terms_days", "366", "Payment terms must be between 0 and 365 days."),
        ("payment_terms_days", "two weeks", "Payment terms must be a whole number of days"),
        ("sender_name", "Billing\r\nBcc: x@evil.example", "The sender name cannot contain"),
        ("tax_id", "X" * 65, "The tax id must be at most 64 characters."),
    ],
)
def test_a_wrong_value_is_refused_next_to_its_field_and_nothing_is_saved(
    admin: User, field: str, value: str, sentence: str
) -> None:
    browser = signed_in(admin)
    with unchanged():
        response = browser.post("/settings/", {**VALID, field: value})
    assert response.status_code == 422
    page = response.content.decode().replace("&#x27;", "'").replace("&lt;", "<")
    assert f'id="id_{field}-error"' in page
    assert f'href="#id_{field}"' in page  # the error summary links to the field
    assert sentence in page
    assert 'class="flash error"' in page  # and the live region says it too


def test_every_wrong_field_is_reported_at_once(admin: User) -> None:
    browser = signed_in(admin)
    with unchanged():
        response = browser.post(
            "/settings/", {**VALID, "reminder_days": "x", "reply_to": "nope", "tax_id": "X" * 99}
        )
    page = response.content.decode()
    assert "Please correct 3 fields" in page
    assert "(and 2 more field(s) to correct)" in page


@pytest.mark.parametrize(
    ("content", "name", "sentence"),
    [
        (b"GIF89a not really", "logo.gif", "this file is not one"),
        (image("GIF"), "logo.gif", "The logo must be a PNG or JPEG image, not GIF."),
        (b"<svg xmlns='http://www.w3.org/2000/svg'/>", "logo.svg", "this file is not one"),
        (b"\x89PNG" + b"0" * (1024 * 1024), "big.png", "The logo must be at most 1 MB."),
        (image("PNG", (4100, 10)), "wide.png", "at most 4000 pixels"),
    ],
    ids=["not-an-image", "gif", "svg", "too-big", "too-wide"],
)
def test_a_logo_that_is_not_a_small_png_or_jpeg_is_refused(
    admin: User, content: bytes, name: str, sentence: str, media: Path
) -> None:
    browser = signed_in(admin)
    with unchanged():
        response = browser.post("/settings/", {**VALID, "logo": upload(content, name)})
    assert response.status_code == 422
    assert sentence in response.content.decode()
    assert not media.exists() or not any(media.rglob("*.*"))


def test_staff_are_refused_and_a_customer_is_shown_nothing(
    staff: User, alice: User, admin: User
) -> None:
    business_row()
    for user, status in ((staff, 403), (alice, 404)):
        browser = signed_in(user)
        with unchanged():
            assert browser.get("/settings/").status_code == status
            assert browser.post("/settings/", VALID).status_code == status
            assert browser.get("/settings/number-preview?invoice_number_format=X").status_code == (
                status
            )
    assert "/settings/" not in signed_in(staff).get("/").content.decode()
    anonymous = Client().get("/settings/")
    assert anonymous.status_code == 302
    assert anonymous["Location"].startswith("/login/")


def test_the_number_preview_follows_what_is_typed(admin: User, project_a: Project) -> None:
    invoice_send(actor=admin, invoice_id=draft_for(project_a, 1, admin).pk)
    browser = signed_in(admin)
    ok = browser.get("/settings/number-preview", {"invoice_number_format": "{year}-{seq:03d}"})
    assert f"<strong>{YEAR}-002</strong>" in ok.content.decode()
    bad = browser.get("/settings/number-preview", {"invoice_number_format": "{year}"})
    assert "must contain {seq}" in bad.content.decode()


# --- the logo -------------------------------------------------------------------------------


def test_an_uploaded_logo_is_served_publicly_and_shown_in_the_header(
    admin: User, media: Path, after_commit: AfterCommit
) -> None:
    browser = signed_in(admin)
    png = image("PNG")
    browser.post("/settings/", {**VALID, "logo": upload(png)})
    profile = business_profile()
    assert profile.logo_url.startswith("/branding/logo/logo-")
    assert profile.logo_url.endswith(".png")
    # In the configured storage: here the default, a folder under MEDIA_ROOT.
    assert (media / profile.logo_name).read_bytes() == png

    served = Client().get(profile.logo_url)
    assert served.status_code == 200
    assert served["Content-Type"] == "image/png"
    assert "immutable" in served["Cache-Control"]
    assert b"".join(served.streaming_content) == png  # type: ignore[attr-defined]
    assert f'<img class="brand-logo" src="{profile.logo_url}"' in browser.get("/").content.decode()
    assert Client().get("/branding/logo/other.png").status_code == 404

    # A new logo replaces the old one, whose address stops working and whose file goes
    # once the change is committed.
    with after_commit(execute=True):
        browser.post(
            "/settings/", {**VALID, "logo": upload(image("JPEG"), "logo.jpg", "image/jpeg")}
        )
    newer = business_profile()
    assert newer.logo_url.endswith(".jpg")
    assert Client().get(newer.logo_url)["Content-Type"] == "image/jpeg"
    assert Client().get(profile.logo_url).status_code == 404
    assert not (media / profile.logo_name).exists()

    browser.post("/settings/", {**VALID, "remove_logo": "on"})
    assert business_profile().logo_url == ""
    assert Client().get(newer.logo_url).status_code == 404


# --- every consumer reads the database over the environment -----------------------------------


def test_invoice_numbers_take_the_saved_format(admin: User, project_a: Project) -> None:
    signed_in(admin).post("/settings/", VALID)
    sent = invoice_send(actor=admin, invoice_id=draft_for(project_a, 1, admin).pk)
    assert sent.number == f"HB-{YEAR}/0001"


def test_reminders_follow_the_saved_steps(
    admin: User, project_a: Project, settings: Any, after_commit: AfterCommit
) -> None:
    settings.REMINDER_DAYS = [7]
    signed_in(admin).post("/settings/", {**VALID, "reminder_days": "1"})
    sent = invoice_send(actor=admin, invoice_id=draft_for(project_a, 1, admin).pk)
    with after_commit(execute=True):
        report = invoices_tick(now=timezone.now() + timedelta(days=sent_days(sent) + 1))
    assert report.reminders_queued == 1
    assert OutboxEmail.objects.filter(key=f"invoice:{sent.pk}:invoice_reminder:1").exists()


def sent_days(invoice: Invoice) -> int:
    return (invoice.due_date - timezone.localdate()).days


def test_invoice_emails_come_from_the_saved_sender_with_its_reply_to(
    admin: User, project_a: Project, settings: Any, after_commit: AfterCommit
) -> None:
    settings.DEFAULT_FROM_EMAIL = "Tranche <billing@harbour.example>"
    signed_in(admin).post("/settings/", VALID)
    with after_commit(execute=True):
        sent = invoice_send(actor=admin, invoice_id=draft_for(project_a, 1, admin).pk)

    [email] = mail.outbox
    assert email.from_email == "Harbour Billing <billing@harbour.example>"
    assert email.reply_to == ["accounts@harbour.example"]
    assert email.subject.startswith(f"Invoice {sent.number} from Harbour & Sons Ltd: ")
    assert "IBAN GB33BUKB20201555555555" in email.body
    assert "1 Quay Street" in email.body


def test_the_sender_defaults_to_the_business_name_and_no_reply_to(
    admin: User, project_a: Project, settings: Any, after_commit: AfterCommit
) -> None:
    settings.DEFAULT_FROM_EMAIL = "billing@harbour.example"
    with after_commit(execute=True):
        invoice_send(actor=admin, invoice_id=draft_for(project_a, 1, admin).pk)
    [email] = mail.outbox
    assert email.from_email == "Harbour Build Co <billing@harbour.example>"
    assert email.reply_to == []


def test_the_pay_page_wears_the_saved_name(admin: User, project_a: Project) -> None:
    signed_in(admin).post("/settings/", VALID)
    sent = invoice_send(actor=admin, invoice_id=draft_for(project_a, 1, admin).pk)
    page = Client().get(f"/pay/{sent.pay_token}").content.decode()
    assert "Harbour &amp; Sons Ltd" in page
    assert "Harbour Build Co" not in page


def test_an_upload_may_hold_nul_bytes_but_its_text_fields_may_not(admin: User) -> None:
    browser = signed_in(admin)
    with unchanged():
        response = browser.post("/settings/", {**VALID, "name": "A\x00B", "logo": upload(image())})
    assert response.status_code == 400
    assert browser.post("/settings/", {**VALID, "logo": upload(image())}).status_code == 302


def test_only_an_admin_may_update_the_business_through_the_service(staff: User) -> None:
    from tranche.accounts.business import business_update
    from tranche.core.errors import PermissionDenied

    with unchanged(), pytest.raises(PermissionDenied):
        business_update(
            actor=staff,
            name="Mine now",
            address="",
            tax_id="",
            sender_name="",
            reply_to="",
            payment_terms_days=None,
            invoice_number_format="",
            reminder_days="",
            bank_details="",
            notify_daily_digest=True,
            notify_payment_received=True,
            notify_payment_failed=True,
        )


def test_blank_fields_fall_back_to_the_environment(admin: User, settings: Any) -> None:
    settings.INVOICE_NUMBER_FORMAT = "ENV-{year}-{seq}"
    settings.REMINDER_DAYS = [3]
    settings.DEFAULT_PAYMENT_TERMS_DAYS = 21
    signed_in(admin).post("/settings/", {"notify_daily_digest": "on"})
    profile = business_profile()
    assert profile.name == "Harbour Build Co"
    assert profile.invoice_number_format == "ENV-{year}-{seq}"
    assert profile.reminder_days == (3,)
    assert profile.payment_terms_days == 21
    assert (profile.notify_daily_digest, profile.notify_payment_received) == (True, False)
