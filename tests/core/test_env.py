from __future__ import annotations

from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from tranche.core.env import env_bool, env_int, env_list, env_url, parse_database_url


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
