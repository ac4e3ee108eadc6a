"""The README's runnable examples run."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def _python_block_after(heading: str) -> str:
    text = README.read_text(encoding="utf-8")
    section = text[text.index(heading):]
    match = re.search(r"```python\n(.*?)```", section, flags=re.DOTALL)
    assert match is not None, f"no python block after {heading!r}"
    return match.group(1)


@pytest.mark.slow
def test_bring_your_own_model_example(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {}
    exec(compile(_python_block_after("### Your own model in Python"), "README", "exec"), namespace)
    saved = json.loads((tmp_path / "my_audit.json").read_text())
    assert set(saved) == {"mia_threshold", "mia_lira"}
    assert saved["mia_lira"]["counts"] == {"members": 200, "nonmembers": 200}


@pytest.mark.slow
def test_own_opacus_loop_example() -> None:
    namespace: dict[str, Any] = {}
    code = compile(_python_block_after("### Audit your own Opacus loop"), "README", "exec")
    exec(code, namespace)
    result = namespace["result"]
    assert result.violation is False
    assert 0.99 <= result.claimed_epsilon <= 1.0
    assert result.record.canaries == 1000 and result.threat_model == "all_iterates"


@pytest.mark.slow
def test_flagged_loop_example() -> None:
    """The README's shuffled-batches loop is flagged as it says, with the numbers it prints."""
    namespace: dict[str, Any] = {}
    code = compile(_python_block_after("### What the audit checks of your loop"), "README", "exec")
    with pytest.warns(UserWarning, match="loader draws shuffled fixed-size batches of 128"):
        exec(code, namespace)
    result = namespace["result"]
    assert result.violation is True and result.failed_checks == ("loader", "batch_sizes")
    assert not result.claim_applies
    loader = result.checks[0]
    assert loader.epsilon_lower_bound is not None and 2.7 < loader.epsilon_lower_bound < 2.8
    shown = README.read_text(encoding="utf-8")
    assert f"ε ≥ {loader.epsilon_lower_bound:.3g} at δ = 1e-05" in shown
    assert "210 of 225 steps had exactly 128 examples" in result.checks[1].detail


def _shell_block_after(heading: str) -> list[str]:
    text = README.read_text(encoding="utf-8")
    section = text[text.index(heading):]
    match = re.search(r"```bash\n(.*?)```", section, flags=re.DOTALL)
    assert match is not None, f"no bash block after {heading!r}"
    return [line for line in match.group(1).splitlines() if line.strip()]


@pytest.mark.slow
def test_your_own_data_example(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The breast-cancer CSV example: written by its Python, trained and audited by its commands."""
    import shlex

    from auditml.cli import main

    monkeypatch.chdir(tmp_path)
    exec(compile(_python_block_after("### Your own data in the CLI"), "README", "exec"), {})
    commands = _shell_block_after("### Your own data in the CLI")
    assert [command.split()[:2] for command in commands] == [
        ["auditml", "train"], ["auditml", "audit"]
    ]
    for command in commands:
        assert main(shlex.split(command)[1:]) == 0, command
    run = tmp_path / "results" / "breast_cancer"
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["dataset"] == "csv" and metrics["arch"] == "mlp_tabular"
    assert metrics["data_file"]["path"] == str(tmp_path / "breast_cancer.csv")
    inference = json.loads((run / "audit" / "attribute_inference.json").read_text())
    assert inference["attribute"] == "size" and inference["categories"] == ["large", "small"]
    assert json.loads((run / "audit" / "mia_threshold.json").read_text())["counts"] == {
        "members": 150, "nonmembers": 150
    }


def _block_after(heading: str, language: str, index: int = 0) -> str:
    text = README.read_text(encoding="utf-8")
    section = text[text.index(heading):]
    return re.findall(rf"```{language}\n(.*?)```", section, flags=re.DOTALL)[index]


@pytest.mark.slow
def test_own_model_in_the_cli_example(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The README's module and config, run with its two commands from the config's directory."""
    import sys

    from auditml.cli import main

    heading = "### Your own model in the CLI"
    (tmp_path / "my_models.py").write_text(_python_block_after(heading), encoding="utf-8")
    (tmp_path / "my_model.yaml").write_text(_block_after(heading, "yaml"), encoding="utf-8")
    commands = [line.split()[1:] for line in _block_after(heading, "bash").splitlines()]
    assert commands == [["train", "--config", "my_model.yaml"],
                        ["audit", "--config", "my_model.yaml"]]
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.delitem(sys.modules, "my_models", raising=False)
    for command in commands:
        assert main(command) == 0
    monkeypatch.delitem(sys.modules, "my_models", raising=False)
    metrics = json.loads((tmp_path / "results" / "my_model" / "metrics.json").read_text())
    assert metrics["arch"] == "my_models:small_tanh" and metrics["epsilon"] <= 5.0
    assert metrics["model_source"]["file"] == str((tmp_path / "my_models.py").resolve())
    audit = tmp_path / "results" / "my_model" / "audit"
    assert {"mia_threshold.json", "mia_lira.json"} <= {path.name for path in audit.iterdir()}


@pytest.mark.slow
def test_api_results_in_the_report_example(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The saved API audit is read by `auditml report` and `auditml compare` beside a CLI run,
    as the README's commands say (a tiny CLI run stands in for the tutorial's baseline)."""
    import yaml

    from auditml.cli import main

    monkeypatch.chdir(tmp_path)
    namespace: dict[str, Any] = {}
    exec(compile(_python_block_after("### API results in the report"), "README", "exec"),
         namespace)
    assert len(list((tmp_path / "references" / "audit").glob("model_*.safetensors"))) == 4
    assert main(["report", "results/my_model", "--out", "results/my_model_report"]) == 0
    report = json.loads((tmp_path / "results/my_model_report/run_report.json").read_text())
    assert report["headline"].startswith("No DP claim given")
    Path("baseline.yaml").write_text(yaml.safe_dump({
        "experiment_name": "dp_tutorial_baseline", "output_dir": "results",
        "data": {"dataset": "digits", "train_size": 100, "batch_size": 50},
        "training": {"epochs": 1, "device": "cpu"},
    }))
    assert main(["train", "--config", "baseline.yaml"]) == 0
    assert main(["audit", "--config", "baseline.yaml", "--attack", "mia_threshold"]) == 0
    assert main(["compare", "results/dp_tutorial_baseline", "results/my_model",
                 "--out", "results/with_mine"]) == 0
    rows = json.loads((tmp_path / "results/with_mine/comparison.json").read_text())["rows"]
    assert [row["run_name"] for row in rows] == ["dp_tutorial_baseline", "my_model"]
    assert rows[1]["auc"] == namespace["results"].attacks["mia_threshold"].metrics.auc


def test_install_comes_first_and_warns_about_the_namesake_on_the_package_index() -> None:
    text = README.read_text(encoding="utf-8")
    headings = re.findall(r"^## (.+)$", text, flags=re.MULTILINE)
    assert headings[:2] == ["Install", "Quick start"]
    install = text[text.index("## Install"):text.index("## Quick start")]
    assert "`pip install auditml` from the package index installs a different, unrelated" in (
        " ".join(install.split()))
    assert "pip install -c constraints.txt -e ." in install
    # The tutorial does not tell anyone to install the namesake either.
    tutorial = (README.parent / "docs" / "tutorial.md").read_text(encoding="utf-8")
    assert "pip install auditml" not in tutorial.replace("not `pip install auditml`", "")


def test_the_quick_start_commands_are_make_targets_that_install_with_the_constraints() -> None:
    text = README.read_text(encoding="utf-8")
    quick = text[text.index("## Quick start"):]
    block = re.search(r"```bash\n(.*?)```", quick, flags=re.DOTALL)
    assert block is not None
    commands = [line.split("#")[0].strip() for line in block.group(1).splitlines()]
    assert commands == ["make demo", "make test"]
    makefile = (README.parent / "Makefile").read_text(encoding="utf-8")
    assert re.search(r"^demo: \$\(STAMP\)\n\t\$\(BIN\)/auditml demo$", makefile, re.MULTILINE)
    assert re.search(r"^test: \$\(STAMP\)\n", makefile, re.MULTILINE)
    assert "pip install --quiet -c constraints.txt -e '.[test,ray,text]'" in makefile


def test_every_tutorial_step_says_how_long_it_takes() -> None:
    text = README.read_text(encoding="utf-8")
    section = text[text.index("## The tutorial"):]
    block = re.search(r"```bash\n(.*?)```", section, flags=re.DOTALL)
    assert block is not None
    tutorial = (README.parent / "docs" / "tutorial.md").read_text(encoding="utf-8")
    steps = [line for source in (block.group(1), tutorial) for line in source.splitlines()
             if line.startswith(("auditml train", "auditml audit", "auditml report"))]
    assert len(steps) == 11  # README: 4; tutorial: 3 trainings and audits, a report
    assert all(re.search(r"# about \d+ (s|min|minutes)\b", step) for step in steps), steps


def test_the_map_of_claims_names_functions_that_exist() -> None:
    """Every name in the README's 'Which function to quote for which claim' resolves in
    auditml.metrics, so the map cannot point a researcher at a function that is gone."""
    import importlib

    text = README.read_text(encoding="utf-8")
    section = text[text.index("### Which function to quote for which claim"):]
    rows = [line for line in section.split("\n\n")[1].splitlines()[2:] if line.startswith("|")]
    cells = [re.sub(r"\(.*?\)", "", row.split("|")[2]) for row in rows]  # (a result's field)
    names = [name for cell in cells for name in re.findall(r"`([\w.]+)`", cell)]
    assert len(rows) >= 10 and len(names) >= 15
    for name in names:
        *modules, attribute = f"auditml.metrics.{name}".split(".")
        assert hasattr(importlib.import_module(".".join(modules)), attribute), name
