"""Domain errors. Services raise these; `tranche.api` maps them to HTTP in one place."""

from __future__ import annotations


class DomainError(Exception):
    """An error a person can act on: `detail` is a sentence, `code` is stable for machines."""

    status = 400
    code = "bad_request"

    def __init__(self, detail: str, *, code: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        if code is not None:
            self.code = code


class NotAuthenticated(DomainError):
    status = 401
    code = "not_authenticated"


class PermissionDenied(DomainError):
    """Authenticated, but this role may not do this."""

    status = 403
    code = "permission_denied"


class NotFound(DomainError):
    """Missing, or not the caller's to see: the two look the same on purpose."""

    status = 404
    code = "not_found"


class Conflict(DomainError):
    """The request is valid but the object's current state does not allow it."""

    status = 409
    code = "conflict"


class Invalid(DomainError):
    """Well-formed input whose values break a rule."""

    status = 422
    code = "invalid"


class TooManyAttempts(DomainError):
    status = 429
    code = "too_many_attempts"


class ProviderError(DomainError):
    """The payment provider (or another upstream) failed."""

    status = 502
    code = "provider_error"
