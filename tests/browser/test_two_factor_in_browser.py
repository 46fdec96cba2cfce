"""Two-factor authentication in a real browser. A member of staff on a laptop sets up an
authenticator: the test reads the key from the page as a person would type it into
their app, computes the code, confirms, and sees the recovery codes; then, on a phone,
signs in with the password and a code, and with a recovery code. An admin who must use
two-factor is kept on the set-up page until they have. Every page passes the quality
checks (axe, no sideways scroll, CSP) at the width it was opened at."""

from __future__ import annotations

import re
from base64 import b32decode
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, Page

from tests.browser.quality import LAPTOP, PHONE, check_page, signed_in_page, watch
from tests.factories import PASSWORD, enable_two_factor, totp_code
from tests.figures import record
from tranche.accounts.models import Business, SecurityEvent, SecurityEventKind, User

pytestmark = pytest.mark.django_db(transaction=True)

SEEN: set[str] = set()


@pytest.fixture(scope="module", autouse=True)
def _figures() -> Iterator[None]:
    yield
    record("auth", two_factor_browser_flows=sorted(SEEN))


def fresh_page(browser: Browser, viewport: dict[str, int]) -> Page:
    context = browser.new_context(viewport=viewport)  # type: ignore[arg-type]
    page = context.new_page()
    page.set_default_timeout(15_000)
    page.csp_blocked = watch(page)  # type: ignore[attr-defined]
    return page


def password_step(page: Page, live_server: Any, user: User) -> None:
    page.goto(f"{live_server.url}/login/?next=/projects/")
    page.fill("#id_username", user.email)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/login/code/**")


def test_staff_set_up_an_authenticator_and_sign_in_with_a_code(
    browser: Browser, live_server: Any, staff: User
) -> None:
    page = signed_in_page(browser, live_server, staff, LAPTOP)
    page.goto(f"{live_server.url}/account/")
    page.click("text=Set up two-factor")
    page.wait_for_url("**/account/two-factor/")
    check_page(page, "two-factor-off")
    page.click("a.button:has-text('Set up two-factor')")
    page.wait_for_url("**/account/two-factor/enrol/")
    assert page.locator(".qr svg").is_visible()
    check_page(page, "two-factor-enrol")

    secret = page.inner_text("#totp-secret")
    key = b32decode(secret.replace(" ", ""))
    page.fill("#id_code", totp_code(key))
    page.click("button:has-text('Turn on two-factor')")
    page.wait_for_selector("text=Two-factor authentication is on")
    codes = [c.strip() for c in page.locator(".recovery-codes code").all_inner_texts()]
    assert len(codes) == 10
    assert all(re.fullmatch(r"[a-z2-9]{5}-[a-z2-9]{5}", c) for c in codes)
    check_page(page, "two-factor-codes")
    page.click("text=I have saved them")
    page.wait_for_selector("text=10 of 10 recovery codes left")
    check_page(page, "two-factor-on")

    phone = fresh_page(browser, PHONE)
    password_step(phone, live_server, staff)
    check_page(phone, "two-factor-code-step")
    phone.fill("#id_code", totp_code(key, steps_ahead=1))
    phone.click("button:has-text('Verify and sign in')")
    phone.wait_for_url("**/projects/")
    assert phone.locator("h1").first.inner_text() == "Projects"

    other = fresh_page(browser, LAPTOP)
    password_step(other, live_server, staff)
    other.fill("#id_code", codes[4])
    other.click("button:has-text('Verify and sign in')")
    other.wait_for_selector("text=You signed in with a recovery code")
    check_page(other, "two-factor-signed-in-with-recovery-code")
    assert SecurityEvent.objects.filter(kind=SecurityEventKind.RECOVERY_CODE_USED).count() == 1
    SEEN.update({"enrol_with_qr_and_key", "sign_in_with_app_code", "sign_in_with_recovery_code"})


def test_a_wrong_code_is_explained_on_the_page(
    browser: Browser, live_server: Any, staff: User
) -> None:
    device, _ = enable_two_factor(staff)
    page = fresh_page(browser, PHONE)
    password_step(page, live_server, staff)
    wrong = "000000" if totp_code(device.bin_key, steps_ahead=1) != "000000" else "111111"
    page.fill("#id_code", wrong)
    page.click("button:has-text('Verify and sign in')")
    page.wait_for_selector("#id_code-error")
    assert "not right" in page.inner_text("#id_code-error")
    assert page.get_attribute("#id_code", "aria-invalid") == "true"
    check_page(page, "two-factor-wrong-code")
    SEEN.add("wrong_code_explained")


def test_an_admin_who_must_use_two_factor_is_kept_on_the_set_up_page(
    browser: Browser, live_server: Any, admin: User
) -> None:
    Business.objects.update_or_create(pk=1, defaults={"require_two_factor_for_admins": True})
    page = signed_in_page(browser, live_server, admin, PHONE)
    page.wait_for_url("**/account/two-factor/enrol/")
    assert page.is_visible("text=Admins must use two-factor authentication")
    check_page(page, "two-factor-required-enrol")
    page.goto(f"{live_server.url}/financials/")
    page.wait_for_url("**/account/two-factor/enrol/")

    key = b32decode(page.inner_text("#totp-secret").replace(" ", ""))
    page.fill("#id_code", totp_code(key))
    page.click("button:has-text('Turn on two-factor')")
    page.wait_for_selector("text=Two-factor authentication is on")
    check_page(page, "two-factor-codes")
    # The admin pages at both widths: the phone's, then the laptop's.
    for width in (PHONE, LAPTOP):
        page.set_viewport_size(width)  # type: ignore[arg-type]
        page.goto(f"{live_server.url}/settings/security/")
        check_page(page, "settings-security")
        page.goto(f"{live_server.url}/settings/security/log/")
        assert page.is_visible("td:has-text('Two-factor enabled')")
        check_page(page, "security-log")
    page.goto(f"{live_server.url}/account/two-factor/")
    check_page(page, "two-factor-on")
    SEEN.add("required_admin_kept_on_enrolment")
