"""Figures a trust test reaches, for `make trust-report` to publish in docs/reliability.md.

A test calls `record("access", routes=212, personas=7, refusals_checked=1180)`; when
TRUST_REPORT_DIR is set (as `make trust-report` sets it), the figures are merged into
`$TRUST_REPORT_DIR/access.json`. Outside a report run this does nothing, so figures are
never typed by hand: they are what the last run counted.

Several pytest-xdist workers may record into the same part at once: the merge holds an
exclusive lock on a sibling lock file, and the JSON is replaced whole, so no worker reads
another's half-written file or overwrites figures it has not seen.
"""

from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path
from typing import Any


def record(part: str, **figures: Any) -> None:
    directory = os.environ.get("TRUST_REPORT_DIR")
    if not directory:
        return
    path = Path(directory) / f"{part}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.with_name(f".{part}.lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        existing = json.loads(path.read_text()) if path.exists() else {}
        existing.update(figures)
        partial = path.with_name(f".{part}.{os.getpid()}.tmp")
        partial.write_text(json.dumps(existing, indent=2, sort_keys=True, default=str) + "\n")
        partial.replace(path)
