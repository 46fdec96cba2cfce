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

from gunicorn.glogging import Logger  # type: ignore[import-untyped]

_PAY_TOKEN = re.compile(r"(/pay/)[^/\s?#\"']+")
REDACTED = r"\1[redacted]"


def redact(text: str) -> str:
    return _PAY_TOKEN.sub(REDACTED, text)


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
