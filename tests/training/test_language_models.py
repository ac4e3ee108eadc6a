"""Language models through the command line: train (with and without DP-SGD, full and LoRA,
from a base run), audit with the text attacks and secret canaries, report and compare; and every
mismatch between a model's task and what is asked of it ends in one line."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import yaml

from auditml.training import trainer
from cli_helpers import one_error_line, run_cli

pytestmark = pytest.mark.slow

SENTENCE = " was the code word written in the customer notes of that day."
TEXT_ATTACKS = ["mia_text_loss", "mia_text_zlib", "mia_text_min_k", "mia_text_min_k_pp"]


def _texts(path: Path, count: int, seed: int) -> Path:
    """``count`` lines of 12 random letters and one fixed sentence (room for the canaries):
    nothing to learn but the letters of each line."""
    rng = np.random.default_rng(seed)
    letters = rng.integers(ord("a"), ord("z") + 1, size=(count, 12), dtype=np.uint8)
    path.write_text("".join(f"{row.tobytes().decode()}{SENTENCE}\n" for row in letters))
    return path


def _retrain_differently(config: Path) -> None:
    """``config`` with another seed, so that training it again gives other weights."""
    raw = yaml.safe_load(config.read_text())
    raw["seed"] = raw.get("seed", 0) + 1
    config.write_text(yaml.safe_dump(raw))


def _lm_config(tmp_path: Path, name: str, **overrides: Any) -> dict[str, Any]:
    config: dict[str, Any] = {
        "experiment_name": name,
        "output_dir": str(tmp_path / "results"),
        "data": {"dataset": "text", "path": str(_texts(tmp_path / "notes.txt", 300, 0)),
                 "train_size": 40, "batch_size": 20},
        "training": {"epochs": 25, "learning_rate": 0.002, "optimizer": "adamw",
                     "device": "cpu"},
        "audit": {"attacks": [*TEXT_ATTACKS, "secret_canaries"]},
    }
    for section, values in overrides.items():
        config[section] = {**config.get(section, {}), **values}
    return config


def test_a_language_model_trains_audits_reports_and_compares(
    capsys: pytest.CaptureFixture[str], write_config: Callable[..., Path], tmp_path: Path,
) -> None:
    config = write_config(_lm_config(
        tmp_path, "lm",
        training={"canaries": {"count": 24, "kind": "secret", "secret_length": 4,
                               "repeats": 10}},
    ), "lm")
    code, out, err = run_cli(capsys, "train", "--config", str(config))
    assert code == 0, err
    run = tmp_path / "results" / "lm"
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["task"] == "causal_lm" and metrics["arch"] == "gpt2_tiny"
    # Fitted hard to 40 texts of random letters: members far likelier than non-members.
    assert metrics["train_perplexity"] < metrics["nonmember_perplexity"] / 2
    assert metrics["val_perplexity"] > metrics["train_perplexity"]
    assert not (run / "target_outputs.npz").exists()  # (N, L, V) logits are not kept

    code, out, err = run_cli(capsys, "audit", "--config", str(config))
    assert code == 0, err
    for attack in TEXT_ATTACKS:
        record = json.loads((run / "audit" / f"{attack}.json").read_text())
        assert record["metrics"]["auc"] > 0.8, (attack, record["metrics"]["auc"])
    secrets = json.loads((run / "audit" / "canaries" / "secret_canaries.json").read_text())
    assert secrets["canaries"] == 24 and secrets["threat_model"] == "black_box"
    groups = secrets["secrets"]
    # Secrets trained on 10 times stand out among random candidates; the others do not.
    assert groups["included"]["mean_exposure"] > groups["excluded"]["mean_exposure"] + 2
    assert groups["excluded"]["mean_exposure"] < 4
    assert groups["exposure_cap"] == pytest.approx(np.log2(256))
    assert "mean exposure" in out

    code, out, err = run_cli(capsys, "report", str(run), "--out", str(tmp_path / "page"))
    assert code == 0, err
    page = (tmp_path / "page" / "report.html").read_text()
    assert "Mean exposure" in page and "mia_text_min_k_pp" in page
    assert f"{metrics['val_perplexity']:.2f}" in page and "next-token accuracy" in page
    code, out, err = run_cli(capsys, "compare", str(run), "--out", str(tmp_path / "cmp"))
    assert code == 0, err
    # The comparison shows the validation perplexity (its accuracy is of next tokens).
    row = json.loads((tmp_path / "cmp" / "comparison.json").read_text())["rows"][0]
    assert row["val_perplexity"] == pytest.approx(metrics["val_perplexity"])
    assert "Perplexity" in (tmp_path / "cmp" / "report.md").read_text()
    assert f"{metrics['val_perplexity']:.2f}" in (tmp_path / "cmp" / "report.md").read_text()


def test_dp_lora_fine_tuning_from_a_base_run_and_the_reference_attack(
    capsys: pytest.CaptureFixture[str], write_config: Callable[..., Path], tmp_path: Path,
) -> None:
    public = _texts(tmp_path / "public.txt", 300, 1)
    base = write_config(_lm_config(tmp_path, "base", data={"path": str(public)},
                                   training={"epochs": 3}), "base")
    code, _, err = run_cli(capsys, "train", "--config", str(base))
    assert code == 0, err
    tuned = write_config(_lm_config(
        tmp_path, "tuned",
        model={"base": str(tmp_path / "results" / "base"), "lora_rank": 4},
        training={"epochs": 2, "dp": {"enabled": True, "epsilon": 8.0, "delta": 1e-3}},
        audit={"attacks": ["mia_text_reference", "mia_text_loss", "mia_text_lira"],
               "reference_models": 2},
    ), "tuned")
    code, out, err = run_cli(capsys, "train", "--config", str(tuned))
    assert code == 0, err
    assert "Per-example clipping: hooks" in out and "Achieved DP guarantee: ε=" in out
    metrics = json.loads((tmp_path / "results" / "tuned" / "metrics.json").read_text())
    assert metrics["grad_sample_mode"] == "hooks" and metrics["base_training_id"]
    code, out, err = run_cli(capsys, "audit", "--config", str(tuned))
    assert code == 0, err
    assert (tmp_path / "results" / "tuned" / "audit" / "mia_text_reference.json").exists()
    # The reference models are the target's recipe: fine-tuned, with DP-SGD and LoRA, from
    # the very training of the base the target started from.
    manifest = json.loads((tmp_path / "results" / "tuned" / "reference" / "audit" /
                           "manifest.json").read_text())
    assert manifest["done"] == [0, 1]
    assert manifest["fingerprint"]["base_training_id"] == metrics["base_training_id"]
    assert manifest["fingerprint"]["recipe"]["model"]["lora_rank"] == 4
    lira = json.loads((tmp_path / "results" / "tuned" / "audit" / "mia_text_lira.json")
                      .read_text())
    assert lira["fitted"]["variance"] == "fixed"

    # Retraining the base after fine-tuning (another seed: a training id names the files, so
    # a run repeated to the millisecond would be the same training): the reference attack
    # would compare with another model than the one the run started from, so it is refused.
    _retrain_differently(base)
    code, _, err = run_cli(capsys, "train", "--config", str(base))
    assert code == 0, err
    code, _, err = run_cli(capsys, "audit", "--config", str(tuned))
    assert code == 2
    assert "retrained after" in one_error_line(err)


@pytest.mark.parametrize("lora_rank", [None, 4])
def test_ghost_clipping_trains_the_language_model_hooks_train(
    capsys: pytest.CaptureFixture[str], write_config: Callable[..., Path], tmp_path: Path,
    lora_rank: int | None,
) -> None:
    """The same per-example clipping and noise: ghost clipping's norms (its criterion's second
    backward pass, Opacus issue 732's pitfall when the loss bypasses it) give the weights the
    hooks give."""
    from auditml.run_directory import RunDirectory

    weights = {}
    for mode in ("hooks", "ghost"):
        config = write_config(_lm_config(
            tmp_path, mode, model={"lora_rank": lora_rank},
            training={"epochs": 2, "dp": {"enabled": True, "epsilon": 8.0, "delta": 1e-3,
                                          "grad_sample_mode": mode}},
        ), mode)
        code, out, err = run_cli(capsys, "train", "--config", str(config))
        assert code == 0, err
        assert f"Per-example clipping: {mode}" in out
        weights[mode] = RunDirectory(tmp_path / "results" / mode).read_model_state()
    assert weights["hooks"].keys() == weights["ghost"].keys()
    for name, hooks in weights["hooks"].items():
        torch.testing.assert_close(weights["ghost"][name], hooks, atol=1e-5, rtol=1e-4)


def test_a_fine_tuned_run_records_the_training_of_the_base_it_loaded(
    capsys: pytest.CaptureFixture[str], write_config: Callable[..., Path], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The base retrained while a run fine-tunes from it: the run records the training whose
    weights it started from, so its audits refuse the base that replaced it."""
    from auditml.run_directory import RunDirectory

    base = write_config(_lm_config(tmp_path, "base", training={"epochs": 1}), "base")
    assert run_cli(capsys, "train", "--config", str(base))[0] == 0
    first = RunDirectory(tmp_path / "results" / "base").require_trained().training_id
    fit_model = trainer.fit_model

    def retrained_meanwhile(*args: Any, **kwargs: Any) -> Any:
        fit = fit_model(*args, **kwargs)
        monkeypatch.setattr(trainer, "fit_model", fit_model)  # the base trains as usual
        _retrain_differently(base)
        assert run_cli(capsys, "train", "--config", str(base))[0] == 0
        return fit

    monkeypatch.setattr(trainer, "fit_model", retrained_meanwhile)
    tuned = write_config(_lm_config(
        tmp_path, "tuned", model={"base": str(tmp_path / "results" / "base")},
        training={"epochs": 1}, audit={"attacks": ["mia_text_reference"]},
    ), "tuned")
    assert run_cli(capsys, "train", "--config", str(tuned))[0] == 0
    second = RunDirectory(tmp_path / "results" / "base").require_trained().training_id
    metrics = json.loads((tmp_path / "results" / "tuned" / "metrics.json").read_text())
    assert second != first and metrics["base_training_id"] == first
    code, _, err = run_cli(capsys, "audit", "--config", str(tuned))
    assert code == 2 and "retrained after" in one_error_line(err)


def test_the_update_check_fires_when_the_saved_model_is_not_the_trained_one(
    capsys: pytest.CaptureFixture[str], write_config: Callable[..., Path], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The silent DP-LoRA failure of Opacus issue 820, planted: DP-SGD trains a copy of the
    model (with its own optimiser), so the model that training evaluates and saves never moves."""
    import copy

    original = trainer.make_private

    def on_a_copy(model: Any, optimizer: Any, loader: Any, **settings: Any) -> Any:
        twin = copy.deepcopy(model)
        twin_optimizer = torch.optim.SGD(
            [p for p in twin.parameters() if p.requires_grad], lr=optimizer.defaults["lr"]
        )
        return original(twin, twin_optimizer, loader, **settings)

    config = write_config(_lm_config(
        tmp_path, "broken", model={"lora_rank": 4},
        training={"epochs": 1, "dp": {"enabled": True, "epsilon": 8.0, "delta": 1e-3}},
    ), "broken")
    monkeypatch.setattr(trainer, "make_private", on_a_copy)
    code, _, err = run_cli(capsys, "train", "--config", str(config))
    assert code == 2
    line = one_error_line(err)
    assert "none of the model's" in line and "820" in line
    assert not (tmp_path / "results" / "broken").exists()
    # The same set-up, correctly wired, trains.
    monkeypatch.setattr(trainer, "make_private", original)
    code, _, err = run_cli(capsys, "train", "--config", str(config))
    assert code == 0, err


@pytest.mark.parametrize(("overrides", "expected"), [
    ({"training": {"canaries": {"count": 10, "kind": "mislabeled"}}},
     "kind: mislabeled needs labelled examples"),
    ({"training": {"canaries": {"count": 10, "kind": "digits_not_a_kind"}}}, "canaries.kind"),
    ({"training": {"canaries": {"count": 10, "repeats": 3}}}, "applies to secret canaries"),
    ({"training": {"dp": {"enabled": True, "epsilon": 8.0, "grad_sample_mode": "fast"}}},
     "cannot train a language model"),
])
def test_what_a_language_model_cannot_take_is_one_line(
    capsys: pytest.CaptureFixture[str], write_config: Callable[..., Path], tmp_path: Path,
    overrides: dict[str, Any], expected: str,
) -> None:
    config = write_config(_lm_config(tmp_path, "bad", **overrides), "bad")
    code, _, err = run_cli(capsys, "train", "--config", str(config))
    assert code == 2
    assert expected in one_error_line(err)
    assert not (tmp_path / "results" / "bad").exists()


def test_secret_canaries_and_lora_need_text_and_attacks_need_their_task(
    capsys: pytest.CaptureFixture[str], tiny_config: Callable[..., dict[str, Any]],
    write_config: Callable[..., Path], tmp_path: Path,
) -> None:
    for overrides, expected in (
        ({"training": {"canaries": {"count": 10, "kind": "secret"}}}, "needs text data"),
        ({"model": {"lora_rank": 4}}, "model.lora_rank applies to language models"),
    ):
        config = write_config(tiny_config(**overrides), "digits_bad")
        code, _, err = run_cli(capsys, "train", "--config", str(config))
        assert code == 2
        assert expected in one_error_line(err)
    digits = write_config(tiny_config(experiment_name="digits"), "digits")
    assert run_cli(capsys, "train", "--config", str(digits))[0] == 0
    code, _, err = run_cli(capsys, "audit", "--config", str(digits), "--attack", "mia_text_loss")
    assert code == 2
    assert "mia_text_loss cannot attack a classifier" in one_error_line(err)

    text = write_config(_lm_config(tmp_path, "text", training={"epochs": 1},
                                   audit={"reference_models": 2}), "text")
    assert run_cli(capsys, "train", "--config", str(text))[0] == 0
    code, _, err = run_cli(capsys, "audit", "--config", str(text), "--attack", "mia_threshold")
    assert code == 2
    assert "mia_threshold cannot attack a language model" in one_error_line(err)
    # `all` means the attacks that can read the run's model.
    code, out, err = run_cli(capsys, "audit", "--config", str(text), "--attack", "all")
    assert code == 0, err
    assert "mia_text_loss" in out and "mia_threshold" not in out
    # ... the run trains reference language models for LiRA and RMIA; it has no base.
    assert "mia_text_lira" in out and "mia_text_rmia" in out
    assert "mia_text_reference" not in out


def test_gradient_canaries_audit_a_language_models_dp_sgd(
    capsys: pytest.CaptureFixture[str], write_config: Callable[..., Path], tmp_path: Path,
) -> None:
    """The white-box canary audits work on a language model's parameters: DP-SGD (hooks) adds
    the canaries to its clipped sums, the loop's assumptions are checked, and a correct run is
    consistent with its claim."""
    config = write_config(_lm_config(
        tmp_path, "gradient", training={
            "epochs": 2, "dp": {"enabled": True, "epsilon": 8.0, "delta": 1e-3},
            "canaries": {"count": 50, "kind": "gradient"},
        },
        audit={"attacks": ["dp_audit_all_iterates", "dp_audit_last_iterate"]},
    ), "gradient")
    assert run_cli(capsys, "train", "--config", str(config))[0] == 0
    code, _, err = run_cli(capsys, "audit", "--config", str(config))
    assert code == 0, err
    canaries = tmp_path / "results" / "gradient" / "audit" / "canaries"
    for name in ("dp_audit_all_iterates", "dp_audit_last_iterate"):
        record = json.loads((canaries / f"{name}.json").read_text())
        assert record["violation"] is False and record["canaries"] == 50
        assert not [check for check in record["assumptions"] if check["status"] == "failed"]


def test_a_sweep_of_a_language_model_audits_each_run_with_min_k_plus_plus(
    capsys: pytest.CaptureFixture[str], write_config: Callable[..., Path], tmp_path: Path,
) -> None:
    config = write_config(_lm_config(tmp_path, "sweep", training={"epochs": 2},
                                     audit={"attacks": []}), "sweep")
    raw = yaml.safe_load(config.read_text())
    del raw["audit"]  # no attack named: the sweep picks a language model's default
    config.write_text(yaml.safe_dump(raw))
    code, out, err = run_cli(capsys, "sweep", "--config", str(config), "--epsilons", "8", "inf",
                             "--out", str(tmp_path / "sweep"))
    assert code == 0, err
    assert "auditing sweep_eps8: mia_text_min_k_pp" in out
    assert "auditing sweep_nodp: mia_text_min_k_pp" in out
    # Its table shows each run's validation perplexity beside the next-token accuracy.
    record = json.loads((tmp_path / "sweep" / "sweep.json").read_text())
    perplexities = [row["val_perplexity"] for row in record["rows"]]
    assert all(value > 1 for value in perplexities)
    header = next(line for line in (tmp_path / "sweep" / "sweep.md").read_text().splitlines()
                  if line.startswith("| ε target"))
    assert "| Val Acc | Perplexity |" in header
    assert f"| {perplexities[0]:.2f} |" in (tmp_path / "sweep" / "sweep.md").read_text()
