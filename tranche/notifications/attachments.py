"""Attachments made when an email is delivered, not when it is queued.

An outbox row stores what to attach as small specs (`{"kind": "invoice_pdf",
"invoice_id": 7}`); the file itself is rendered at delivery, outside the business
transaction, so a slow or failing PDF renderer can neither hold a row lock nor roll back
the change the email reports, and the row stays small.

Notifications sits below billing and may not import it, so the app that knows how to make
an attachment registers a renderer for its kind when Django starts
(`BillingConfig.ready`: "invoice_pdf"; a "receipt_pdf" renderer is one more
`register_attachment` call). A spec whose kind has no renderer fails like any renderer
error (see `notifications.delivery` for what happens then)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Attachment:
    filename: str
    content: bytes
    mimetype: str


Spec = Mapping[str, Any]
Renderer = Callable[[Spec], Attachment]

_RENDERERS: dict[str, Renderer] = {}


class AttachmentUnavailable(Exception):
    """The attachment could not be made (no renderer, the renderer raised)."""


def register_attachment(kind: str, renderer: Renderer) -> None:
    """Make `kind` attachable. Registering a kind again replaces its renderer (Django may
    run `ready()` more than once in tests)."""
    _RENDERERS[kind] = renderer


def registered_kinds() -> frozenset[str]:
    return frozenset(_RENDERERS)


def render_attachment(spec: Spec) -> Attachment:
    kind = str(spec.get("kind", ""))
    renderer = _RENDERERS.get(kind)
    if renderer is None:
        raise AttachmentUnavailable(f"no renderer is registered for {kind!r} attachments")
    try:
        return renderer(spec)
    except Exception as exc:
        raise AttachmentUnavailable(f"{kind}: {type(exc).__name__}: {exc}") from exc
