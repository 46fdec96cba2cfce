"""`tranche check --deploy`: email goes out through SMTP, from an address that can be
delivered. Without EMAIL_HOST, settings.py writes every email to a file under VAR_DIR/mail,
which is right on a laptop and silent in production: invoices and reminders would never
reach anyone, and nothing would say so."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, Warning, register

SMTP_BACKEND = "django.core.mail.backends.smtp.EmailBackend"


@register(Tags.compatibility, deploy=True)
def check_email(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    if settings.EMAIL_BACKEND != SMTP_BACKEND:
        return [
            Error(
                "EMAIL_HOST is not set, so emails are written to files under VAR_DIR/mail "
                "instead of being sent: no invoice, reminder or invitation would arrive.",
                hint="Set EMAIL_HOST (and EMAIL_PORT, EMAIL_HOST_USER, EMAIL_HOST_PASSWORD) "
                "to your mail provider's SMTP submission server.",
                id="tranche.E101",
            )
        ]
    messages: list[CheckMessage] = []
    if settings.EMAIL_PORT == 465:
        messages.append(
            Warning(
                "EMAIL_PORT is 465 (TLS from the first byte), which Tranche does not speak: "
                "it connects in plain text and upgrades with STARTTLS.",
                hint="Use the provider's submission port 587 with EMAIL_USE_TLS=1.",
                id="tranche.W101",
            )
        )
    elif not settings.EMAIL_USE_TLS and settings.EMAIL_HOST not in ("localhost", "127.0.0.1"):
        messages.append(
            Warning(
                f"EMAIL_USE_TLS is off for {settings.EMAIL_HOST}: the SMTP password and every "
                "email (with its pay link) would cross the network in clear.",
                hint="Set EMAIL_USE_TLS=1 (the default), unless the server is on this machine.",
                id="tranche.W102",
            )
        )
    sender = settings.DEFAULT_FROM_EMAIL.rstrip(">").strip()
    if sender.endswith("@localhost"):
        messages.append(
            Warning(
                f"DEFAULT_FROM_EMAIL is {settings.DEFAULT_FROM_EMAIL!r}: mail from @localhost "
                "is refused or filed as spam by most receiving servers.",
                hint="Set DEFAULT_FROM_EMAIL to an address of your domain that your SMTP "
                'provider may send from, e.g. "Harbour Build <billing@example.com>" (an '
                "admin's sender at /settings/ takes its place once set).",
                id="tranche.W103",
            )
        )
    return messages
