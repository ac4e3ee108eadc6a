"""The audits beyond membership through ``auditml audit``: attribute inference on the embedded
tabular data, model inversion on digits; records written where the run directory says, read
back validated, shown in the terminal; unsuitable datasets refused in one line."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from auditml.cli import main
from auditml.errors import RunDirectoryError
from auditml.records import AttributeInferenceRecord, ModelInversionRecord
from auditml.run_directory import RunDirectory

pytestmark = pytest.mark.slow


def _trained(tiny_config: Callable[..., dict[str, Any]], write_config: Callable[..., Path],
             capsys: pytest.CaptureFixture[str], **overrides: Any) -> tuple[Path, RunDirectory]:
    raw = tiny_config(**overrides)
    config = write_config(raw)
    assert main(["train", "--config", str(config)]) == 0, capsys.readouterr().err
    capsys.readouterr()
    return config, RunDirectory(Path(raw["output_dir"]) / raw["experiment_name"])


def test_attribute_inference_on_tabular_data(
    tiny_config: Callable[..., dict[str, Any]], write_config: Callable[..., Path],
    capsys: pytest.CaptureFixture[str],
) -> None:
    config, run = _trained(
        tiny_config, write_config, capsys, experiment_name="tab",
        data={"dataset": "diabetes", "train_size": 100, "batch_size": 25},
        training={"epochs": 20, "learning_rate": 0.01},
    )
    code = main(["audit", "--config", str(config), "--attack", "mia_threshold",
                 "attribute_inference"])
    out = capsys.readouterr().out
    assert code == 0
    assert "attribute_inference of 'sex'" in out and "imputation (baseline)" in out
    record = run.read_inference("attribute_inference")
    assert isinstance(record, AttributeInferenceRecord)
    assert set(record.attacks) == {"imputation", "model_output", "confidence"}
    assert record.auxiliary_records == 442 - 200  # the records neither member nor non-member
    for name, result in record.attacks.items():
        assert result.members.records == result.nonmembers.records == 100
        assert (result.advantage_members is None) == (name == "imputation")
    # The membership results are still read as membership results, and only they.
    assert run.attack_names() == ["mia_threshold"]
    assert run.inference_names() == ["attribute_inference"]
    # The comparison shows it beside the membership results, with the best attack's numbers.
    best = record.attacks[record.best_attack or ""]
    assert best.advantage_members is not None
    assert main(["compare", str(run.path), "--out", str(run.path.parent / "report")]) == 0
    capsys.readouterr()
    report = (run.path.parent / "report" / "report.md").read_text()
    assert "| Attribute inference |" in report and "| Model inversion |" not in report
    assert (f"{best.advantage_members.advantage:+.1%} over imputation, "
            f"{best.member_gap.gap:+.1%} members − non-members") in report
    # The run's own report has the audit's section, with the same numbers.
    assert main(["report", str(run.path), "--out", str(run.path.parent / "run_report")]) == 0
    capsys.readouterr()
    page = (run.path.parent / "run_report" / "report.html").read_text()
    assert "Attribute inference of &#x27;sex&#x27;" in page
    assert f"{best.advantage_members.advantage:+.1%} [" in page


def test_attribute_inference_refuses_a_dataset_without_a_sensitive_attribute(
    tiny_config: Callable[..., dict[str, Any]], write_config: Callable[..., Path],
    capsys: pytest.CaptureFixture[str],
) -> None:
    config, run = _trained(tiny_config, write_config, capsys, experiment_name="img",
                           training={"epochs": 1})
    code = main(["audit", "--config", str(config), "--attack", "attribute_inference"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and "declares no sensitive attribute" in err
    assert not run.inference_path("attribute_inference").exists()


def test_model_inversion_writes_its_record_and_gallery(
    tiny_config: Callable[..., dict[str, Any]], write_config: Callable[..., Path],
    capsys: pytest.CaptureFixture[str],
) -> None:
    config, run = _trained(
        tiny_config, write_config, capsys, experiment_name="inv",
        training={"epochs": 5}, audit={"model_inversion": {"steps": 20, "restarts": 1}},
    )
    assert main(["audit", "--config", str(config), "--attack", "model_inversion"]) == 0
    out = capsys.readouterr().out
    assert "model_inversion (tv, estimates, not bounds): 10 classes" in out
    record = run.read_inference("model_inversion")
    assert isinstance(record, ModelInversionRecord)
    assert [c.label for c in record.classes] == list(range(10))
    assert record.settings["steps"] == 20
    gallery = run.inference_figure_path("model_inversion", "gallery")
    assert gallery.read_bytes().startswith(b"\x89PNG")
    assert main(["audit", "--config", str(config), "--attack", "mia_threshold"]) == 0
    assert main(["compare", str(run.path), "--out", str(run.path.parent / "report")]) == 0
    capsys.readouterr()
    report = (run.path.parent / "report" / "report.md").read_text()
    closer = f"{record.member_closer}/{10 - record.ties} nearer a member (p={record.p_value:.2g})"
    assert f"{record.evaluation_accuracy:.0%} recognised; {closer}" in report
    assert main(["report", str(run.path), "--out", str(run.path.parent / "run_report")]) == 0
    capsys.readouterr()
    page = (run.path.parent / "run_report" / "report.html").read_text()
    assert "<h2>Model inversion</h2>" in page
    assert "data:image/png;base64," in page.split("Model inversion", 1)[1]
    # A corrupt record is refused on reading, naming the file and the fix.
    path = run.inference_path("model_inversion")
    payload = json.loads(path.read_text())
    payload["p_value"] = 7
    path.write_text(json.dumps(payload))
    with pytest.raises(RunDirectoryError, match=r"model_inversion\.json is corrupt"):
        run.read_inference("model_inversion")


def test_bad_inference_settings_are_one_line(
    tiny_config: Callable[..., dict[str, Any]], write_config: Callable[..., Path],
    capsys: pytest.CaptureFixture[str],
) -> None:
    raw = tiny_config(experiment_name="bad", audit={"model_inversion": {"method": "gan"}})
    config = write_config(raw)
    assert main(["train", "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "model_inversion" in err and "method" in err


def test_bring_your_own_model_gets_both_audits() -> None:
    """``auditml.audit`` runs them on any model: here one that memorised its members' attribute
    (trained on each member and on its twin with attribute and label flipped)."""
    import numpy as np
    import torch
    from torch import nn

    import auditml
    from auditml.data import SensitiveAttribute

    rng = np.random.default_rng(0)

    def records(count: int) -> tuple[np.ndarray, np.ndarray]:
        x = rng.normal(size=(count, 4)).astype(np.float32)
        x[:, 0] = rng.choice([-1.0, 1.0], count)
        return x, rng.integers(0, 2, count)

    members, nonmembers, population = records(100), records(100), records(150)
    twins = members[0].copy()
    twins[:, 0] *= -1
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 128), nn.ReLU(), nn.Linear(128, 2))
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    x = torch.from_numpy(np.concatenate([members[0], twins]))
    y = torch.from_numpy(np.concatenate([members[1], 1 - members[1]]))
    for _ in range(400):
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()
    sex = SensitiveAttribute("s", (0,), np.array([[-1.0], [1.0]]), ("s0", "s1"))
    results = auditml.audit(
        model, members, nonmembers, attacks=["attribute_inference", "model_inversion"],
        population=population, sensitive=sex,
        settings={"model_inversion": {"steps": 20, "restarts": 1}},
    )
    attribute = results.inference["attribute_inference"]
    assert isinstance(attribute, AttributeInferenceRecord)
    assert attribute.beyond_imputation and attribute.member_specific
    assert attribute.best_attack == "confidence"
    assert isinstance(results.inference["model_inversion"], ModelInversionRecord)
    assert "attribute_inference of 's'" in results.summary()
    assert set(results.to_dict()) == {"attribute_inference", "model_inversion"}
    with pytest.raises(auditml.errors.ArgumentError, match="declares no sensitive attribute"):
        auditml.audit(model, members, nonmembers, attacks=["attribute_inference"])
