"""A real SMTP server (aiosmtpd) on 127.0.0.1 that keeps what it receives.

It can be slow to answer DATA (`slow_data`), as a loaded mail server is, and then either
keep the message before it answers (the server accepted it; a client that dies waiting
never hears so) or only if the client is still there to hear the answer."""

from __future__ import annotations

import asyncio
import socket
import threading
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller


class _Collector:
    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.delay = 0.0
        self.keep_before_answer = True
        # Set when a DATA arrives, so a test can act while the client waits for the answer.
        self.data_received = threading.Event()
        # Recipients the server refuses at RCPT TO (550), as for a mailbox that is gone.
        self.refused: set[str] = set()
        # Recipients on whose message's DATA the server drops the connection unanswered.
        self.drop_data_to: set[str] = set()

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        if address in self.refused:
            return "550 5.1.1 Mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = message_from_bytes(envelope.content, policy=policy.default)
        assert isinstance(message, EmailMessage)
        self.data_received.set()
        if self.drop_data_to & set(envelope.rcpt_tos):
            server.transport.close()
            return "421 Closing"
        if self.delay and self.keep_before_answer:
            self.messages.append(message)
            await asyncio.sleep(self.delay)
            return "250 Message accepted for delivery"
        if self.delay:
            await asyncio.sleep(self.delay)
            transport = server.transport
            if transport is None or transport.is_closing():
                return "451 Client went away; message not kept"
        self.messages.append(message)
        return "250 Message accepted for delivery"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _CountingController(Controller):
    """Counts the SMTP sessions (one per client connection)."""

    def __init__(self, *args: Any, sessions: list[int], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.sessions = sessions

    def factory(self) -> Any:
        self.sessions[0] += 1
        return super().factory()


class SmtpServer:
    """Start, stop and start again on the same port, like a mail server that goes down."""

    def __init__(self) -> None:
        self.port = free_port()
        self.collector = _Collector()
        self.controller: Controller | None = None
        self.started = False
        self._sessions = [0]

    @property
    def connections(self) -> int:
        """How many SMTP connections clients opened (the readiness probe's excepted)."""
        return self._sessions[0]

    @property
    def messages(self) -> list[EmailMessage]:
        return self.collector.messages

    def slow_data(self, seconds: float, *, keep_before_answer: bool) -> None:
        self.collector.delay = seconds
        self.collector.keep_before_answer = keep_before_answer

    @property
    def data_received(self) -> threading.Event:
        return self.collector.data_received

    def start(self) -> None:
        # The port was free when picked, but another process (a parallel pytest worker)
        # may bind it before we do. Until the first start nobody has been told the port,
        # so that start may move to a fresh one; a restart must come back where it was.
        for attempt in range(1 if self.started else 3):
            # aiosmtpd's 5 s default to come up is short on a busy 2-core machine.
            self.controller = _CountingController(
                self.collector,
                hostname="127.0.0.1",
                port=self.port,
                ready_timeout=30,
                sessions=self._sessions,
            )
            before = self._sessions[0]
            try:
                self.controller.start()
            except OSError:
                self.controller = None
                if self.started or attempt == 2:
                    raise
                self.port = free_port()
            else:
                self._sessions[0] = before  # start() probes the server with a connection
                self.started = True
                return

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None
