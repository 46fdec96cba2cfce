from __future__ import annotations

from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from tranche.core.env import (
    env_bool,
    env_int,
    env_list,
    env_rate,
    env_url,
    parse_database_url,
)


def test_database_urls_are_parsed(tmp_path: Path) -> None:
    pg = parse_database_url(
        "postgresql://app:s%40cret@db.internal:6543/tranche?sslmode=require", base_dir=tmp_path
    )
    assert (pg["ENGINE"], pg["NAME"], pg["USER"], pg["PASSWORD"], pg["HOST"], pg["PORT"]) == (
        "django.db.backends.postgresql",
        "tranche",
        "app",
        "s@cret",
        "db.internal",
        "6543",
    )
    assert pg["OPTIONS"] == {"sslmode": "require"}
    assert parse_database_url("sqlite:///var/x.sqlite3", base_dir=tmp_path)["NAME"] == str(
        tmp_path / "var/x.sqlite3"
    )
    assert (
        parse_database_url("sqlite:////srv/x.sqlite3", base_dir=tmp_path)["NAME"]
        == "/srv/x.sqlite3"
    )


@pytest.mark.parametrize(
    "url", ["mysql://h/db", "postgresql://h", "sqlite://", "postgresql://h:notaport/db"]
)
def test_bad_database_urls_fail_loudly(tmp_path: Path, url: str) -> None:
    with pytest.raises(ImproperlyConfigured):
        parse_database_url(url, base_dir=tmp_path)


def test_typed_readers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLAG", "Yes")
    monkeypatch.setenv("COUNT", " 7 ")
    monkeypatch.setenv("HOSTS", "a.example, b.example,,")
    monkeypatch.setenv("URL", "https://portal.example.com/")
    assert env_bool("FLAG", False) is True
    assert env_bool("MISSING", True) is True
    assert env_int("COUNT", 1) == 7
    assert env_list("HOSTS", []) == ["a.example", "b.example"]
    assert env_url("URL", "http://x") == "https://portal.example.com"
    monkeypatch.setenv("COUNT", "0")
    with pytest.raises(ImproperlyConfigured, match="at least 1"):
        env_int("COUNT", 1, minimum=1)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("10/15m", (10, 900)),
        ("5/1h", (5, 3600)),
        ("100/600", (100, 600)),
        ("3/30s", (3, 30)),
        ("2/1d", (2, 86400)),
        ("off", None),
        (" OFF ", None),
    ],
)
def test_rate_limits_are_read_as_count_per_period(
    monkeypatch: pytest.MonkeyPatch, raw: str, expected: tuple[int, int] | None
) -> None:
    monkeypatch.setenv("RATE_LIMIT_X", raw)
    assert env_rate("RATE_LIMIT_X", "1/1m") == expected


def test_a_rate_limit_left_unset_takes_its_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RATE_LIMIT_X", raising=False)
    assert env_rate("RATE_LIMIT_X", "30/10m") == (30, 600)


@pytest.mark.parametrize("raw", ["10", "ten/1m", "10/", "0/1m", "10/0", "10/5w", "-1/1h", "/1m"])
def test_a_bad_rate_limit_fails_loudly(monkeypatch: pytest.MonkeyPatch, raw: str) -> None:
    monkeypatch.setenv("RATE_LIMIT_X", raw)
    with pytest.raises(ImproperlyConfigured, match="RATE_LIMIT_X must be COUNT/PERIOD"):
        env_rate("RATE_LIMIT_X", "1/1m")
