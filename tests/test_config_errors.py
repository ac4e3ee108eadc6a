"""One-line error messages: what config_errors guarantees, and the CLI's backstop."""

from __future__ import annotations

import pytest

from auditml import cli
from auditml.config_errors import MESSAGE_CHARS, one_line, quote
from auditml.errors import RunDirectoryError


def test_one_line_escapes_control_characters_and_caps_the_length() -> None:
    assert one_line("key\nwith\ttabs\x1b[31m") == "key\\nwith\\ttabs\\x1b[31m"
    long = one_line("x" * 10_000)
    assert len(long) == MESSAGE_CHARS + 1 and long.endswith("…")
    assert one_line("short", limit=3) == "sho…"


def test_quote_cuts_a_huge_value() -> None:
    assert len(quote("a" * 10**6)) <= 61
    assert quote(10**5000).startswith("<an integer of")


def test_the_cli_prints_any_error_as_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def broken(*args: object) -> int:
        raise RunDirectoryError("cannot read /tmp/a\nb (reason:\n" + "y" * 5000 + ")")

    monkeypatch.setattr(cli, "_dispatch", broken)
    assert cli.main(["show-config", "--config", "x.yaml"]) == cli.EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: cannot read /tmp/a\\nb")
    assert len(err) < 2100
