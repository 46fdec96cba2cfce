"""Tranche's own `tranche check --deploy` checks of the site as a whole: the secret key, the
database, HTTPS and the public address. Django's deploy checks (security.W0xx) say that a
setting is off; these say which of *our* variables to set and why, and catch what Django
cannot know (a key made for one machine, links in emails that point at localhost).

Errors make `check --deploy` fail; warnings are choices a small install may make on
purpose (SQLite on one machine), printed so that they are made knowingly. The email and
payment checks live with their apps (notifications, billing)."""

from __future__ import annotations

import re
from email.utils import parseaddr
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, Warning, register
from django.http.request import validate_host

# settings.py's stand-in key when DEBUG is on and SECRET_KEY is not set.
DEVELOPMENT_KEY = "insecure-development-key-only-used-with-DEBUG-on"
LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1", "0.0.0.0", "testserver"}  # noqa: S104


def _local_secret_key() -> str | None:
    """The key `tranche` generated for this machine in VAR_DIR/secret_key, if any."""
    try:
        return (Path(settings.VAR_DIR) / "secret_key").read_text().strip() or None
    except OSError:
        return None


@register(Tags.security, deploy=True)
def check_secret_key(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    if settings.SECRET_KEY == DEVELOPMENT_KEY:
        return [
            Error(
                "SECRET_KEY is not set, so the development key is in use.",
                hint="Set SECRET_KEY in the environment file to the output of "
                "`python3 -c 'import secrets; print(secrets.token_urlsafe(50))'`.",
                id="tranche.E001",
            )
        ]
    if _local_secret_key() == settings.SECRET_KEY:
        return [
            Error(
                "SECRET_KEY is the key generated for this machine in VAR_DIR/secret_key, "
                "which `tranche` makes only when neither SECRET_KEY nor DATABASE_URL is set.",
                hint="Set SECRET_KEY in the environment file, so that every web machine "
                "signs sessions and links alike and a restored server keeps them valid.",
                id="tranche.E002",
            )
        ]
    return []


@register(Tags.database, deploy=True)
def check_database(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    engine = settings.DATABASES["default"]["ENGINE"]
    if engine.endswith("sqlite3"):
        return [
            Warning(
                "The database is SQLite (DATABASE_URL is unset or sqlite://).",
                hint="SQLite serves one machine; production installs use PostgreSQL: "
                "DATABASE_URL=postgresql://tranche:PASSWORD@127.0.0.1:5432/tranche. "
                "Several web machines or separate worker machines need PostgreSQL.",
                id="tranche.W001",
            )
        ]
    if not engine.endswith("postgresql"):
        return [
            Error(
                f"The database engine {engine} is not one Tranche supports.",
                hint="Use DATABASE_URL=postgresql://….",
                id="tranche.E003",
            )
        ]
    return []


@register(Tags.security, deploy=True)
def check_https(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    messages: list[CheckMessage] = []
    if not settings.HTTPS:
        messages.append(
            Error(
                "HTTPS is off: passwords, session cookies and pay links would cross the "
                "network in clear.",
                hint="Serve Tranche behind a reverse proxy that terminates TLS "
                "(deploy/Caddyfile, deploy/nginx/tranche.conf) and set HTTPS=1.",
                id="tranche.E004",
            )
        )
        return messages
    if getattr(settings, "SECURE_PROXY_SSL_HEADER", None) is None:
        messages.append(
            Warning(
                "HTTPS is on but TRUST_X_FORWARDED_PROTO is off: Tranche serves plain HTTP "
                "and learns that a request came over HTTPS only from its proxy.",
                hint="Set TRUST_X_FORWARDED_PROTO=1 when the proxy overwrites "
                "X-Forwarded-Proto (both configurations in deploy/ do). Without it only a "
                "proxy on this machine is believed (gunicorn trusts 127.0.0.1), and behind "
                "any other every request is redirected to https:// again and again.",
                id="tranche.W002",
            )
        )
    if settings.TRUSTED_PROXY_COUNT == 0:
        messages.append(
            Warning(
                "HTTPS is on but TRUSTED_PROXY_COUNT is 0: every visitor appears to come "
                "from the proxy's address.",
                hint="Set TRUSTED_PROXY_COUNT=1 behind one reverse proxy; otherwise one "
                "visitor's failed sign-ins and rate limits apply to everyone.",
                id="tranche.W003",
            )
        )
    return messages


@register(Tags.security, deploy=True)
def check_base_url(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    address = urlsplit(settings.BASE_URL)
    if address.hostname in LOCAL_HOSTS:
        return [
            Error(
                f"BASE_URL is {settings.BASE_URL}: links in emails (pay links, invitations, "
                "password resets) would point at the server itself.",
                hint="Set BASE_URL to the public address, e.g. https://portal.example.com.",
                id="tranche.E005",
            )
        ]
    if address.scheme != "https":
        return [
            Error(
                f"BASE_URL is {settings.BASE_URL}: links in emails would use plain http://.",
                hint="Set BASE_URL to the https:// address the reverse proxy serves.",
                id="tranche.E006",
            )
        ]
    if not validate_host(address.hostname or "", settings.ALLOWED_HOSTS):
        return [
            Error(
                f"BASE_URL's host {address.hostname} is not in ALLOWED_HOSTS "
                f"({', '.join(settings.ALLOWED_HOSTS)}): every request to it would be refused.",
                hint="Add it to ALLOWED_HOSTS, or unset ALLOWED_HOSTS to allow BASE_URL's host.",
                id="tranche.E007",
            )
        ]
    return []


# What deploy/tranche.env.example holds until the operator edits it: its placeholders, and
# host names under the domains reserved for examples (RFC 2606), which no real install has.
PLACEHOLDER = re.compile(r"replace[-_](me|with)", re.IGNORECASE)
EXAMPLE_HOST = re.compile(r"(^|\.)(example\.(com|net|org)|[^.]+\.example)$", re.IGNORECASE)
# Settings that hold secrets are named in a finding, never shown.
_VALUES = ("SECRET_KEY", "EMAIL_HOST_PASSWORD", "STRIPE_SECRET_KEY", "STRIPE_PUBLISHABLE_KEY")
_HOSTS = ("EMAIL_HOST",)
_ADDRESSES = ("DEFAULT_FROM_EMAIL", "EMAIL_HOST_USER")


def _left_as_example() -> list[str]:
    """The variables whose values are still the example file's."""
    found = [name for name in _VALUES if PLACEHOLDER.search(str(getattr(settings, name, "")))]
    secrets = getattr(settings, "STRIPE_WEBHOOK_SECRETS", [])
    if any(PLACEHOLDER.search(secret) for secret in secrets):
        found.append("STRIPE_WEBHOOK_SECRET")
    hosts = {"BASE_URL": urlsplit(settings.BASE_URL).hostname or ""}
    hosts.update({name: str(getattr(settings, name, "")) for name in _HOSTS})
    for name in _ADDRESSES:
        hosts[name] = parseaddr(str(getattr(settings, name, "")))[1].rpartition("@")[2]
    found += [name for name, host in hosts.items() if EXAMPLE_HOST.search(host)]
    return sorted(found)


@register(Tags.security, deploy=True)
def check_example_values(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    left = _left_as_example()
    if not left:
        return []
    return [
        Error(
            "These settings still hold deploy/tranche.env.example's values: "
            + ", ".join(left)
            + ".",
            hint="Edit /etc/tranche/tranche.env (docs/deploy.md, step 5): a secret key of "
            "your own, your address in BASE_URL, your SMTP provider and sender, your Stripe "
            "keys (or PAYMENTS_SANDBOX=1 without the STRIPE_ lines).",
            id="tranche.E008",
        )
    ]
