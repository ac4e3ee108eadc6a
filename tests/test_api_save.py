"""Python-API audits saved as run directories: ``auditml report`` and ``auditml compare`` read
them beside CLI runs; reference models kept in ``reference_dir`` are reused; a save never
replaces what is not its own."""

from __future__ import annotations

import io
import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import yaml
from opacus import PrivacyEngine
from rich.console import Console
from torch import nn

import auditml.api
from auditml.audit.own_loop import CanaryAudit
from auditml.cli import main
from auditml.data import ArrayDataset
from auditml.data.digits import load_digits
from auditml.errors import RunDirectoryError
from auditml.figure_data import InversionGallery
from auditml.run_directory import RunDirectory


def _net() -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))


def _train(train_set: ArrayDataset, seed: int) -> nn.Module:
    torch.manual_seed(seed)
    model = _net()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    x, y = torch.as_tensor(train_set.x), torch.as_tensor(train_set.y)
    for _ in range(40):
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()
    return model


@pytest.fixture(scope="module")
def digits() -> ArrayDataset:
    pool = load_digits(Path("."), False).pool
    return ArrayDataset(pool.x[:200].reshape(200, 1, 8, 8).astype(np.float32), pool.y[:200])


@pytest.fixture(scope="module")
def cli_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("cli")
    config = root / "config.yaml"
    config.write_text(yaml.safe_dump({
        "experiment_name": "cli", "output_dir": str(root / "results"),
        "data": {"dataset": "digits", "train_size": 100, "batch_size": 50},
        "training": {"epochs": 2, "learning_rate": 0.005, "device": "cpu"},
    }), encoding="utf-8")
    assert main(["train", "--config", str(config)]) == 0
    assert main(["audit", "--config", str(config), "--attack", "mia_threshold"]) == 0
    return root / "results" / "cli"


def _audit(digits: ArrayDataset, **arguments: Any) -> auditml.api.AuditResults:
    members, nonmembers = digits.subset(np.arange(100)), digits.subset(np.arange(100, 200))
    model = _train(members, 0)
    return auditml.api.audit(model, members, nonmembers, progress=False, **arguments)


def test_a_saved_audit_is_reported_and_compared_beside_a_cli_run(
    digits: ArrayDataset, cli_run: Path, tmp_path: Path
) -> None:
    results = _audit(digits, attacks=["mia_threshold", "mia_lira"], reference_factory=_train,
                     reference_models=2)
    saved = results.save(tmp_path / "my_model")
    assert main(["report", str(saved), "--out", str(tmp_path / "report")]) == 0
    report = json.loads((tmp_path / "report" / "run_report.json").read_text(encoding="utf-8"))
    assert report["run_name"] == "my_model"
    # What the API does not know is recorded as unknown, and the report says so.
    assert report["dp_enabled"] is None and report["val_acc"] is None
    assert report["headline"].startswith("No DP claim given")
    assert [a["attack"] for a in report["attacks"]] == ["mia_lira", "mia_threshold"]
    assert report["attacks"][1]["auc"] == results.attacks["mia_threshold"].metrics.auc
    html = (tmp_path / "report" / "report.html").read_text(encoding="utf-8")
    assert "no DP claim given" in html and "no validation set" in html

    assert main(["compare", str(cli_run), str(saved), "--out", str(tmp_path / "cmp")]) == 0
    rows = json.loads((tmp_path / "cmp" / "comparison.json").read_text(encoding="utf-8"))["rows"]
    assert [row["run_name"] for row in rows] == ["cli", "my_model"]
    assert rows[1]["auc"] == results.attacks["mia_threshold"].metrics.auc
    assert rows[1]["dp_enabled"] is None and rows[1]["val_acc"] is None
    assert rows[0]["dp_enabled"] is False and rows[0]["val_acc"] is not None
    model = RunDirectory(saved).read_audited_model()
    assert model.train_acc == 1.0 and model.members == 100 and model.arch == "Sequential"


def test_a_claimed_epsilon_is_checked_and_a_saved_audit_cannot_be_reaudited(
    digits: ArrayDataset, tmp_path: Path
) -> None:
    saved = _audit(digits, claimed_epsilon=0.01, delta=1e-5).save(tmp_path / "claimed")
    assert main(["report", str(saved), "--out", str(tmp_path / "report")]) == 0
    report = json.loads((tmp_path / "report" / "run_report.json").read_text(encoding="utf-8"))
    assert report["dp_enabled"] is True and report["epsilon"] == 0.01
    assert report["verdict"] == "violation"  # a memorising model is no 0.01-DP
    # The ε is the caller's, not an accountant's auditml ran: the page and compare say so.
    html = (tmp_path / "report" / "report.html").read_text(encoding="utf-8")
    assert "claimed by the caller of auditml.audit()" in html
    assert "per the privacy accountant" not in html
    assert main(["compare", str(saved), "--out", str(tmp_path / "cmp")]) == 0
    rows = json.loads((tmp_path / "cmp" / "comparison.json").read_text(encoding="utf-8"))["rows"]
    assert rows[0]["label"] == "ε=0.01 claimed in Python"
    with pytest.raises(RunDirectoryError, match="Python-API audit saved"):
        RunDirectory(saved).require_trained()
    (saved / "model.json").write_text(
        (saved / "model.json").read_text().replace('"epsilon": 0.01', '"epsilon": 100.0'))
    assert main(["report", str(saved), "--out", str(tmp_path / "report2")]) == 2


def test_a_saved_audit_says_how_to_add_an_attack_not_to_run_auditml_audit(
    digits: ArrayDataset, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A save's errors said to run `auditml audit --config <save>/config.yaml --attack ...`,
    which cannot work: a save has no config.yaml and `auditml audit` refuses it."""
    saved = _audit(digits).save(tmp_path / "mine")
    assert main(["compare", str(saved), "--out", str(tmp_path / "cmp"),
                 "--attack", "mia_lira"]) == 2
    error = capsys.readouterr().err
    assert "--config" not in error
    assert (f"run {saved} has no mia_lira audit: {saved} is a Python-API audit saved with "
            ".save(), which `auditml audit` cannot audit (it has no config.yaml): audit the "
            "model in Python again with auditml.audit(..., attacks=['mia_lira', "
            "'mia_threshold']) and save the results (results.save(path)); or compare or "
            "report only the audits it holds (mia_threshold)") in " ".join(error.split())
    # A scores file that no longer matches its record; and then no usable audit at all.
    RunDirectory(saved).scores_path("mia_threshold").write_bytes(b"changed")
    with pytest.raises(RunDirectoryError) as raised:
        RunDirectory(saved).read_scores("mia_threshold")
    assert str(raised.value).endswith(
        "audit the model in Python again with auditml.audit(..., attacks=['mia_threshold']) "
        "and save the results (results.save(path))")
    assert main(["report", str(saved), "--out", str(tmp_path / "report")]) == 2
    error = " ".join(capsys.readouterr().err.split())
    assert "--config" not in error and error.endswith(
        "audit the model in Python again with auditml.audit(..., attacks=['mia_threshold']) "
        "and save the results (results.save(path))")


def test_save_replaces_only_its_own_earlier_save(
    digits: ArrayDataset, cli_run: Path, tmp_path: Path
) -> None:
    results = _audit(digits)
    users = tmp_path / "users"
    users.mkdir()
    (users / "notes.txt").write_text("mine")
    with pytest.raises(RunDirectoryError, match="not an earlier save"):
        results.save(users)
    assert (users / "notes.txt").read_text() == "mine"
    with pytest.raises(RunDirectoryError, match="not an earlier save"):
        results.save(cli_run)
    assert RunDirectory(cli_run).require_trained()
    saved = results.save(tmp_path / "again")
    results.save(saved)  # over its own earlier save: fine
    (saved / "audit" / "mine.csv").write_text("1,2")
    with pytest.raises(RunDirectoryError, match=r"audit/mine\.csv"):
        results.save(saved)
    assert (saved / "audit" / "mine.csv").read_text() == "1,2"
    (saved / "audit" / "mine.csv").unlink()
    (saved / "audit" / "plots").mkdir()  # a folder of the user's: any was taken for auditml's
    (saved / "audit" / "plots" / "roc.png").write_bytes(b"mine")
    with pytest.raises(RunDirectoryError, match=r"audit/plots/"):
        results.save(saved)
    assert (saved / "audit" / "plots" / "roc.png").read_bytes() == b"mine"
    assert not list(tmp_path.glob(".*staging"))


class _Counting:
    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, train_set: ArrayDataset, seed: int) -> nn.Module:
        self.calls += 1
        return _train(train_set, seed)


def test_reference_models_kept_in_reference_dir_are_reused(
    digits: ArrayDataset, tmp_path: Path
) -> None:
    factory = _Counting()
    first = _audit(digits, attacks=["mia_lira"], reference_factory=factory, reference_models=2,
                   reference_dir=tmp_path / "refs")
    assert factory.calls == 2
    assert sorted(path.name for path in (tmp_path / "refs" / "audit").iterdir()) == [
        "keep.npy", "manifest.json", "model_000.safetensors", "model_001.safetensors"]
    again = _audit(digits, attacks=["mia_lira"],
                   settings={"mia_lira": {"mode": "offline"}}, reference_factory=factory,
                   reference_models=2, reference_dir=tmp_path / "refs")
    assert factory.calls == 2  # nothing trained the second time
    online = _audit(digits, attacks=["mia_lira"], reference_factory=factory,
                    reference_models=2, reference_dir=tmp_path / "refs")
    np.testing.assert_array_equal(online.attacks["mia_lira"].scores,
                                  first.attacks["mia_lira"].scores)
    assert again.attacks["mia_lira"].payload["settings"]["mode"] == "offline"
    _audit(digits, attacks=["mia_lira"], reference_factory=factory, reference_models=4,
           reference_dir=tmp_path / "refs")
    assert factory.calls == 4  # only the two more models asked for
    _audit(digits, attacks=["mia_lira"], reference_factory=factory, reference_models=2,
           reference_dir=tmp_path / "refs", reference_key="trained another way")
    assert factory.calls == 6  # another key: another set


def test_reference_training_shows_progress_unless_silenced(
    digits: ArrayDataset, capsys: pytest.CaptureFixture[str]
) -> None:
    members, nonmembers = digits.subset(np.arange(100)), digits.subset(np.arange(100, 200))
    model = _train(members, 0)
    shown = io.StringIO()
    auditml.api.audit(model, members, nonmembers, attacks=["mia_lira"], reference_factory=_train,
                      reference_models=2, console=Console(file=shown))
    assert "reference models: 2/2 trained" in shown.getvalue()
    capsys.readouterr()
    auditml.api.audit(model, members, nonmembers, attacks=["mia_lira"], reference_factory=_train,
                      reference_models=2, progress=False)
    captured = capsys.readouterr()
    assert "trained" not in captured.err + captured.out


def test_a_saved_canary_audit_is_reported_and_compared_as_a_dp_audit(
    cli_run: Path, tmp_path: Path
) -> None:
    torch.manual_seed(0)
    data = torch.utils.data.TensorDataset(torch.randn(200, 20), torch.randint(0, 4, (200,)))
    plain = nn.Sequential(nn.Linear(20, 64), nn.ReLU(), nn.Linear(64, 4))
    engine = PrivacyEngine()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model, optimizer, loader = engine.make_private(
            module=plain, optimizer=torch.optim.SGD(plain.parameters(), lr=0.1),
            data_loader=torch.utils.data.DataLoader(data, batch_size=20),
            noise_multiplier=1.0, max_grad_norm=1.0,
        )
        audit = CanaryAudit(optimizer, count=200, seed=0, model=model, data_loader=loader,
                            privacy_engine=engine)
    for _ in range(3):
        for xb, yb in loader:
            optimizer.zero_grad()
            nn.functional.cross_entropy(model(xb), yb).backward()
            optimizer.step()
    result = audit.result(engine, delta=1e-5)
    saved = result.save(tmp_path / "own_loop")
    assert sorted(path.name for path in saved.iterdir()) == [
        "audit", "gradient_canaries.npz", "manifest.json", "model.json"]
    assert main(["report", str(saved), "--out", str(tmp_path / "report")]) == 0
    report = json.loads((tmp_path / "report" / "run_report.json").read_text(encoding="utf-8"))
    assert report["dp_enabled"] is True
    assert report["epsilon"] == pytest.approx(result.claimed_epsilon)
    assert [b["epsilon"] for b in report["epsilon_lower_bounds"]] == [
        pytest.approx(result.epsilon_lower_bound)]
    # The ε is the loop's own accountant's, not a caller's word.
    html = (tmp_path / "report" / "report.html").read_text(encoding="utf-8")
    assert "per the Opacus accountant of the audited loop" in html
    assert "claimed by the caller" not in html
    assert main(["compare", str(cli_run), "--out", str(tmp_path / "cmp"),
                 "--dp-audit", str(saved)]) == 0
    audits = json.loads((tmp_path / "cmp" / "comparison.json").read_text())["dp_audits"]
    assert len(audits) == 1 and audits[0]["canaries"] == 200
    assert audits[0]["epsilon_lower_bound"] == pytest.approx(result.epsilon_lower_bound)
    assert audits[0]["claimed_epsilon"] == pytest.approx(result.claimed_epsilon)
    assert audits[0]["violation"] == result.violation
    assert "1 run, 200 canaries" in (tmp_path / "cmp" / "report.md").read_text(encoding="utf-8")


def test_model_inversion_returns_its_gallery_as_data_and_save_draws_it(
    digits: ArrayDataset, tmp_path: Path
) -> None:
    # The audit computes the gallery's images; saving draws them (the audit never draws).
    results = _audit(digits, attacks=["model_inversion"], population=digits,
                     settings={"model_inversion": {"steps": 10, "restarts": 1}})
    gallery = results.figures["model_inversion"]["gallery"]
    assert isinstance(gallery, InversionGallery)
    assert gallery.reconstructions.shape == gallery.nearest_members.shape == (10, 1, 8, 8)
    assert list(gallery.class_names) == [str(label) for label in range(10)]
    saved = RunDirectory(results.save(tmp_path / "inverted"))
    assert saved.inference_figure_path("model_inversion", "gallery").read_bytes().startswith(
        b"\x89PNG")
    assert saved.inference_names() == ["model_inversion"]
