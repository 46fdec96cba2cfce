"""Keep pay tokens out of logs.

A pay link is its own credential (anyone holding `/pay/<token>` can see and pay the
invoice), so access logs and Django's request logs show `/pay/[redacted]` instead.
`GunicornLogger` is gunicorn's access logger with that redaction
(`--logger-class=tranche.core.logging.GunicornLogger`); `RedactPayTokens` is the logging
filter for Django's own loggers (django.request, django.server)."""

from __future__ import annotations

import logging
import re
from typing import Any
from urllib.parse import unquote

from gunicorn.glogging import Logger  # type: ignore[import-untyped]

# Everything after /pay/ up to the end of the path, whatever case or extra slashes a
# mistyped link has; only the pay page's own /done step is kept, to tell requests apart.
_PAY_PATH = re.compile(r"(/pay/)/*[^\s?#\"']*?(/done)?(?=[\s?#\"']|$)", re.IGNORECASE)
# Stripe appends the PaymentIntent's client secret to a return URL's query.
_CLIENT_SECRET = re.compile(r"(client_secret=)[^&\s#\"']+", re.IGNORECASE)


def redact(text: str) -> str:
    # Decoded first: /%70ay/<token> is served as the pay page, so it is a token too.
    text = _PAY_PATH.sub(lambda m: f"{m.group(1)}[redacted]{m.group(2) or ''}", unquote(text))
    return _CLIENT_SECRET.sub(r"\1[redacted]", text)


class RedactPayTokens(logging.Filter):
    """Rewrites a record's message with pay tokens removed; never drops a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg = cleaned
            record.args = ()
        return True


class GunicornLogger(Logger):  # type: ignore[misc]
    """gunicorn's logger whose access-log atoms (request line, path, query, referer …)
    carry no pay token: the referer of the page after paying is the pay link itself."""

    def atoms(self, resp: Any, req: Any, environ: Any, request_time: Any) -> Any:
        atoms = super().atoms(resp, req, environ, request_time)
        for key, value in list(atoms.items()):
            if isinstance(value, str):
                atoms[key] = redact(value)
        return atoms
