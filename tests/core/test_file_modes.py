"""Local state (the SQLite database and its -wal/-shm, outgoing mail, collected static
files, the generated secret key) is readable by the server's user only, whatever umask
the process was started with."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

# Runs inside `tranche shell`: writes to the database in WAL mode and files one email,
# then reports the mode of every path under VAR_DIR while the connection is still open.
SCRIPT = """
import json, os
from pathlib import Path

import pytest
from django.conf import settings
from django.core.mail import send_mail
from django.db import connection
with connection.cursor() as cursor:
    cursor.execute("CREATE TABLE probe (x integer)")
    cursor.execute("INSERT INTO probe VALUES (1)")
send_mail("Subject", "Body", "from@example.com", ["to@example.com"])
var = Path(settings.VAR_DIR)
modes = {str(p.relative_to(var)): oct(p.stat().st_mode & 0o777) for p in var.rglob("*")}
modes["."] = oct(var.stat().st_mode & 0o777)
print("MODES " + json.dumps(modes))
"""


@pytest.mark.slow
def test_a_fresh_local_install_keeps_its_state_to_its_own_user(tmp_path: Path) -> None:
    var = tmp_path / "var"
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"SECRET_KEY", "DEBUG", "DATABASE_URL", "EMAIL_HOST"}
    }
    env.update({"VAR_DIR": str(var), "DEBUG": "1"})

    result = subprocess.run(
        [sys.executable, "-m", "tranche.cli", "shell", "-c", SCRIPT],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        # A common default umask: files 0644, folders 0755 unless we say otherwise.
        preexec_fn=lambda: os.umask(0o022),
    )

    assert result.returncode == 0, result.stderr
    [line] = [line for line in result.stdout.splitlines() if line.startswith("MODES ")]
    modes = json.loads(line.removeprefix("MODES "))
    for folder in (".", "mail", "static"):
        assert modes.pop(folder) == oct(0o700), folder
    for name in ("tranche.sqlite3", "tranche.sqlite3-wal", "tranche.sqlite3-shm", "secret_key"):
        assert modes.pop(name) == oct(0o600), name
    [mail_file] = [name for name in modes if name.startswith("mail/")]
    assert modes.pop(mail_file) == oct(0o600)
    assert modes == {}
    assert stat.S_IMODE(var.stat().st_mode) == 0o700
