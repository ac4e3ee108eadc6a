"""``benchmarks/gpu_suite.py`` keeps running: its CPU mode at the smoke-test sizes, in process.

Only that the figures are produced and well formed is checked, never what they are. Not run
here: the audit fixed-cost part (it trains and audits in subprocesses, half a minute) and the
tutorial part (seven auditml commands); both are thin calls into their own benchmark scripts.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType

import pytest

from benchmark_scripts import load_benchmark


def _suite() -> ModuleType:
    return load_benchmark("gpu_suite")


@pytest.mark.slow
def test_the_suite_prints_and_writes_its_figures_on_the_cpu(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "figures.json"
    status = _suite().main(["--device", "cpu", "--tiny", "--parts", "dp", "batched",
                            "--json", str(out)])
    printed = capsys.readouterr().out
    assert status == 0, printed
    figures = json.loads(out.read_text())
    (dp_row,) = figures["sections"]["dp"]
    assert set(dp_row["ratio_to_non_private"]) == {"fast", "hooks", "ghost"}
    assert all(ratio > 0 for ratio in dp_row["ratio_to_non_private"].values())
    assert dp_row["auto_picks"] in {"fast", "hooks", "ghost"}
    batched = figures["sections"]["batched"]
    assert [(row["dp"], row["models"]) for row in batched] == [
        (False, 1), (False, 2), (True, 1), (True, 2)]
    assert all(row["ratio_to_batched_k1"] == 1.0 for row in batched if row["models"] == 1)
    assert "(a) DP-SGD step" in printed and "(b) K models at once" in printed
    assert "auto picks" in printed and "error" not in printed


def test_a_failing_section_is_one_error_line_and_the_rest_still_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    suite = _suite()

    def broken(*_: object) -> None:
        raise FileNotFoundError("fashion_mnist: train-images-idx3-ubyte.gz\nnot found")

    ran = []
    monkeypatch.setitem(suite.SECTIONS, "batched", broken)
    monkeypatch.setitem(suite.SECTIONS, "dp", lambda *_: ran.append("dp") or [{"ok": 1}])
    out = tmp_path / "figures.json"
    status = suite.main(["--device", "cpu", "--tiny", "--parts", "batched", "dp",
                         "--json", str(out)])
    printed = capsys.readouterr().out
    assert status == 1 and ran == ["dp"]
    assert ("error: section batched failed: fashion_mnist: train-images-idx3-ubyte.gz not found"
            in printed.splitlines())
    sections = json.loads(out.read_text())["sections"]
    assert sections == {"batched": {"error": "fashion_mnist: train-images-idx3-ubyte.gz not "
                                             "found"}, "dp": [{"ok": 1}]}


def test_a_json_path_in_a_missing_directory_is_refused_before_any_work(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        _suite().main(["--device", "cpu", "--json", str(tmp_path / "no" / "figures.json")])
    assert exit_info.value.code == 2
    assert "does not exist" in capsys.readouterr().err
