"""Property-based: every operation of our own OpenAPI document, called with generated
input (valid and invalid) as an admin and as a customer (alice, of customer A), against
a database holding rows for the generated ids to hit, answers as the document says.

All of schemathesis' checks run, among them:
- not_a_server_error: no 5xx, ever;
- status_code_conformance: every status is documented for its operation;
- content_type_conformance, response_headers_conformance: as documented;
- response_schema_conformance: the body matches the documented schema (the errors'
  `{"detail", "code"}` shape included: ErrorOut forbids any other key);
- negative_data_rejection: a request the document calls invalid is refused;
- missing_required_header, unsupported_method, ignored_auth (a request without or with
  a wrong token is refused), use_after_free and ensure_resource_availability (stateful).

One is replaced: `positive_data_acceptance` wants every schema-valid request accepted,
but the API refuses by design, with 409 or 422 and a code of its own, what JSON Schema
cannot say (percentages that must sum to 100, a period that ends before it starts, more
credit than is left, an unknown country). `valid_input_passes_validation` keeps what the
check is for: a request valid by the document is never refused *for its form*.

The normal suite runs every phase (explicit examples, the coverage phase's boundary
values, fuzzing) with a few examples and every check; the trust suite runs the fuzzing
phase with 100 examples per operation and persona (all checks but `ignored_auth`, see
`call_and_validate`), then the stateful phase, all checks, along the links schemathesis
infers from the document (ids that one response gives and another operation takes).
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.db import close_old_connections, transaction
from django.utils import timezone
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi.checks import ignored_auth, positive_data_acceptance

from tests.billing.change_order_helpers import change_order, line
from tests.billing.helpers import draft_for
from tests.factories import make_project, make_quote
from tests.figures import record
from tranche.accounts.models import Customer, User
from tranche.accounts.services import token_create
from tranche.accounts.tax_rates import tax_rate_create
from tranche.billing.services.crediting import credit_note_issue
from tranche.billing.services.payments import payment_record_manual
from tranche.billing.services.sending import invoice_send
from tranche.core.heartbeat import WORKER, heartbeat_record
from tranche.wsgi import application

PERSONAS = ("admin", "alice")
TRUST_EXAMPLES = 100
# Every request that reaches the application, the checks' own probes included, per run
# ("normal" or "trust": the run a test body last said it belongs to).
SEEN: dict[str, Counter[str]] = {"normal": Counter(), "trust": Counter()}
RUN = ["normal"]


def counted(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
    def start(status: str, headers: Any, *args: Any) -> Any:
        SEEN[RUN[0]]["requests"] += 1
        SEEN[RUN[0]]["server_errors"] += status.startswith("5")
        return start_response(status, headers, *args)

    return application(environ, start)


# Reading /api/openapi.json needs no database, so the schemas load at import. The trust
# run's leaves the coverage phase to the normal suite (it is deterministic: the same
# boundary values every run) and spends its time on 100 generated examples.
schema = schemathesis.openapi.from_wsgi("/api/openapi.json", counted)
trust_schema = schemathesis.openapi.from_wsgi(
    "/api/openapi.json",
    counted,
    config=SchemathesisConfig.from_dict({"phases": {"coverage": {"enabled": False}}}),
)

# The ids of real rows, per path parameter, refreshed by the `rows` fixture of each test.
IDS: dict[str, list[int]] = {}


def flatmap_path_parameters(ctx: Any, path_parameters: dict[str, Any]) -> Any:
    # Random integers almost never name a row, so most cases would test only the 404.
    # A well-formed id is swapped, some of the time, for one of a real row (of customer A
    # or of customer B); an ill-formed one (a string, a float) is kept as generated.
    draws = {}
    for name, value in (path_parameters or {}).items():
        known = IDS.get(name)
        if known and isinstance(value, int) and not isinstance(value, bool):
            draws[name] = st.sampled_from([*known, value])
        else:
            draws[name] = st.just(value)
    return st.fixed_dictionaries(draws)


# What the checks saw: each check's runs and failures, per run (the trust run's figures).
CHECKS: dict[str, Counter[str]] = {"normal": Counter(), "trust": Counter()}


def after_validate(ctx: Any, case: Any, response: Any, results: list[Any]) -> None:
    tally = CHECKS["trust" if case.operation.schema is trust_schema else "normal"]
    for result in results:
        tally[f"ran {result.name}"] += 1
        if result.failure is not None:
            tally[f"failed {result.name}"] += 1


for loaded in (schema, trust_schema):
    loaded.hook(flatmap_path_parameters)
    loaded.hook(after_validate)


# Refusals that say the request's form is wrong, as opposed to a business rule.
FORM_REFUSALS = {"validation_error", "malformed_request"}


def valid_input_passes_validation(ctx: Any, response: Any, case: Any) -> bool | None:
    """A request the document calls valid is never refused for its form: that would mean
    the document is looser than the validator (as it was when the bounds of amounts and
    ids were missing from it), and a client built from the document would fail."""
    if case.meta is None or not case.meta.generation.mode.is_positive:
        return None
    CHECKS["trust" if case.operation.schema is trust_schema else "normal"][
        "ran valid_input_passes_validation"
    ] += 1
    if response.status_code in (400, 422):
        try:
            body = response.json()
        except ValueError:
            body = {}
        errors = body.get("errors") or []
        # A date's upper bound moves with today, so no fixed document can hold it; the
        # field's description says it.
        relative = [e for e in errors if "years from today" in e["message"]]
        if body.get("code") in FORM_REFUSALS and (not errors or len(relative) < len(errors)):
            raise AssertionError(
                f"A request valid by the document was refused as {body.get('code')}: "
                f"{response.text[:500]}"
            )
    return None


@pytest.fixture
def rows(
    db: None,
    settings: Any,
    admin: User,
    alice: User,
    customer_a: Customer,
    customer_b: Customer,
) -> Iterator[dict[str, str]]:
    """Rows of every kind a path names, of customer A (alice's) and of customer B: a
    draft, a sent invoice partly paid and credited, a change order, a quote not yet
    accepted, a tax rate, the worker's heartbeat. Yields a token per persona."""
    # A token request for an unknown email still hashes the password (so that it takes
    # as long as for a known one): with Argon2 that was most of the time the fuzzing of
    # POST /api/auth/token took. Here the dummy hash is a cheap one; the personas' own
    # Argon2 hashes still verify.
    settings.PASSWORD_HASHERS = [
        "django.contrib.auth.hashers.MD5PasswordHasher",
        *settings.PASSWORD_HASHERS,
    ]
    rate = tax_rate_create(actor=admin, name="VAT", percentage="20")
    project = make_project(actor=admin, customer=customer_a, percentages=("25", "25", "25", "25"))
    other = make_project(actor=admin, customer=customer_b)
    draft = draft_for(project, 1, admin)
    sent = invoice_send(actor=admin, invoice_id=draft_for(project, 2, admin).pk)
    payment_record_manual(
        actor=admin,
        invoice_id=sent.pk,
        amount=Decimal("50.00"),
        method="bank_transfer",
        received_on=timezone.localdate(),
    )
    note = credit_note_issue(
        actor=admin, invoice_id=sent.pk, amount=Decimal("20.00"), reason="Goodwill"
    )
    other_sent = invoice_send(actor=admin, invoice_id=draft_for(other, 1, admin).pk)
    order = change_order(project, admin, line("Extra shelving", "120.00"))
    quote = make_quote(actor=admin, customer=customer_a)
    # A running installation: its worker was just seen, so /api/ready answers 200 (a
    # 503 there says the installation is not ready, which is no server error to find).
    heartbeat_record(name=WORKER)
    IDS.clear()
    IDS.update(
        customer_id=[customer_a.pk, customer_b.pk],
        project_id=[project.pk, other.pk],
        milestone_id=list(project.milestones.values_list("pk", flat=True)),
        invoice_id=[draft.pk, sent.pk, other_sent.pk],
        quote_id=[quote.pk],
        change_order_id=[order.pk],
        credit_note_id=[note.pk],
        rate_id=[rate.pk],
    )
    # Called straight through WSGI, each request would end by closing the database
    # connection the test runs in; Django's test client disconnects this handler too.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield {"admin": token_create(user=admin), "alice": token_create(user=alice)}
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


# What the test bodies counted, per run.
CASES: dict[str, Counter[str]] = {"normal": Counter(), "trust": Counter()}
OPERATIONS: dict[str, Counter[str]] = {"normal": Counter(), "trust": Counter()}


def documented(case: Any) -> set[str]:
    return {str(status) for status in case.operation.definition.raw.get("responses", {})}


def call_and_validate(case: Any, token: str, run: str) -> None:
    """One generated request as the persona, validated by all checks but the one this
    module replaces. The trust run leaves `ignored_auth` to the normal run and to the
    stateful phase: it re-sends each case without credentials and with wrong ones, which
    cost more than the case itself (measured: 8.6 s of the 14.6 s that 100 cases of
    GET /api/customers/{customer_id} took), and the token is checked before the body is
    read, so a hundred bodies would probe the same thing a hundred times."""
    RUN[0] = run
    headers = {"Authorization": f"Bearer {token}"}
    response = case.call(headers=headers)
    CASES[run]["cases"] += 1
    OPERATIONS[run][case.operation.label] += 1
    CASES[run]["undocumented_statuses"] += str(response.status_code) not in documented(case)
    excluded = [positive_data_acceptance] + ([ignored_auth] if run == "trust" else [])
    case.validate_response(
        response,
        headers=headers,
        excluded_checks=excluded,
        additional_checks=[valid_input_passes_validation],
    )


SETTINGS = settings(deadline=None, database=None, suppress_health_check=list(HealthCheck))


@pytest.mark.slow
@pytest.mark.parametrize("persona", PERSONAS)
@schema.parametrize()
@settings(SETTINGS, max_examples=int(os.environ.get("FUZZ_EXAMPLES", "5")))
def test_every_operation_answers_as_documented(
    case: Any, persona: str, rows: dict[str, str]
) -> None:
    call_and_validate(case, rows[persona], "normal")


@pytest.mark.trust
@pytest.mark.parametrize("persona", PERSONAS)
@trust_schema.parametrize()
@settings(SETTINGS, max_examples=TRUST_EXAMPLES)
def test_every_operation_answers_as_documented_at_volume(
    case: Any, persona: str, rows: dict[str, str]
) -> None:
    call_and_validate(case, rows[persona], "trust")


@pytest.mark.trust
@pytest.mark.parametrize("persona", PERSONAS)
def test_linked_sequences_of_calls_answer_as_documented(persona: str, rows: dict[str, str]) -> None:
    """The stateful phase: schemathesis chains calls along the links it infers (a
    project's id from a list or a create, then its milestones, their invoices, …)."""
    token = rows[persona]
    RUN[0] = "trust"

    class Workflow(trust_schema.as_state_machine()):  # type: ignore[misc]
        # Each scenario starts from the same rows: one that deleted a milestone or
        # revoked the token would otherwise change which calls the next can make, and
        # hypothesis needs a scenario it replays to draw the same steps again.
        def setup(self) -> None:
            self.savepoint = transaction.savepoint()

        def teardown(self) -> None:
            transaction.savepoint_rollback(self.savepoint)

        def get_call_kwargs(self, case: Any) -> dict[str, Any]:
            return {"headers": {"Authorization": f"Bearer {token}"}}

        def validate_response(
            self, response: Any, case: Any, additional_checks: Any = None, **kwargs: Any
        ) -> None:
            CASES["trust"]["stateful_steps"] += 1
            CASES["trust"]["undocumented_statuses"] += str(response.status_code) not in (
                documented(case)
            )
            # Without `valid_input_passes_validation`: a link fills a parameter with what
            # an earlier response held there, which is not always what the document
            # calls valid (a null id out of a refusal becomes /tax-rates/None).
            case.validate_response(
                response,
                headers=kwargs.get("headers"),
                excluded_checks=[positive_data_acceptance],
                transport_kwargs=kwargs,
                recorder=getattr(self, "recorder", None),
            )

    Workflow.run(
        settings=settings(
            SETTINGS,
            max_examples=int(os.environ.get("FUZZ_STATEFUL_SCENARIOS", "60")),
            stateful_step_count=6,
        )
    )


@pytest.fixture(scope="module", autouse=True)
def _figures() -> Iterator[None]:
    """After the module: the trust run's figures, as counted by the hooks above."""
    yield
    cases, checks = CASES["trust"], CHECKS["trust"]
    if not cases["cases"]:
        return
    per_operation = OPERATIONS["trust"]
    record(
        "fuzz",
        operations=len({label for label in per_operation}),
        examples_per_operation=TRUST_EXAMPLES,
        cases_per_operation_min=min(per_operation.values()) // len(PERSONAS),
        personas=list(PERSONAS),
        cases=cases["cases"],
        stateful_steps=cases["stateful_steps"],
        requests=SEEN["trust"]["requests"],
        server_errors=SEEN["trust"]["server_errors"],
        undocumented_statuses=cases["undocumented_statuses"],
        schema_mismatches=checks["failed response_schema_conformance"],
        check_failures=sum(v for k, v in checks.items() if k.startswith("failed ")),
        checks=sorted(k.removeprefix("ran ") for k in checks if k.startswith("ran ")),
    )
