"""The many-runs audit (audit-dp): K runs of a DP recipe with one gradient canary each."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import auditml.training.dp_sgd as dp_sgd
from auditml.audit.many_runs import many_runs_audit
from auditml.cli import main
from auditml.config import parse_config
from auditml.errors import ConfigError

pytestmark = pytest.mark.slow


def _config(tmp_path: Path) -> dict[str, Any]:
    # σ given (no calibration per run), RDP (cheap to evaluate) and a tiny MLP: fast runs.
    return {
        "experiment_name": "recipe", "output_dir": str(tmp_path),
        "data": {"dataset": "digits", "train_size": 60, "batch_size": 30},
        "model": {"arch": "mlp"},
        "training": {"epochs": 3, "learning_rate": 0.01, "device": "cpu",
                     # fast: the planted bug patches the fast path, which auto may not pick
                     "dp": {"enabled": True, "noise_multiplier": 2.0, "delta": 1e-3,
                            "accountant": "rdp", "grad_sample_mode": "fast"}},
    }


def test_a_correct_recipe_is_consistent_and_a_noiseless_one_is_caught(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = parse_config(_config(tmp_path))
    correct = many_runs_audit(config, 40)
    assert correct.violation is False and correct.runs == 40
    assert 8 <= correct.included <= 32 and len(correct.scores) == len(correct.coins) == 40
    assert correct.epsilon_lower_bound.epsilon <= correct.claimed_epsilon

    original = dp_sgd.FastDPSGD.__init__

    def less_noise(self: dp_sgd.FastDPSGD, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        self.noise_multiplier *= 0.1  # the bug: the accountant still assumes σ = 2

    monkeypatch.setattr(dp_sgd.FastDPSGD, "__init__", less_noise)
    # 100 runs: the claim is tested on the evaluation half (about 25 + 25 runs); with 60 runs
    # (15 + 15) the Clopper-Pearson bounds were too wide to reject this bug. workers=1: the
    # patch applies in this process.
    broken = many_runs_audit(config, 100)
    assert broken.violation is True and broken.claim_test.violation is True
    assert broken.claimed_epsilon == correct.claimed_epsilon


def test_the_command_writes_its_record_and_refuses_bad_input(
    tmp_path: Path, write_config: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    raw = _config(tmp_path)
    path = write_config(raw)
    assert main(["audit-dp", "--config", str(path), "--runs", "8", "--workers", "1"]) == 0
    assert (tmp_path / "recipe_audit_dp.json").is_file()
    assert "audit-dp (8 runs" in capsys.readouterr().out
    with pytest.raises(ConfigError, match="8 to 100,000 runs"):
        many_runs_audit(parse_config(raw), 4)
    raw["training"]["dp"] = {"enabled": False}
    with pytest.raises(ConfigError, match=r"dp\.enabled"):
        many_runs_audit(parse_config(raw), 8)


@pytest.mark.parametrize(("flags", "words"), [
    (["--runs", "100000000000000000000000"], "8 to 100,000 runs"),  # sat silent > 60 s
    (["--runs", "8", "--workers", "0"], "--workers must be at least 1"),
    (["--runs", "8", "--workers", "-1"], "--workers must be at least 1"),
])
def test_impossible_runs_and_workers_are_refused_before_any_work(
    tmp_path: Path, write_config: Callable[..., Path], capsys: pytest.CaptureFixture[str],
    flags: list[str], words: str,
) -> None:
    path = write_config(_config(tmp_path))
    assert main(["audit-dp", "--config", str(path), *flags]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and words in err and err.count("\n") == 1
    assert not list(tmp_path.glob("*_audit_dp.json"))


def test_an_existing_file_is_replaced_only_if_it_is_an_earlier_result(
    tmp_path: Path, write_config: Callable[..., Path], capsys: pytest.CaptureFixture[str],
) -> None:
    path = write_config(_config(tmp_path))
    notes = tmp_path / "notes.json"
    notes.write_text('{"mine": true}', encoding="utf-8")
    argv = ["audit-dp", "--config", str(path), "--runs", "8", "--workers", "1"]
    assert main([*argv, "--out", str(notes)]) == 2  # refused before the 8 runs
    assert "is not an earlier auditml audit-dp result" in capsys.readouterr().err
    assert notes.read_text(encoding="utf-8") == '{"mine": true}'
    result = tmp_path / "result.json"
    assert main([*argv, "--out", str(result)]) == 0
    assert main([*argv, "--out", str(result)]) == 0  # its own earlier result: replaced
