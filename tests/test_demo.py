"""``auditml demo --output-dir D`` writes only what is its own in D: its configs replace only
files an earlier demo wrote there (listed with their SHA-256), and a user's file in the way is
refused before the first model trains. The demo itself runs end to end in ``make demo``; here
training is replaced by a stop, since every check of D comes before it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

import auditml.demo
from auditml.cli import main
from auditml.demo import demo_configs


class _Stop(Exception):
    """Raised where the demo would start training."""


def _stop_before_training(*_: Any, **__: Any) -> None:
    raise _Stop


@pytest.fixture(autouse=True)
def _no_training(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(auditml.demo, "train", _stop_before_training)


def test_the_users_tutorial_configs_are_refused_and_kept(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # `auditml demo --output-dir .` in a clone: configs/ holds the shipped MNIST configs.
    shipped = Path(__file__).resolve().parents[1] / "configs" / "dp_tutorial_eps5.yaml"
    (tmp_path / "configs").mkdir()
    mine = tmp_path / "configs" / "dp_tutorial_eps5.yaml"
    mine.write_bytes(shipped.read_bytes())
    assert main(["demo", "--output-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert "configs/dp_tutorial_eps5.yaml is not a file an earlier auditml demo wrote" in err
    assert "--output-dir" in err
    assert mine.read_bytes() == shipped.read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["configs"]
    assert sorted(p.name for p in (tmp_path / "configs").iterdir()) == ["dp_tutorial_eps5.yaml"]


def test_a_rerun_replaces_the_demos_own_configs_and_stops_at_a_changed_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "demo"
    with pytest.raises(_Stop):
        auditml.demo.run_demo(out)
    names = [f"configs/{name}.yaml" for name in demo_configs(out)]
    listed = json.loads((out / ".auditml-report.json").read_text())
    assert listed["kind"] == "demo" and sorted(listed["files"]) == sorted(names)
    for name, raw in zip(names, demo_configs(out).values(), strict=True):
        assert yaml.safe_load((out / name).read_text()) == raw
    with pytest.raises(_Stop):  # its own files: replaced
        auditml.demo.run_demo(out)

    edited = out / "configs" / "dp_tutorial_eps1.yaml"
    edited.write_text(edited.read_text() + "# my change\n")
    assert main(["demo", "--output-dir", str(out)]) == 2
    assert "dp_tutorial_eps1.yaml changed since auditml demo wrote it" in capsys.readouterr().err
    assert edited.read_text().endswith("# my change\n")


def test_configs_of_a_demo_that_kept_no_list_are_recognised_by_their_content(
    tmp_path: Path,
) -> None:
    out = tmp_path / "demo"
    (out / "configs").mkdir(parents=True)
    for name, raw in demo_configs(out).items():  # what an earlier demo wrote, byte for byte
        (out / "configs" / f"{name}.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    with pytest.raises(_Stop):
        auditml.demo.run_demo(out)


def test_a_folder_in_a_runs_place_is_refused_before_training(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "dp_tutorial_eps1").mkdir()
    (tmp_path / "dp_tutorial_eps1" / "thesis.tex").write_text("mine")
    assert main(["demo", "--output-dir", str(tmp_path)]) == 2
    assert capsys.readouterr().err.startswith("error: ")
    assert not (tmp_path / "configs").exists()
