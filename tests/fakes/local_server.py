"""What the throw-away servers of the tests share: a free port on 127.0.0.1, and stopping
a server process for good."""

from __future__ import annotations

import socket
import subprocess
from typing import Any


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def terminate(process: subprocess.Popen[Any], *, grace: float = 10) -> None:
    """SIGTERM, then SIGKILL if it has not exited within `grace` seconds."""
    process.terminate()
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
