"""Every destination that cannot be written ends in one ``error:`` line and exit 2, before any
work (issue 25: ten cases were tracebacks). ``/proc`` refuses new files even to root, so these
hold wherever the suite runs; a path through a file cannot be created anywhere."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from auditml.cli import main
from auditml.errors import RunDirectoryError
from auditml.fileio import check_writable

UNWRITABLE = ["/proc/auditml-test-out", "/proc/self/auditml/deeper"]


def _one_error_line(capsys: pytest.CaptureFixture[str], words: str) -> None:
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert words in err and "Traceback" not in err


@pytest.mark.parametrize("out", UNWRITABLE)
def test_train_refuses_an_unwritable_output_dir_before_training(
    out: str, tiny_config: Callable[..., dict[str, Any]], write_config: Callable[..., Path],
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = write_config(tiny_config(output_dir=out))
    assert main(["train", "--config", str(path)]) == 2
    _one_error_line(capsys, "cannot be written")


@pytest.mark.parametrize("out", UNWRITABLE)
@pytest.mark.parametrize("command", ["report", "compare", "audit-dp", "sweep", "demo"])
def test_every_command_refuses_an_unwritable_destination(
    command: str, out: str, tmp_path: Path, tiny_config: Callable[..., dict[str, Any]],
    write_config: Callable[..., Path], capsys: pytest.CaptureFixture[str],
) -> None:
    raw = tiny_config(training={"epochs": 2, "learning_rate": 0.005, "device": "cpu",
                                "dp": {"enabled": True, "epsilon": 1.0, "delta": 1e-4}})
    config = str(write_config(raw))
    run = tmp_path / "nowhere"  # report and compare check the destination before the run
    argv = {
        "report": ["report", str(run), "--out", out],
        "compare": ["compare", str(run), "--out", out],
        "audit-dp": ["audit-dp", "--config", config, "--runs", "8", "--workers", "1",
                     "--out", f"{out}/result.json"],
        "sweep": ["sweep", "--config", config, "--epsilons", "1", "--out", out],
        "demo": ["demo", "--output-dir", out],
    }[command]
    assert main(argv) == 2
    _one_error_line(capsys, "cannot be written")


def test_a_path_through_a_file_cannot_be_created(tmp_path: Path) -> None:
    blocker = tmp_path / "a_file"
    blocker.write_text("x", encoding="utf-8")
    with pytest.raises(RunDirectoryError, match="is not a directory"):
        check_writable(blocker / "report", "out_dir")
    check_writable(tmp_path / "new" / "deeper", "out_dir")  # creatable: no error, nothing made
    assert not (tmp_path / "new").exists()
    assert not list(tmp_path.glob(".auditml-write-check.*"))


def test_an_os_error_during_the_work_is_one_line(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    """The backstop: a disk that fills up mid-write is one line, not a traceback."""
    import auditml.demo

    def full_disk(*_: object, **__: object) -> None:
        raise OSError(28, "No space left on device", str(tmp_path / "x.yaml"))

    monkeypatch.setattr(auditml.demo, "install_owned_files", full_disk)
    assert main(["demo", "--output-dir", str(tmp_path / "demo")]) == 2
    _one_error_line(capsys, "No space left on device")
