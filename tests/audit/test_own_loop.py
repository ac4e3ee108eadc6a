"""auditml.CanaryAudit in your own Opacus loop: a correct loop passes, a broken one is caught."""

from __future__ import annotations

import io
import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from opacus import PrivacyEngine
from torch import nn

import auditml
from auditml.audit.own_loop import CanaryAuditResult
from auditml.errors import AuditMLError


def _loop(
    noise_factor: float, monkeypatch: pytest.MonkeyPatch, *, rate_factor: float = 1.0,
    dataset_size: int | None = None,
) -> CanaryAuditResult:
    torch.manual_seed(0)
    x, y = torch.randn(600, 20), torch.randint(0, 4, (600,))
    model = nn.Sequential(nn.Linear(20, 64), nn.ReLU(), nn.Linear(64, 4))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=60)
    engine = PrivacyEngine()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model, optimizer, loader = engine.make_private_with_epsilon(
            module=model, optimizer=optimizer, data_loader=loader, target_epsilon=1.0,
            target_delta=1e-4, epochs=10, max_grad_norm=1.0,
        )
    if noise_factor != 1.0:
        # The bug: the optimiser adds less noise than the σ its accountant steps with.
        original = type(optimizer).add_noise

        def add_less_noise(self: object) -> None:
            sigma = self.noise_multiplier  # type: ignore[attr-defined]
            self.noise_multiplier = sigma * noise_factor  # type: ignore[attr-defined]
            try:
                original(self)  # type: ignore[arg-type]
            finally:
                self.noise_multiplier = sigma  # type: ignore[attr-defined]

        monkeypatch.setattr(type(optimizer), "add_noise", add_less_noise)
    if rate_factor != 1.0:
        # The bug: the accountant is told another sampling rate than the loader's 1/10.
        optimizer.attach_step_hook(engine.accountant.get_optimizer_hook_fn(
            sample_rate=0.1 * rate_factor))
    audit = auditml.CanaryAudit(optimizer, count=1000, seed=0, dataset_size=dataset_size)
    for _ in range(10):
        for xb, yb in loader:
            optimizer.zero_grad()
            nn.functional.cross_entropy(model(xb), yb).backward()
            optimizer.step()
    return audit.result(engine, delta=1e-4)


def test_a_correct_loop_is_consistent(monkeypatch: pytest.MonkeyPatch) -> None:
    result = _loop(1.0, monkeypatch)
    assert result.violation is False and result.epsilon_lower_bound <= result.claimed_epsilon
    assert result.claimed_epsilon == pytest.approx(1.0, abs=0.01)
    assert result.record.claim_test is not None and result.record.claim_test.p_value > 0.5
    # Beside the verdict, the bound under the Gaussian assumption (measured: 0.43, normality
    # p = 0.08): below the claim, as it must be when the loop is correct and the scores normal.
    gaussian = result.gaussian_bound
    assert gaussian is not None and gaussian.score == "all_iterates"
    assert 0 < gaussian.epsilon <= result.claimed_epsilon


def test_a_loop_with_a_quarter_of_the_noise_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    result = _loop(0.25, monkeypatch)
    # Measured: p = 0.002 (seed 0); the correct loop has p = 1.
    assert result.violation is True
    assert result.claimed_epsilon == pytest.approx(1.0, abs=0.01)  # the accountant is fooled
    # Measured: 3.53 under the Gaussian assumption, which the checks doubt (normality p ~ 1e-17).
    assert result.gaussian_bound is not None
    assert result.gaussian_bound.epsilon > result.claimed_epsilon
    assert result.gaussian_bound.normality_p < 1e-6


def test_an_accountant_told_half_the_rate_is_caught_given_the_dataset_size(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    result = _loop(1.0, monkeypatch, rate_factor=0.5, dataset_size=600)
    check = result.record.mechanism_check
    check = None if check is None else check.model_dump()
    assert check is not None and check["sample_rate"]["claimed"] == pytest.approx(0.05)
    # 100 batches of about 60 of 600: the rate is about 0.1, at least 0.09 at 99.5 %.
    assert check["sample_rate"]["batches"] == 100 and check["sample_rate"]["lower"] > 0.09
    assert check["violation"] is True and result.violation is True
    assert result.claimed_epsilon < 0.7  # the accountant believes half the rate
    # Without the dataset size the batches cannot be turned into a rate: not seen.
    blind = _loop(1.0, monkeypatch, rate_factor=0.5)
    assert blind.record.mechanism_check is not None
    assert blind.record.mechanism_check is not None
    assert blind.record.mechanism_check.sample_rate is None


def test_a_correct_loop_passes_the_rate_check(monkeypatch: pytest.MonkeyPatch) -> None:
    result = _loop(1.0, monkeypatch, dataset_size=600)
    check = result.record.mechanism_check
    check = None if check is None else check.model_dump()
    assert check is not None and check["violation"] is False and result.violation is False
    assert check["sample_rate"]["lower"] <= 0.1 <= check["sample_rate"]["estimate"] + 0.01


def test_a_bad_dataset_size_is_refused() -> None:
    model = nn.Linear(3, 2)
    with pytest.raises(AuditMLError, match="dataset_size"):
        auditml.CanaryAudit(torch.optim.SGD(model.parameters(), lr=0.1), dataset_size=0)


def test_a_plain_optimizer_is_refused() -> None:
    model = nn.Linear(3, 2)
    with pytest.raises(AuditMLError, match="DPOptimizer"):
        auditml.CanaryAudit(torch.optim.SGD(model.parameters(), lr=0.1))


def _made_private(poisson: bool = True) -> tuple[object, nn.Module, object, object]:
    torch.manual_seed(0)
    data = torch.utils.data.TensorDataset(torch.randn(200, 20), torch.randint(0, 4, (200,)))
    model = nn.Sequential(nn.Linear(20, 64), nn.ReLU(), nn.Linear(64, 4))
    engine = PrivacyEngine()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model, optimizer, loader = engine.make_private(
            module=model, optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
            data_loader=torch.utils.data.DataLoader(data, batch_size=20, shuffle=not poisson),
            noise_multiplier=1.0, max_grad_norm=1.0, poisson_sampling=poisson,
        )
    return engine, model, optimizer, loader


def test_what_is_wrong_before_the_first_step_is_said_at_once() -> None:
    engine, model, optimizer, loader = _made_private(poisson=False)
    with pytest.warns(auditml.AssumptionWarning) as said:
        audit = auditml.CanaryAudit(optimizer, model=model, data_loader=loader,
                                    privacy_engine=engine)
    lines = [str(warning.message) for warning in said]
    assert lines[0].startswith("auditml: the accountant's ε will not apply: the loader draws "
                               "shuffled fixed-size batches of 20 (RandomSampler)")
    assert any("secure_mode" in line for line in lines)
    assert all("\n" not in line for line in lines)  # one line each
    assert audit.facts.dataset_size == 200 and audit.canaries.dataset_size == 200


def test_adaptive_clipping_is_refused_before_training() -> None:
    """Its clipping norm moves every step: refused only by result(), after the whole run, in
    words that blamed the user for changing max_grad_norm."""
    torch.manual_seed(0)
    data = torch.utils.data.TensorDataset(torch.randn(200, 20), torch.randint(0, 4, (200,)))
    model = nn.Sequential(nn.Linear(20, 64), nn.ReLU(), nn.Linear(64, 4))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _, optimizer, _ = PrivacyEngine().make_private(
            module=model, optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
            data_loader=torch.utils.data.DataLoader(data, batch_size=20),
            noise_multiplier=1.0, max_grad_norm=1.0, clipping="adaptive",
            target_unclipped_quantile=0.5, clipbound_learning_rate=0.2, max_clipbound=10.0,
            min_clipbound=0.1, unclipped_num_std=1.0,
        )
    with pytest.raises(AuditMLError, match=r"`optimizer`: .*adaptive clipping"):
        auditml.CanaryAudit(optimizer, count=50, seed=0)


@pytest.mark.parametrize(("argument", "value", "words"), [
    ("data_loader", [1, 2], "`data_loader` must be the torch DataLoader"),
    ("model", "net", "`model` must be the torch.nn.Module"),
    ("privacy_engine", object(), "`privacy_engine` must be the opacus PrivacyEngine"),
])
def test_a_wrong_object_is_refused_naming_the_argument(
    argument: str, value: object, words: str,
) -> None:
    _, _, optimizer, _ = _made_private()
    with pytest.raises(AuditMLError, match=words):
        auditml.CanaryAudit(optimizer, **{argument: value})


def test_result_needs_an_engine_and_a_delta() -> None:
    engine, _, optimizer, _ = _made_private()
    audit = auditml.CanaryAudit(optimizer, count=50)
    with pytest.raises(AuditMLError, match="`privacy_engine`: pass the opacus PrivacyEngine"):
        audit.result(delta=1e-5)
    with pytest.raises(AuditMLError, match=r"`delta` must be in \[1e-12, 1\), got None"):
        audit.result(engine)


def test_a_saved_state_resumes_only_the_same_canaries() -> None:
    _, model, optimizer, loader = _made_private()
    audit = auditml.CanaryAudit(optimizer, count=50, seed=3)
    for xb, yb in loader:
        nn.functional.cross_entropy(model(xb), yb).backward()
        optimizer.step()
        optimizer.zero_grad()
    state = audit.state_dict()
    saved = io.BytesIO()
    torch.save(state, saved)
    saved.seek(0)
    state = torch.load(saved, weights_only=True)  # a plain checkpoint: no pickled objects
    audit.detach()  # one audit per optimiser: the resumed one takes over
    again = auditml.CanaryAudit(optimizer, count=50, seed=3)
    again.load_state_dict(state)
    first, second = audit._record(), again._record()
    assert second.steps == first.steps == len(loader)
    assert np.array_equal(first.observations, second.observations)
    assert np.array_equal(first.known_batch_sizes(), second.known_batch_sizes())
    again.detach()
    other = auditml.CanaryAudit(optimizer, count=50, seed=4)
    with pytest.raises(AuditMLError, match=r"other canaries \(seed differ"):
        other.load_state_dict(state)
    with pytest.raises(AuditMLError, match=r"state: not a CanaryAudit\.state_dict"):
        other.load_state_dict({"what": 1})


def _trained_audit(*, through_clipping: bool = False,
                   **given: object) -> tuple[CanaryAuditResult, list[str]]:
    """Two epochs of a correct loop under a CanaryAudit given ``given`` (names of
    ``model``, ``data_loader``, ``privacy_engine``), and what it warned at construction."""
    engine, model, optimizer, loader = _made_private()
    objects = {"model": model, "data_loader": loader, "privacy_engine": engine}
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        audit = auditml.CanaryAudit(optimizer, count=200, seed=0,
                                    through_clipping=through_clipping,
                                    **{name: objects[name] for name in given})
    for _ in range(2):
        for xb, yb in loader:
            optimizer.zero_grad()
            nn.functional.cross_entropy(model(xb), yb).backward()
            optimizer.step()
    return audit.result(engine, delta=1e-5), [str(warning.message) for warning in said]


def test_consistent_means_every_assumption_was_checked(tmp_path: Path) -> None:
    """Without the loop's model and loader the loader, rate and hidden-state checks cannot run:
    a correct loop is then "not verified", never "consistent", in the API, the terminal and the
    report. Given them, the clipping is still unseen by canaries added after it; through it
    (``through_clipping=True``) the loop is consistent."""
    from auditml.cli import main
    from auditml.reporting.console import canary_summary

    bare, said = _trained_audit()
    assert bare.violation is False and bare.failed_checks == ()
    assert {"loader", "hidden_state", "noise_source"} <= set(bare.unchecked_checks)
    assert bare.claim_applies is None
    assert bare.verdict.startswith("not verified (not checked: ") and "loader" in bare.verdict
    assert any("never \"consistent\"" in line and "model=" in line for line in said)
    shown = canary_summary(bare.record.model_dump(mode="json"))
    assert shown.splitlines()[-1].startswith("  accountant's ε=") and "not verified" in shown
    saved = bare.save(tmp_path / "bare")
    assert main(["report", str(saved), "--out", str(tmp_path / "page")]) == 0
    page = json.loads((tmp_path / "page" / "run_report.json").read_text(encoding="utf-8"))
    assert page["verdict"] == "unverified" and "not verified" in page["headline"]
    assert "consistent" not in page["headline"]

    after, _ = _trained_audit(model=1, data_loader=1, privacy_engine=1)
    assert after.unchecked_checks == ("clipping",) and after.claim_applies is None
    assert after.verdict == "not verified (not checked: clipping)"
    [clipping] = [check for check in after.checks if check.check == "clipping"]
    assert "pass through_clipping=True" in clipping.detail

    full, said = _trained_audit(model=1, data_loader=1, privacy_engine=1, through_clipping=True)
    assert full.unchecked_checks == () and full.claim_applies is True
    assert full.verdict == "consistent"
    assert not any("never \"consistent\"" in line for line in said)
    saved = full.save(tmp_path / "full")
    assert main(["report", str(saved), "--out", str(tmp_path / "page2")]) == 0
    page = json.loads((tmp_path / "page2" / "run_report.json").read_text(encoding="utf-8"))
    assert page["verdict"] == "consistent"


@pytest.mark.parametrize(("setting", "value", "words"), [
    ("noise_multiplier", 0.5, r"noise multipliers 0.5, 1, not only the 1 the optimiser had"),
    ("max_grad_norm", 0.25, r"max_grad_norm is 0.25, not the 1 it had"),
])
def test_a_noise_or_clipping_schedule_is_refused_not_misjudged(
    setting: str, value: float, words: str,
) -> None:
    """A σ lowered on schedule (accounted by Opacus) read as missing noise: VIOLATION with an ε
    "lower bound" above the true ε; a lowered C, canaries four times an example's reach. The
    audit assumes one σ and C, so it says so instead of judging."""
    engine, model, optimizer, loader = _made_private()
    audit = auditml.CanaryAudit(optimizer, count=50, seed=0)
    for step, (xb, yb) in enumerate(loader):
        if step == 5:
            setattr(optimizer, setting, value)
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(xb), yb).backward()
        optimizer.step()
    with pytest.raises(AuditMLError, match=words):
        audit.result(engine, delta=1e-5)


def _fully_audited() -> tuple[object, nn.Module, object, object, auditml.CanaryAudit]:
    """A private loop set up, and its CanaryAudit given everything (warnings silenced)."""
    engine, model, optimizer, loader = _made_private()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        audit = auditml.CanaryAudit(optimizer, count=50, seed=0, model=model,
                                    data_loader=loader, privacy_engine=engine)
    return engine, model, optimizer, loader, audit


def test_an_update_outside_the_dp_optimiser_fails_the_updates_check(tmp_path: Path) -> None:
    """A plain step of the inner optimiser on fresh, unclipped gradients after each noisy one
    (the accountant never hears of it) was called consistent: every check passed."""
    from auditml.gradient_canary_record import GradientCanaryRecord

    engine, model, optimizer, loader, audit = _fully_audited()
    for xb, yb in loader:
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(xb), yb).backward()
        optimizer.step()
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(xb), yb).backward()
        optimizer.original_optimizer.step()  # no clipping, no noise, not accounted
    result = audit.result(engine, delta=1e-5)
    assert "updates" in result.failed_checks and result.violation is True
    [check] = [check for check in result.checks if check.check == "updates"]
    assert check.finding == "not_applicable"
    assert f"at {len(loader) - 1} of {len(loader)} updates" in check.detail
    saved = GradientCanaryRecord.load(result.save(tmp_path / "saved") / "gradient_canaries.npz")
    assert saved.changed_outside is not None and saved.changed_tensors is not None
    assert int(saved.changed_outside.sum()) == len(loader)  # the last one after the last update
    assert list(saved.changed_tensors) == [len(loader)] * 4


def test_opacus_still_stops_a_loop_that_never_clears_the_optimisers_gradients() -> None:
    """model.zero_grad() leaves the optimiser's clipped sums, so each step re-releases the
    earlier ones; Opacus refuses to noise a sum twice, and the canaries must not hide that."""
    _, model, optimizer, loader = _made_private()
    auditml.CanaryAudit(optimizer, count=50, seed=0)
    with pytest.raises(ValueError, match="Gradients haven't been cleared"):
        for xb, yb in loader:
            model.zero_grad()
            nn.functional.cross_entropy(model(xb), yb).backward()
            optimizer.step()


def test_a_layer_trained_outside_the_dp_optimiser_fails_the_updates_check() -> None:
    """A layer frozen at make_private, unfrozen later and stepped by a plain optimiser: the DP
    optimiser never holds it, so watching the optimiser's weights alone called it consistent."""
    torch.manual_seed(0)
    data = torch.utils.data.TensorDataset(torch.randn(200, 20), torch.randint(0, 4, (200,)))
    model = nn.Sequential(nn.Linear(20, 64), nn.ReLU(), nn.Linear(64, 4))
    model[0].requires_grad_(False)
    engine = PrivacyEngine()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model, optimizer, loader = engine.make_private(
            module=model, optimizer=torch.optim.SGD(
                [p for p in model.parameters() if p.requires_grad], lr=0.1),
            data_loader=torch.utils.data.DataLoader(data, batch_size=20),
            noise_multiplier=1.0, max_grad_norm=1.0,
        )
        audit = auditml.CanaryAudit(optimizer, count=50, seed=0, model=model,
                                    data_loader=loader, privacy_engine=engine)
    first = model._module[0]
    first.requires_grad_(True)
    plain = torch.optim.SGD(first.parameters(), lr=0.1)
    for xb, yb in loader:
        optimizer.zero_grad()
        plain.zero_grad()
        nn.functional.cross_entropy(model(xb), yb).backward()
        optimizer.step()
        plain.step()  # no clipping, no noise, not accounted
    result = audit.result(engine, delta=1e-5)
    assert "updates" in result.failed_checks and result.violation is True
    [check] = [check for check in result.checks if check.check == "updates"]
    assert "_module.0.weight, _module.0.bias, which the DP optimiser does not hold" in (
        check.detail)


def test_weights_changed_after_the_last_update_are_seen() -> None:
    engine, model, optimizer, loader, audit = _fully_audited()
    for xb, yb in loader:
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(xb), yb).backward()
        optimizer.step()
    passed = audit.result(engine, delta=1e-5)
    [check] = [check for check in passed.checks if check.check == "updates"]
    assert check.status == "passed" and f"only in the {len(loader)} noisy updates" in check.detail
    with torch.no_grad():
        next(model.parameters()).add_(0.01)  # e.g. a non-private fine-tuning after training
    [check] = [check for check in audit.result(engine, delta=1e-5).checks
               if check.check == "updates"]
    assert check.status == "failed" and "after the last noisy update" in check.detail
