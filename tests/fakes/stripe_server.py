"""A small fake of Stripe's PaymentIntents API over real HTTP on 127.0.0.1.

The official SDK talks to it through STRIPE_API_BASE. Like Stripe's API v1 it keeps the
first answer to every POST with an Idempotency-Key once the operation has begun (a 500
included) and replays it for the same key, refusing the key with other parameters. It
counts what it was asked, and faults can be injected per operation (`inject`): an error
answer, a timeout, a refused connection or a lost response (the operation is done, the
answer never arrives). Like Stripe, it changes the amount of an intent only while the
intent is unpaid and cancels only an intent that is neither canceled nor succeeded."""

from __future__ import annotations

import json
import secrets
import socket
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal
from urllib.parse import parse_qsl

API_KEY = "sk_test_tranche_fake_key"
# Stripe's states in which a PaymentIntent has taken no money and its amount may change.
UNPAID = ("requires_payment_method", "requires_confirmation", "requires_action")
# The states Stripe cancels from (docs: "Cancel a PaymentIntent").
CANCELABLE = (*UNPAID, "requires_capture", "processing")

Operation = Literal["create", "update", "cancel", "retrieve"]
OPERATIONS: tuple[Operation, ...] = ("create", "update", "cancel", "retrieve")
# error: Stripe answers 500 (api_error) after the operation began and failed;
# declined: Stripe answers a 4xx (invalid_request_error) and does nothing;
# timeout: no answer within the client's timeout, and nothing done;
# refused: the connection is dropped before anything is done (a refusal the client sees
#   as a failed connection; a true ECONNREFUSED of the whole server is `stop_listening`);
# lost: the operation is done and its answer never reaches the client.
FaultKind = Literal["error", "declined", "timeout", "refused", "lost"]
FAULT_KINDS: tuple[FaultKind, ...] = ("error", "declined", "timeout", "refused", "lost")


def _unflatten(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """metadata[invoice_id]=1 -> {"metadata": {"invoice_id": "1"}}"""
    result: dict[str, Any] = {}
    for key, value in pairs:
        parts = key.replace("]", "").split("[")
        target = result
        for part in parts[:-1]:
            target = target.setdefault(part, {})
        target[parts[-1]] = value
    return result


def _error(kind: str, message: str, code: str | None = None) -> dict[str, Any]:
    error: dict[str, Any] = {"type": kind, "message": message}
    if code:
        error["code"] = code
    return {"error": error}


@dataclass
class FakeStripe:
    url: str = ""
    mode: str = "ok"  # ok | error | hang | lose_response | declined_key (every create)
    hang_seconds: float = 3.0
    intents: dict[str, dict[str, Any]] = field(default_factory=dict)
    create_requests: list[dict[str, Any]] = field(default_factory=list)
    idempotency_keys: list[str] = field(default_factory=list)  # of creates
    # Idempotency-Key -> (path, params, status, body): the first answer, replayed.
    replies: dict[str, tuple[str, dict[str, Any], int, dict[str, Any]]] = field(
        default_factory=dict
    )
    updates: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    cancels: list[str] = field(default_factory=list)
    # Every request as "METHOD /path", in order: what the client asked Stripe about.
    requests: list[str] = field(default_factory=list)
    fail_updates: bool = False  # updates answer 500, as when Stripe has an outage
    # operation -> fault; each request for that operation meets it until `clear`.
    faults: dict[str, str] = field(default_factory=dict)
    # (operation, fault) for every request that met an injected fault.
    faults_met: list[tuple[str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    _listening: Callable[[bool], None] | None = None

    @property
    def created(self) -> int:
        return len(self.intents)

    # -- controls ---------------------------------------------------------------------
    def inject(self, operation: Operation, kind: FaultKind) -> None:
        assert operation in OPERATIONS
        assert kind in FAULT_KINDS
        self.faults[operation] = kind

    def clear(self) -> None:
        self.faults.clear()
        self.mode = "ok"
        self.fail_updates = False

    def stop_listening(self) -> None:
        """The whole server goes away: every connection is refused until `start_listening`."""
        assert self._listening is not None
        self._listening(False)

    def start_listening(self) -> None:
        assert self._listening is not None
        self._listening(True)

    def pay(self, intent_id: str) -> dict[str, Any]:
        """The customer confirms the intent with a card that works: it takes its amount."""
        with self.lock:
            intent = self.intents[intent_id]
            assert intent["status"] in UNPAID, f"{intent_id} is {intent['status']}"
            intent["status"] = "succeeded"
            intent["amount_received"] = intent["amount"]
            return dict(intent)

    def live_intents(self, invoice_id: int) -> list[dict[str, Any]]:
        """The invoice's intents that can still take, or have taken, money."""
        return [
            intent
            for intent in self.intents.values()
            if intent["metadata"].get("invoice_id") == str(invoice_id)
            and intent["status"] != "canceled"
        ]

    def intent_with_secret(self, client_secret: str) -> dict[str, Any]:
        [intent] = [i for i in self.intents.values() if i["client_secret"] == client_secret]
        return intent

    # -- operations -------------------------------------------------------------------
    def create(self, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        with self.lock:
            self.create_requests.append(params)
            if self.mode == "error":
                return 500, _error("api_error", "Something went wrong on Stripe's end.")
            intent_id = f"pi_{secrets.token_hex(8)}"
            intent = {
                "id": intent_id,
                "object": "payment_intent",
                "amount": int(params["amount"]),
                "amount_received": 0,
                "currency": params["currency"],
                "description": params.get("description"),
                "metadata": params.get("metadata", {}),
                "receipt_email": params.get("receipt_email"),
                "status": "requires_payment_method",
                "client_secret": f"{intent_id}_secret_{secrets.token_hex(8)}",
                "livemode": False,
            }
            self.intents[intent_id] = intent
            return 200, dict(intent)

    def change(
        self, intent: dict[str, Any], params: dict[str, Any], cancel: bool
    ) -> tuple[int, dict[str, Any]]:
        with self.lock:
            if cancel:
                # Like Stripe: an intent that took the money (or was cancelled) cannot be
                # cancelled (again).
                if intent["status"] not in CANCELABLE:
                    return 400, _error(
                        "invalid_request_error",
                        f"You cannot cancel this PaymentIntent because it has a status of "
                        f"{intent['status']}.",
                        "payment_intent_unexpected_state",
                    )
                self.cancels.append(intent["id"])
                intent["status"] = "canceled"
                return 200, dict(intent)
            if self.fail_updates:
                return 500, _error("api_error", "Stripe is unavailable.")
            if "amount" in params and intent["status"] not in UNPAID:
                return 400, _error(
                    "invalid_request_error",
                    f"This PaymentIntent's amount could not be updated because it has a "
                    f"status of {intent['status']}.",
                    "payment_intent_unexpected_state",
                )
            self.updates.append((intent["id"], params))
            if "amount" in params:
                intent["amount"] = int(params["amount"])
            intent["metadata"] = {**intent["metadata"], **params.get("metadata", {})}
            for name in ("description", "receipt_email"):
                if name in params:
                    intent[name] = params[name]
            return 200, dict(intent)


class _Handler(BaseHTTPRequestHandler):
    fake: FakeStripe

    def log_message(self, format: str, *args: Any) -> None:
        return

    def _reply(self, status: int, body: dict[str, Any], replayed: bool = False) -> None:
        payload = json.dumps(body).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.send_header("Request-Id", f"req_{secrets.token_hex(6)}")
            if replayed:
                self.send_header("Idempotent-Replayed", "true")
            self.end_headers()
            self.wfile.write(payload)
        except OSError:
            pass  # the client gave up (timeout or lost response): nobody to answer

    def _authorised(self) -> bool:
        if (
            self.headers.get("Authorization") != f"Bearer {API_KEY}"
            or self.fake.mode == "declined_key"
        ):
            self._reply(401, _error("invalid_request_error", "Invalid API Key provided."))
            return False
        return True

    def _params(self) -> dict[str, Any]:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode()
        return _unflatten(parse_qsl(body, keep_blank_values=True))

    def _drop_connection(self) -> None:
        # RST, not FIN: the client sees its connection fail, not an empty answer.
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.connection.close()
        self.close_connection = True

    def _fault_before(self, operation: Operation) -> str | None:
        """Meet the operation's injected fault, if any, before doing anything. Returns
        "lost" when the operation is to be done and its answer lost; None to go on."""
        fake = self.fake
        kind = fake.faults.get(operation)
        if kind is None:
            return None
        fake.faults_met.append((operation, kind))
        if kind == "declined":
            self._reply(
                400,
                _error("invalid_request_error", "Request declined by the fake.", "fake_declined"),
            )
        elif kind == "timeout":
            time.sleep(fake.hang_seconds)
            self._drop_connection()
        elif kind == "refused":
            self._drop_connection()
        elif kind == "error":
            return "error"
        return kind

    def _answer(
        self,
        operation: Operation,
        do: Callable[[], tuple[int, dict[str, Any]]],
        key: str | None = None,
        params: dict[str, Any] | None = None,
    ) -> None:
        """Meet the operation's fault, replay the first answer to a key, or do it."""
        fake = self.fake
        fault = self._fault_before(operation)
        if fault is not None and fault not in ("error", "lost"):
            return
        replayed = False
        if key and key in fake.replies:
            path, first_params, status, body = fake.replies[key]
            replayed = True
            if (path, first_params) != (self.path, params):
                status, body = (
                    400,
                    _error(
                        "idempotency_error",
                        "Keys for idempotent requests can only be used with the same "
                        "parameters they were first used with.",
                    ),
                )
        elif fault == "error":
            status, body = 500, _error("api_error", "Something went wrong on Stripe's end.")
        else:
            if fake.mode == "hang":
                time.sleep(fake.hang_seconds)
            status, body = do()
        if key and not replayed:
            with fake.lock:
                fake.replies.setdefault(key, (self.path, params or {}, status, body))
        lose_first = operation == "create" and fake.mode == "lose_response"
        if fault == "lost" or lose_first:
            if lose_first:
                fake.mode = "ok"  # only the first response is lost
            time.sleep(fake.hang_seconds)  # the client gives up before this arrives
            self._drop_connection()
            return
        self._reply(status, body, replayed=replayed)

    def do_POST(self) -> None:
        fake = self.fake
        params = self._params()
        fake.requests.append(f"POST {self.path}")
        if not self._authorised():
            return
        key = self.headers.get("Idempotency-Key")
        parts = self.path.split("?")[0].strip("/").split("/")
        if parts == ["v1", "payment_intents"]:
            if key:
                fake.idempotency_keys.append(key)
            self._answer("create", lambda: fake.create(params), key, params)
            return
        if len(parts) >= 3 and parts[:2] == ["v1", "payment_intents"]:
            intent = fake.intents.get(parts[2])
            if intent is None:
                self._reply(
                    404,
                    _error("invalid_request_error", "No such payment_intent", "resource_missing"),
                )
                return
            cancel = len(parts) == 4 and parts[3] == "cancel"
            self._answer(
                "cancel" if cancel else "update",
                lambda: fake.change(intent, params, cancel),
                key,
                params,
            )
            return
        self._reply(404, _error("invalid_request_error", "Unrecognized request URL"))

    def do_GET(self) -> None:
        self.fake.requests.append(f"GET {self.path}")
        if not self._authorised():
            return
        parts = self.path.split("?")[0].strip("/").split("/")
        intent = self.fake.intents.get(parts[2]) if len(parts) == 3 else None
        if intent is None:
            self._reply(404, _error("invalid_request_error", "No such payment_intent"))
            return
        self._answer("retrieve", lambda: (200, dict(intent)))


class FakeStripeServer:
    def __init__(self) -> None:
        self.fake = FakeStripe()
        self.handler = type("Handler", (_Handler,), {"fake": self.fake})
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self.handler)
        self.port = self.httpd.server_address[1]
        self.fake.url = f"http://127.0.0.1:{self.port}"
        self.fake._listening = self._listening
        self.thread: threading.Thread | None = None

    def _serve(self) -> None:
        self.httpd.daemon_threads = True
        # serve_forever's default poll of 0.5 s made every test using the fake wait that
        # long in teardown for shutdown() to be noticed.
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    def _listening(self, on: bool) -> None:
        if on:
            self.httpd = ThreadingHTTPServer(("127.0.0.1", self.port), self.handler)
            self._serve()
        else:
            self.httpd.shutdown()
            self.httpd.server_close()

    def __enter__(self) -> FakeStripe:
        self._serve()
        return self.fake

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
