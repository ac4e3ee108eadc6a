"""The audit runner on a real (tiny) run: every attack, reference models trained once."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from rich.console import Console
from sklearn.metrics import roc_auc_score

from auditml.attacks import ATTACKS, attacks_of
from auditml.audit.runner import run_audit
from auditml.config import parse_config
from auditml.figures.audit_figures import draw_figure
from auditml.training import train

pytestmark = pytest.mark.slow


def test_every_attack_on_one_run(tiny_config: Callable[..., dict[str, Any]]) -> None:
    raw = tiny_config(
        data={"train_size": 60, "batch_size": 20},
        training={"epochs": 3},
        audit={"reference_models": 2, "population_size": 100, "workers": 1,
               "attacks": ["all"]},
    )
    config = parse_config(raw)
    train(config, console=Console(file=io.StringIO()))
    log = io.StringIO()
    report = run_audit(config.run_dir, console=Console(file=log, width=200), draw=draw_figure)
    assert [outcome.attack for outcome in report.outcomes] == attacks_of("classification")
    audit = config.run_dir / "audit"
    for outcome in report.outcomes:
        payload = json.loads((audit / f"{outcome.attack}.json").read_text())
        assert payload["counts"] == {"members": 60, "nonmembers": 60}
        assert len(payload["most_exposed"]) == 16
        assert set(payload["per_class"]) <= {str(label) for label in range(10)}
        saved = np.load(audit / payload["scores_file"])
        scores, is_member = saved["scores"], saved["is_member"]
        assert scores.shape == (120,) and np.isfinite(scores).all()
        assert is_member.sum() == 60 and is_member[:60].all()  # members first
        # The recorded AUC is the one scikit-learn computes from the saved scores.
        assert payload["metrics"]["auc"] == pytest.approx(roc_auc_score(is_member, scores))
        assert (audit / payload["exposed_gallery"]).is_file()
    assert report.roc_plot is not None and report.roc_plot.is_file()
    # Several attacks: the overlay is a figure of its own.
    overlay = report.roc_plot.read_bytes()
    assert all(overlay != (audit / f"{o.attack}_roc.png").read_bytes() for o in report.outcomes)
    saved_models = {
        path: path.stat().st_mtime_ns
        for path in (config.run_dir / "reference").rglob("model_*.safetensors")
    }
    # 2 reference + 2 shadow models were trained and saved.
    assert len(saved_models) == 4

    # A second audit reuses every saved model: none is written again.
    again = run_audit(config.run_dir, ["mia_threshold", *[
        name for name in attacks_of("classification") if ATTACKS.get(name).requires
    ]], console=Console(file=log, width=200))
    assert {
        path: path.stat().st_mtime_ns
        for path in (config.run_dir / "reference").rglob("model_*.safetensors")
    } == saved_models
    first = {o.attack: o.metrics.auc for o in report.outcomes}
    assert all(first[o.attack] == o.metrics.auc for o in again.outcomes)
    # A population larger than the data holds is said, not silently cut (issue 25).
    raw["audit"]["population_size"] = 100_000
    noted = io.StringIO()
    run_audit(config.run_dir, ["mia_rmia"], given_config=parse_config(raw),
              console=Console(file=noted, width=300))
    assert "note: audit.population_size is 100,000 but the data holds" in noted.getvalue()
    assert "note: audit.population_size" not in log.getvalue()  # 100 fit: nothing to say


def test_unknown_attack_fails_before_any_work(
    tiny_config: Callable[..., dict[str, Any]], tmp_path: Path
) -> None:
    from auditml.errors import UnknownNameError

    config = parse_config(tiny_config(training={"epochs": 1}))
    train(config, console=Console(file=io.StringIO()))
    with pytest.raises(UnknownNameError, match="unknown attack 'mia_nope'"):
        run_audit(config.run_dir, ["mia_threshold", "mia_nope"])
    assert not (config.run_dir / "audit").exists()


def test_a_one_attack_overlay_is_the_attacks_own_figure(
    tiny_config: Callable[..., dict[str, Any]],
) -> None:
    config = parse_config(tiny_config(data={"train_size": 60, "batch_size": 20}))
    train(config, console=Console(file=io.StringIO()))
    # Without a draw (benchmarks, library callers): the records alone, naming no figure.
    plain = run_audit(config.run_dir, ["mia_threshold"], console=Console(file=io.StringIO()))
    audit = config.run_dir / "audit"
    assert plain.roc_plot is None and not list(audit.glob("*.png"))
    undrawn = json.loads((audit / "mia_threshold.json").read_text())
    assert undrawn["roc_plot"] is None and undrawn["exposed_gallery"] is None
    report = run_audit(config.run_dir, ["mia_threshold"], console=Console(file=io.StringIO()),
                       draw=draw_figure)
    assert report.roc_plot is not None
    own = audit / "mia_threshold_roc.png"
    assert report.roc_plot.read_bytes() == own.read_bytes()  # drawn once, written twice
    assert report.roc_plot.read_bytes().startswith(b"\x89PNG")
    drawn = json.loads((audit / "mia_threshold.json").read_text())
    assert drawn["roc_plot"] == own.name
    assert (audit / drawn["exposed_gallery"]).read_bytes().startswith(b"\x89PNG")
    # The figures are all that differs: the same numbers either way.
    for record in (undrawn, drawn):
        for key in ("roc_plot", "exposed_gallery", "compute"):
            record.pop(key)
    assert undrawn == drawn


def _forget_target_outputs(run_dir: Path) -> None:
    """Make ``run_dir`` look like a run of an older version: no target_outputs.npz."""
    from auditml.run_directory import RunDirectory

    (run_dir / "target_outputs.npz").unlink()
    RunDirectory(run_dir).write_manifest()


def test_an_outputs_only_audit_reads_the_saved_outputs_and_never_loads_the_model(
    tiny_config: Callable[..., dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    from auditml.audit import runner

    config = parse_config(tiny_config(data={"train_size": 60, "batch_size": 20}))
    train(config, console=Console(file=io.StringIO()))
    with np.load(config.run_dir / "target_outputs.npz", allow_pickle=False) as data:
        saved = data["logits"]
    assert saved.shape == (120, 10) and saved.dtype == np.float64
    quiet = Console(file=io.StringIO())
    metrics = ["mia_threshold"]
    settings = {"mia_threshold": {"metric": "modified_entropy"}}

    def no_model(*args: Any) -> None:
        raise AssertionError("the model was loaded")

    with monkeypatch.context() as patch:
        patch.setattr(runner, "_load_target", no_model)
        fast = run_audit(config.run_dir, metrics, settings, console=quiet)
        with pytest.raises(AssertionError, match="the model was loaded"):
            run_audit(config.run_dir, ["mia_threshold", "mia_label_only"], console=quiet)
    fast_scores = np.load(config.run_dir / "audit" / "mia_threshold_scores.npz")["scores"]

    # The same run without its saved outputs (as an older version wrote it): the model is
    # loaded and run, and every score is the same, bit for bit.
    _forget_target_outputs(config.run_dir)
    slow = run_audit(config.run_dir, metrics, settings, console=quiet)
    slow_scores = np.load(config.run_dir / "audit" / "mia_threshold_scores.npz")["scores"]
    assert np.array_equal(fast_scores, slow_scores)
    assert fast.outcomes[0].metrics == slow.outcomes[0].metrics
    assert fast.target is not None and fast.target.model is None
    assert slow.target is not None and slow.target.model is not None


def test_saved_outputs_that_do_not_fit_the_run_are_refused(
    tiny_config: Callable[..., dict[str, Any]],
) -> None:
    from auditml.errors import RunDirectoryError
    from auditml.run_directory import RunDirectory

    config = parse_config(tiny_config(data={"train_size": 60, "batch_size": 20}))
    train(config, console=Console(file=io.StringIO()))
    path = config.run_dir / "target_outputs.npz"
    with np.load(path) as data:
        good = data["logits"]
    np.savez(path, logits=good + 1.0)  # changed after training: the manifest says so
    with pytest.raises(RunDirectoryError, match="changed after training"):
        run_audit(config.run_dir, ["mia_threshold"])
    diverged = good.copy()
    diverged[3, 0] = np.inf  # was "`scores` must be finite, got 1 NaN values", no file named
    for bad, why in [(good[:-1], "shape"), (good.astype(np.float32), "float32"),
                     (np.array([{"x": 1}], dtype=object), "unreadable"),
                     (diverged, r"target_outputs\.npz .*NaN or infinite logits")]:
        np.savez(path, logits=bad)  # an object array is pickled
        RunDirectory(config.run_dir).write_manifest()  # even fingerprinted, it must fit
        with pytest.raises(RunDirectoryError, match=why):
            run_audit(config.run_dir, ["mia_threshold"])
    path.write_bytes(b"")  # an empty file with a matching manifest was an EOFError traceback
    RunDirectory(config.run_dir).write_manifest()
    with pytest.raises(RunDirectoryError, match=r"unreadable \(No data left in file\)"):
        run_audit(config.run_dir, ["mia_threshold"])
    assert not (config.run_dir / "audit" / "mia_threshold.json").exists()
