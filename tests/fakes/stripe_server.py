"""A small fake of Stripe's PaymentIntents API over real HTTP on 127.0.0.1.

The official SDK talks to it through STRIPE_API_BASE. Like Stripe, it answers a repeated
Idempotency-Key with the first response. It counts what it was asked, and can be told to
fail, to hang past the client's timeout, or to create the intent and lose the response.
Like Stripe, it changes the amount of an intent only while the intent is unpaid."""

from __future__ import annotations

import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl

API_KEY = "sk_test_tranche_fake_key"
# Stripe's states in which a PaymentIntent has taken no money and its amount may change.
UNPAID = ("requires_payment_method", "requires_confirmation", "requires_action")
# The states Stripe cancels from (docs: "Cancel a PaymentIntent").
CANCELABLE = (*UNPAID, "requires_capture", "processing")


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


@dataclass
class FakeStripe:
    url: str = ""
    mode: str = "ok"  # ok | error | hang | lose_response | declined_key
    hang_seconds: float = 3.0
    intents: dict[str, dict[str, Any]] = field(default_factory=dict)
    create_requests: list[dict[str, Any]] = field(default_factory=list)
    idempotency_keys: list[str] = field(default_factory=list)
    replies: dict[str, tuple[int, dict[str, Any]]] = field(default_factory=dict)
    updates: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    cancels: list[str] = field(default_factory=list)
    # Every request as "METHOD /path", in order: what the client asked Stripe about.
    requests: list[str] = field(default_factory=list)
    fail_updates: bool = False  # updates answer 500, as when Stripe has an outage
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def created(self) -> int:
        return len(self.intents)

    def create(self, params: dict[str, Any], key: str | None) -> tuple[int, dict[str, Any], bool]:
        """Returns (status, body, lose_the_response)."""
        with self.lock:
            self.create_requests.append(params)
            if key:
                self.idempotency_keys.append(key)
                if key in self.replies:
                    status, body = self.replies[key]
                    return status, body, False
            if self.mode == "error":
                return (
                    500,
                    {
                        "error": {
                            "type": "api_error",
                            "message": "Something went wrong on Stripe's end.",
                        }
                    },
                    False,
                )
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
            if key:
                self.replies[key] = (200, intent)
            lose = self.mode == "lose_response"
            if lose:
                self.mode = "ok"  # only the first response is lost
            return 200, intent, lose


class _Handler(BaseHTTPRequestHandler):
    fake: FakeStripe

    def log_message(self, format: str, *args: Any) -> None:
        return

    def _reply(self, status: int, body: dict[str, Any]) -> None:
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("Request-Id", f"req_{secrets.token_hex(6)}")
        self.end_headers()
        self.wfile.write(payload)

    def _authorised(self) -> bool:
        if (
            self.headers.get("Authorization") != f"Bearer {API_KEY}"
            or self.fake.mode == "declined_key"
        ):
            self._reply(
                401,
                {
                    "error": {
                        "type": "invalid_request_error",
                        "message": "Invalid API Key provided.",
                    }
                },
            )
            return False
        return True

    def _params(self) -> dict[str, Any]:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode()
        return _unflatten(parse_qsl(body, keep_blank_values=True))

    def _unexpected_state(self, intent: dict[str, Any]) -> None:
        self._reply(
            400,
            {
                "error": {
                    "type": "invalid_request_error",
                    "code": "payment_intent_unexpected_state",
                    "message": f"This PaymentIntent could not be changed because it has a "
                    f"status of {intent['status']}.",
                }
            },
        )

    def do_POST(self) -> None:
        fake = self.fake
        params = self._params()
        fake.requests.append(f"POST {self.path}")
        if not self._authorised():
            return
        if fake.mode == "hang":
            time.sleep(fake.hang_seconds)
        parts = self.path.split("?")[0].strip("/").split("/")
        if parts == ["v1", "payment_intents"]:
            status, body, lose = fake.create(params, self.headers.get("Idempotency-Key"))
            if lose:
                time.sleep(fake.hang_seconds)  # the client gives up before this arrives
            self._reply(status, body)
            return
        if len(parts) >= 3 and parts[:2] == ["v1", "payment_intents"]:
            intent = fake.intents.get(parts[2])
            if intent is None:
                self._reply(
                    404,
                    {
                        "error": {
                            "type": "invalid_request_error",
                            "code": "resource_missing",
                            "message": "No such payment_intent",
                        }
                    },
                )
                return
            with fake.lock:
                if len(parts) == 4 and parts[3] == "cancel":
                    # Like Stripe: an intent that took the money (or is taking it) cannot
                    # be cancelled any more; one cancelled already cannot be cancelled again.
                    if intent["status"] not in CANCELABLE:
                        self._unexpected_state(intent)
                        return
                    fake.cancels.append(intent["id"])
                    intent["status"] = "canceled"
                elif fake.fail_updates:
                    self._reply(
                        500, {"error": {"type": "api_error", "message": "Stripe is unavailable."}}
                    )
                    return
                elif "amount" in params and intent["status"] not in UNPAID:
                    self._unexpected_state(intent)
                    return
                else:
                    fake.updates.append((intent["id"], params))
                    if "amount" in params:
                        intent["amount"] = int(params["amount"])
                    intent["metadata"] = {**intent["metadata"], **params.get("metadata", {})}
                    if "description" in params:
                        intent["description"] = params["description"]
            self._reply(200, intent)
            return
        self._reply(
            404, {"error": {"type": "invalid_request_error", "message": "Unrecognized request URL"}}
        )

    def do_GET(self) -> None:
        self.fake.requests.append(f"GET {self.path}")
        if not self._authorised():
            return
        parts = self.path.split("?")[0].strip("/").split("/")
        intent = self.fake.intents.get(parts[2]) if len(parts) == 3 else None
        if intent is None:
            self._reply(
                404,
                {"error": {"type": "invalid_request_error", "message": "No such payment_intent"}},
            )
            return
        self._reply(200, intent)


class FakeStripeServer:
    def __init__(self) -> None:
        self.fake = FakeStripe()
        handler = type("Handler", (_Handler,), {"fake": self.fake})
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.httpd.daemon_threads = True
        self.fake.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        # serve_forever's default poll of 0.5 s made every test using the fake wait that long
        # in teardown for shutdown() to be noticed.
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def __enter__(self) -> FakeStripe:
        self.thread.start()
        return self.fake

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
