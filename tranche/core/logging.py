"""Log lines: plain or JSON (LOG_FORMAT), each with its request id, none with a credential.

A pay link is its own credential (anyone holding `/pay/<token>` can see and pay the
invoice), and so is the link that sets a password (`/account/set-password/<uid>/<token>/`),
so access logs and Django's request logs show `[redacted]` in their place; a Stripe
return URL's client secret likewise. `GunicornLogger` is gunicorn's logger with that
redaction (`--logger-class=tranche.core.logging.GunicornLogger`) and, with
LOG_FORMAT=json, JSON lines; `RedactPayTokens` is the logging filter on every handler of
Django's own configuration (settings.LOGGING), and `RequestIdFilter` puts the request id
on every record for the formatters below."""

from __future__ import annotations

import json
import logging
import os
import re
import traceback
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote

from django.core.exceptions import ImproperlyConfigured
from gunicorn.glogging import Logger  # type: ignore[import-untyped]

from tranche.core.requestid import current_request_id

# Everything after /pay/ up to the end of the path, whatever case or extra slashes a
# mistyped link has; only the pay page's own /done step is kept, to tell requests apart.
_PAY_PATH = re.compile(r"(/pay/)/*[^\s?#\"']*?(/done)?(?=[\s?#\"']|$)", re.IGNORECASE)
# Stripe appends the PaymentIntent's client secret to a return URL's query.
_CLIENT_SECRET = re.compile(r"(client_secret=)[^&\s#\"']+", re.IGNORECASE)
# An invitation's or a reset's link: the user's id (not secret) then the token. A request
# refused on that page (a password too short: 422) is logged by django.request with it.
_PASSWORD_LINK = re.compile(r"(/set-password/+[^/\s?#\"']*/+)[^/\s?#\"']+", re.IGNORECASE)


def redact(text: str) -> str:
    # Decoded first: /%70ay/<token> is served as the pay page, so it is a token too.
    text = _PAY_PATH.sub(lambda m: f"{m.group(1)}[redacted]{m.group(2) or ''}", unquote(text))
    text = _PASSWORD_LINK.sub(r"\1[redacted]", text)
    return _CLIENT_SECRET.sub(r"\1[redacted]", text)


class RedactPayTokens(logging.Filter):
    """Rewrites a record's message (and its traceback's text) with pay tokens, password
    links and client secrets removed; never drops a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg = cleaned
            record.args = ()
        if record.exc_info and not record.exc_text:
            # An exception's text may quote a URL; formatters reuse exc_text when set.
            record.exc_text = "".join(traceback.format_exception(*record.exc_info)).rstrip()
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


class RequestIdFilter(logging.Filter):
    """Puts the running request's (or task's) id on the record, "-" outside of one. A
    record that already has one (gunicorn's access line, from the response) keeps it."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "request_id", None):
            record.request_id = current_request_id() or "-"
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC, ISO 8601), level, logger, message,
    request_id, and exception (the traceback) when there is one. A line never breaks:
    newlines inside the message or traceback are escaped by JSON."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None) or current_request_id() or "-",
        }
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            line["exception"] = record.exc_text
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return json.dumps(line, ensure_ascii=False, default=str)


PLAIN_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"


def log_format() -> str:
    """LOG_FORMAT: "plain" (the default) or "json"."""
    value = (os.environ.get("LOG_FORMAT") or "plain").strip().lower()
    if value not in ("plain", "json"):
        raise ImproperlyConfigured(f"LOG_FORMAT must be plain or json, not {value!r}.")
    return value


def logging_config(*, fmt: str, level: str) -> dict[str, Any]:
    """settings.LOGGING: one console handler, in `fmt`, behind both filters, for every
    logger (Django's own included, so none bypasses the redaction)."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "plain": {"format": PLAIN_FORMAT},
            "json": {"()": "tranche.core.logging.JsonFormatter"},
        },
        # Pay links are credentials: every record leaves through a handler that redacts them.
        "filters": {
            "redact_pay_tokens": {"()": "tranche.core.logging.RedactPayTokens"},
            "request_id": {"()": "tranche.core.logging.RequestIdFilter"},
        },
        "handlers": {
            "console": {
                "class": "logging.StreamHandler",
                "formatter": fmt,
                "filters": ["redact_pay_tokens", "request_id"],
            }
        },
        "root": {"handlers": ["console"], "level": level},
        "loggers": {
            "axes": {"level": "WARNING"},
            # WeasyPrint and fontTools narrate every PDF at INFO (a hundred lines each).
            "weasyprint": {"level": "WARNING"},
            "fontTools": {"level": "WARNING"},
            # Django's defaults give these their own handlers, which would bypass the filter.
            "django": {"handlers": [], "level": "INFO", "propagate": True},
            "django.server": {"handlers": ["console"], "level": "INFO", "propagate": False},
            # Never DEBUG, whatever LOG_LEVEL says: at DEBUG these write what must not be
            # logged. django.db.backends logs every SQL statement with its parameters (a
            # password hash, a token's digest, a session's data); django.template logs a
            # failed lookup with the context's repr (a pay link, a client secret); the
            # Stripe SDK logs each response body (a PaymentIntent's client_secret).
            "django.db.backends": {"level": "INFO"},
            "django.template": {"level": "INFO"},
            "stripe": {"level": "INFO"},
        },
    }


class GunicornLogger(Logger):  # type: ignore[misc]
    """gunicorn's logger whose access-log atoms (request line, path, query, referer …)
    carry no pay token: the referer of the page after paying is the pay link itself. Its
    own error lines ("Error handling request /pay/…") go through the same filter, and with
    LOG_FORMAT=json both logs write JSON lines; an access line's request_id is the one the
    response carries (X-Request-ID)."""

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        for log in (self.error_log, self.access_log):
            for handler in log.handlers:
                if not getattr(handler, "_gunicorn", False):
                    continue
                handler.addFilter(RedactPayTokens())
                handler.addFilter(RequestIdFilter())
                if log_format() == "json":
                    handler.setFormatter(JsonFormatter())

    def atoms(self, resp: Any, req: Any, environ: Any, request_time: Any) -> Any:
        atoms = super().atoms(resp, req, environ, request_time)
        for key, value in list(atoms.items()):
            if isinstance(value, str):
                atoms[key] = redact(value)
        return atoms

    def access(self, resp: Any, req: Any, environ: Any, request_time: Any) -> None:
        # gunicorn's own, with the request id passed on to the record.
        if not self.access_log_enabled:
            return
        safe_atoms = self.atoms_wrapper_class(self.atoms(resp, req, environ, request_time))
        request_id = next(
            (v for k, v in getattr(resp, "headers", []) if k.lower() == "x-request-id"), ""
        )
        try:
            self.access_log.info(
                self.cfg.access_log_format, safe_atoms, extra={"request_id": request_id}
            )
        except Exception:
            self.error(traceback.format_exc())
