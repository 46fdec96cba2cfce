"""Figures a trust test reaches, for `make trust-report` to publish in docs/reliability.md.

A test calls `record("access", routes=212, personas=7, refusals_checked=1180)`; when
TRUST_REPORT_DIR is set (as `make trust-report` sets it), the figures are merged into
`$TRUST_REPORT_DIR/access.json`. Outside a report run this does nothing, so figures are
never typed by hand: they are what the last run counted.
"""

from __future__ import annotations

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
    existing = json.loads(path.read_text()) if path.exists() else {}
    existing.update(figures)
    path.write_text(json.dumps(existing, indent=2, sort_keys=True, default=str) + "\n")
