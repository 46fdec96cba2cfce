"""The email outbox: queue inside the business transaction, deliver after commit.

`outbox_enqueue` writes the email in the caller's transaction and, once that commits,
enqueues the `deliver_email` task (unless one is waiting to start: it takes every due
email); `outbox_retry` gives failed emails a fresh series of attempts, `outbox_retry_now`
does that for one email or tries a waiting one now. Sending itself lives in
`notifications.delivery`."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from functools import partial

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import CharField, Exists, OuterRef, QuerySet, Value
from django.db.models.functions import Cast, Concat
from django.template import Context
from django.template.loader import get_template, render_to_string
from django.utils import timezone

from tranche.accounts.business import BusinessProfile, business_profile
from tranche.accounts.models import Role, User
from tranche.core.db import after_commit, require_atomic
from tranche.core.errors import Conflict, NotFound
from tranche.notifications.delivery import CLAIM_TIMEOUT
from tranche.notifications.models import OutboxEmail, OutboxStatus
from tranche.notifications.tasks import enqueue_delivery

logger = logging.getLogger(__name__)


def render_plain(template_name: str, context: dict[str, object]) -> str:
    """Render a plain-text template (a subject, a text body) without HTML escaping: in
    plain text `O'Brien & Sons` must stay that, not `O&#x27;Brien &amp; Sons`. The HTML
    part keeps Django's autoescape."""
    template = get_template(template_name)
    return str(template.template.render(Context(context, autoescape=False)))  # type: ignore[attr-defined]


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    text: str
    html: str


def render_email(
    template: str, context: dict[str, object], business: BusinessProfile | None = None
) -> RenderedEmail:
    """`notifications/<template>.{subject.txt,txt,html}` rendered as the outbox stores
    them: every template gets `business` (the profile) and `logo_src` (the logo's
    absolute address) besides `context`. Previews use it too, so they show what is sent."""
    business = business or business_profile()
    context = {
        "business": business,
        "business_name": business.name,
        "logo_src": business.logo_absolute_url,
        **context,
    }
    subject = render_plain(f"notifications/{template}.subject.txt", context).strip()
    return RenderedEmail(
        subject=" ".join(subject.split()),
        text=render_plain(f"notifications/{template}.txt", context),
        html=render_to_string(f"notifications/{template}.html", context),
    )


def outbox_enqueue(
    *,
    key: str,
    kind: str,
    to: str,
    template: str,
    context: dict[str, object],
    now: datetime | None = None,
    attachments: list[dict[str, object]] | None = None,
    business: BusinessProfile | None = None,
) -> OutboxEmail | None:
    """Queue an email rendered from `notifications/<template>.{subject,txt,html}`, from
    the business's sender name and with its reply-to address. `attachments` are specs
    rendered at delivery (see `notifications.attachments`). Every template gets
    `business` (the profile) and `logo_src` (the logo's absolute address) besides
    `context`.

    Must be called inside the transaction of the change the email reports. Returns None
    when an email with this key was queued before (it is never queued twice)."""
    # Outside a transaction the email would be committed on its own, before (or without)
    # the change it reports.
    require_atomic()
    now = now or timezone.now()
    business = business or business_profile()
    rendered = render_email(template, context, business)
    try:
        with transaction.atomic():
            email = OutboxEmail.objects.create(
                key=key,
                kind=kind,
                to=to,
                subject=rendered.subject,
                body_text=rendered.text,
                body_html=rendered.html,
                from_email=business.from_email,
                reply_to=business.reply_to,
                attachments=list(attachments or []),
                next_attempt_at=now,
                created_at=now,
            )
    except IntegrityError:
        return None
    email_id = email.pk
    after_commit(lambda: _enqueue_delivery(email_id))
    return email


@dataclass(frozen=True)
class NewEmail:
    """One email of `outbox_enqueue_new`: as `outbox_enqueue`'s arguments."""

    key: str
    kind: str
    to: str
    template: str
    context: dict[str, object]
    attachments: list[dict[str, object]]


def outbox_enqueue_new(
    emails: list[NewEmail], *, now: datetime, business: BusinessProfile
) -> list[OutboxEmail]:
    """Queue emails whose keys the caller knows are new (its own locks decide it: an
    invoice is sent once), in one INSERT, in the caller's transaction. No key is looked
    for first and no savepoint is taken: a key queued before is a broken promise, and
    its IntegrityError rolls the caller's change back. Delivery is enqueued after commit,
    as by `outbox_enqueue`."""
    require_atomic()
    rows = []
    for email in emails:
        rendered = render_email(email.template, email.context, business)
        rows.append(
            OutboxEmail(
                key=email.key,
                kind=email.kind,
                to=email.to,
                subject=rendered.subject,
                body_text=rendered.text,
                body_html=rendered.html,
                from_email=business.from_email,
                reply_to=business.reply_to,
                attachments=list(email.attachments),
                next_attempt_at=now,
                created_at=now,
            )
        )
    created = OutboxEmail.objects.bulk_create(rows)
    after_commit(partial(_enqueue_deliveries, [row.pk for row in created]))
    return created


def _enqueue_deliveries(email_ids: list[int]) -> None:
    """One delivery task serves them all: it takes every due email in batches."""
    if email_ids:
        _enqueue_delivery(email_ids[0])


def _enqueue_delivery(email_id: int) -> None:
    try:
        enqueue_delivery(email_id)
    except Exception:  # the periodic sweep delivers it anyway
        logger.exception("Could not enqueue delivery of outbox email %s", email_id)


def outbox_retry(*, email_ids: Iterable[int], now: datetime | None = None) -> int:
    """Give failed emails a fresh series of attempts, starting now; returns how many.

    Emails that are not failed (pending, sending, sent) are left as they are. Delivery
    is enqueued once the retry commits, and the periodic sweep picks them up anyway."""
    now = now or timezone.now()
    with transaction.atomic():
        # Locked so a delivery that is finishing cannot interleave with the reset.
        retried = list(
            OutboxEmail.objects.select_for_update()
            .filter(pk__in=list(email_ids), status=OutboxStatus.FAILED)
            .order_by("pk")
            .values_list("pk", flat=True)
        )
        OutboxEmail.objects.filter(pk__in=retried).update(
            status=OutboxStatus.PENDING, attempts=0, next_attempt_at=now, claimed_at=None
        )
        for email_id in retried:
            after_commit(partial(_enqueue_delivery, email_id))
    if retried:
        logger.info("Outbox emails %s retried", ", ".join(map(str, retried)))
    return len(retried)


def _active_admins(exclude_user_id: int | None) -> QuerySet[User]:
    admins = User.objects.filter(role=Role.ADMIN, is_active=True).order_by("pk")
    if exclude_user_id is not None:
        admins = admins.exclude(pk=exclude_user_id)
    return admins


def outbox_admins_waiting(*, key: str, exclude_user_id: int | None = None) -> bool:
    """Whether some active admin has no email under `key:<admin id>` yet: a caller that
    would gather and render something costly for every admin (the daily digest) asks
    first, so a pass that runs every few minutes does that work once a day. Only a
    shortcut: the outbox key still decides what is queued."""
    queued = OutboxEmail.objects.filter(
        key=Concat(Value(f"{key}:"), Cast(OuterRef("pk"), CharField()), output_field=CharField())
    )
    return _active_admins(exclude_user_id).filter(~Exists(queued)).exists()


def outbox_retry_now(*, email_id: int, now: datetime | None = None) -> OutboxStatus:
    """A person's Retry on the Operations page: a failed email gets a fresh series of
    attempts (as `outbox_retry`), a waiting one is tried now instead of at its next
    backoff. Returns the status it had. Refused for an email already sent, or claimed by
    a delivery that is still running (it could go out twice)."""
    now = now or timezone.now()
    with transaction.atomic():
        email = OutboxEmail.objects.select_for_update().filter(pk=email_id).first()
        if email is None:
            raise NotFound("No such email.")
        previous = OutboxStatus(email.status)
        if previous == OutboxStatus.SENT:
            raise Conflict("This email was sent already.")
        if (
            previous == OutboxStatus.SENDING
            and email.claimed_at
            and (now - email.claimed_at < CLAIM_TIMEOUT)
        ):
            raise Conflict("This email is being sent right now.")
        fields = {"status": OutboxStatus.PENDING, "next_attempt_at": now, "claimed_at": None}
        if previous == OutboxStatus.FAILED:
            fields["attempts"] = 0
        OutboxEmail.objects.filter(pk=email.pk).update(**fields)
        after_commit(partial(_enqueue_delivery, email.pk))
    logger.info("Outbox email %s (%s) retried by hand", email_id, previous)
    return previous


def outbox_enqueue_admins(
    *,
    key: str,
    kind: str,
    template: str,
    context: dict[str, object],
    now: datetime | None = None,
    exclude_user_id: int | None = None,
) -> int:
    """Queue the same notification to every active admin, each under `key:<admin id>` (so
    each admin gets it at most once). `exclude_user_id`: the admin who did the thing
    needs no email about it. Returns how many were queued now."""
    require_atomic()
    business = business_profile()
    queued = 0
    for admin in _active_admins(exclude_user_id).only("pk", "email", "full_name"):
        email = outbox_enqueue(
            key=f"{key}:{admin.pk}",
            kind=kind,
            to=admin.email,
            template=template,
            context={
                "recipient": admin,
                "settings_url": f"{settings.BASE_URL}/settings/#s-notify",
                **context,
            },
            now=now,
            business=business,
        )
        queued += email is not None
    return queued
