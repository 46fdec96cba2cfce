"""A real SMTP server (aiosmtpd) on 127.0.0.1 that keeps what it receives."""

from __future__ import annotations

import socket
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller


class _Collector:
    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = message_from_bytes(envelope.content, policy=policy.default)
        assert isinstance(message, EmailMessage)
        self.messages.append(message)
        return "250 Message accepted for delivery"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class SmtpServer:
    """Start, stop and start again on the same port, like a mail server that goes down."""

    def __init__(self) -> None:
        self.port = free_port()
        self.collector = _Collector()
        self.controller: Controller | None = None
        self.started = False

    @property
    def messages(self) -> list[EmailMessage]:
        return self.collector.messages

    def start(self) -> None:
        # The port was free when picked, but another process (a parallel pytest worker)
        # may bind it before we do. Until the first start nobody has been told the port,
        # so that start may move to a fresh one; a restart must come back where it was.
        for attempt in range(1 if self.started else 3):
            # aiosmtpd's 5 s default to come up is short on a busy 2-core machine.
            self.controller = Controller(
                self.collector, hostname="127.0.0.1", port=self.port, ready_timeout=30
            )
            try:
                self.controller.start()
            except OSError:
                self.controller = None
                if self.started or attempt == 2:
                    raise
                self.port = free_port()
            else:
                self.started = True
                return

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None
