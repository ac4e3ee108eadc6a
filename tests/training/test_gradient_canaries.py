"""Gradient canaries join DP-SGD's clipped sum before the noise and change nothing else.

The reference for "nothing else" is the same run without canaries: the canaries draw from their
own generators, so with the same seed both runs draw the same batches and the same noise, and the
noisy gradients must differ by exactly the sampled included canaries' gradients.
"""

from __future__ import annotations

import dataclasses
import io
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch
from rich.console import Console
from torch import nn

from auditml.config import DPConfig, parse_config
from auditml.data import make_split
from auditml.errors import ConfigError, ModelError, RunDirectoryError
from auditml.gradient_canary_record import GradientCanaryRecord
from auditml.records import HiddenStateProbe, LoopFacts
from auditml.run_directory import RunDirectory
from auditml.training import build_run_model, train
from auditml.training.dp_sgd import make_private
from auditml.training.gradient_canaries import GradientCanaries, optimizer_parameters
from auditml.training.privacy import NoisePlan

MODES = ["fast", "hooks", "ghost"]
SIGMA, CLIP, RATE = 0.8, 1.5, 0.25


def _mlp() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(10, 8), nn.ReLU(), nn.Linear(8, 4))


def _loader() -> torch.utils.data.DataLoader:
    generator = torch.Generator().manual_seed(3)
    data = torch.utils.data.TensorDataset(
        torch.randn(64, 10, generator=generator) * 3,
        torch.randint(0, 4, (64,), generator=generator),
    )
    return torch.utils.data.DataLoader(data, batch_size=16)


def _canaries(
    parameters: list[torch.Tensor], direction: str, **overrides: float
) -> GradientCanaries:
    settings = {"count": 40, "direction": direction, "max_grad_norm": CLIP, "sample_rate": RATE,
                "noise_multiplier": SIGMA, "seed": 5}
    return GradientCanaries(parameters, **{**settings, **overrides})  # type: ignore[arg-type]


def _train(
    mode: str, direction: str | None, epochs: int = 3
) -> tuple[list[torch.Tensor], float, GradientCanaryRecord | None, list[torch.Tensor]]:
    """Noisy gradients of every step (lr 0: the model stays put), ε, the canaries' record and
    the parameters."""
    model = _mlp()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)
    parameters = optimizer_parameters(optimizer)
    canaries = _canaries(parameters, direction) if direction else None
    dp = DPConfig(enabled=True, noise_multiplier=SIGMA, max_grad_norm=CLIP, delta=1e-3)
    plan = NoisePlan(noise_multiplier=SIGMA, sample_rate=RATE, steps=4 * epochs, calibrated=False)
    torch.manual_seed(7)
    private = make_private(model, optimizer, _loader(), plan=plan, dp=dp, mode=mode,
                           canaries=canaries)
    gradients = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(epochs):
            for x, y in private.loader:
                private.step(x, y)
                gradients.append(torch.cat([p.grad.flatten() for p in parameters]).clone())
    epsilon = private.epsilon(dp.delta)
    private.close()
    return gradients, epsilon, canaries.record() if canaries else None, parameters


@pytest.mark.parametrize("mode", MODES)
def test_each_steps_real_batch_size_and_divisor_are_recorded(mode: str) -> None:
    model = _mlp()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)
    canaries = _canaries(optimizer_parameters(optimizer), "dirac", dataset_size=64)
    dp = DPConfig(enabled=True, noise_multiplier=SIGMA, max_grad_norm=CLIP, delta=1e-3)
    plan = NoisePlan(noise_multiplier=SIGMA, sample_rate=RATE, steps=8, calibrated=False)
    private = make_private(model, optimizer, _loader(), plan=plan, dp=dp, mode=mode,
                           canaries=canaries)
    sizes = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(2):
            for x, y in private.loader:
                private.step(x, y)
                sizes.append(len(y))
    private.close()
    record = canaries.record()
    assert record.known_batch_sizes().tolist() == sizes and record.dataset_size == 64
    assert sum(sizes) > 0  # Poisson batches of 64 at 1/4: not all empty
    # And what each noisy sum was divided by before it was applied: the expected batch size, in
    # every mode (the normalisation check reads it).
    assert record.divisors is not None and np.allclose(record.divisors, 64 * RATE, rtol=1e-4)


def _unit_directions(record: GradientCanaryRecord, parameters: list[torch.Tensor]) -> torch.Tensor:
    """(m, d): each canary's unit direction, built independently of the projection code."""
    if record.direction == "dirac":
        directions = torch.zeros(record.count, record.dimension)
        directions[torch.arange(record.count), torch.as_tensor(record.coordinates)] = 1.0
        return directions
    # One canary at a time, always sampled, into zeros: the injected gradient is C·u_j.
    rows = []
    for j in range(record.count):
        single = GradientCanaries(
            parameters, count=record.count, direction=record.direction, max_grad_norm=1.0,
            sample_rate=1.0, noise_multiplier=SIGMA, seed=record.seed,
        )
        single.included[:] = False
        single.included[j] = True
        sums = single.add_to_sums([torch.zeros_like(p) for p in parameters])
        rows.append(torch.cat([s.flatten() for s in sums]))
    return torch.stack(rows)


@pytest.mark.parametrize("direction", ["dirac", "random_direction"])
@pytest.mark.parametrize("mode", MODES)
def test_canaries_add_exactly_their_gradients_and_nothing_else(mode: str, direction: str) -> None:
    plain, plain_epsilon, _, _ = _train(mode, None)
    with_canaries, epsilon, record, parameters = _train(mode, direction)
    assert record is not None and record.steps == len(plain) == 12
    assert epsilon == plain_epsilon  # the accountant is not touched
    directions = _unit_directions(record, parameters)
    assert torch.allclose(directions.norm(dim=1), torch.ones(record.count), atol=1e-6)
    expected_batch = 16
    for step, (base, canaried) in enumerate(zip(plain, with_canaries, strict=True)):
        sampled = torch.as_tensor(record.sampled[step])
        added = CLIP * directions[sampled].sum(dim=0) / expected_batch
        assert torch.allclose(canaried - base, added, rtol=1e-5, atol=1e-5 * base.abs().max())
        # The observation is the noisy sum (before the division) on each direction.
        noisy_sum = canaried * expected_batch
        assert np.allclose(record.observations[step], (directions @ noisy_sum).numpy(),
                           rtol=1e-5, atol=1e-4)
    assert record.sampled.any()  # some canary was really injected
    assert not np.any(record.sampled & ~record.included)
    final = torch.cat([p.detach().flatten() for p in parameters])
    assert np.allclose(record.final, (directions @ final).numpy(), atol=1e-5)
    assert np.allclose(record.initial, record.final)  # lr 0


def test_without_noise_the_real_clipped_sum_is_unchanged() -> None:
    """σ = 0: what the canaries add is all that changes, so the real examples' clipped
    gradients are exactly those of a run without canaries."""
    model = _mlp()
    parameters = [p for p in model.parameters()]
    canaries = _canaries(parameters, "dirac", sample_rate=1.0)
    sums = [torch.randn_like(p) for p in parameters]
    before = [s.clone() for s in sums]
    injected = canaries.add_to_sums(sums)
    assert all(torch.equal(s, b) for s, b in zip(sums, before, strict=True))  # not in place
    difference = torch.cat([(i - s).flatten() for i, s in zip(injected, sums, strict=True)])
    touched = torch.as_tensor(canaries.coordinates[canaries.included])
    assert torch.allclose(difference[touched], torch.full((len(touched),), CLIP))
    difference[touched] = 0
    assert torch.count_nonzero(difference) == 0


def test_coins_are_fair_recorded_and_follow_the_seed() -> None:
    parameters = [torch.zeros(100, 100)]
    canaries = _canaries(parameters, "dirac", count=10_000)
    # Binomial(10000, 1/2): sd 50; 4.5 sd is a 1e-5 false alarm.
    assert abs(int(canaries.included.sum()) - 5_000) < 4.5 * 50
    assert np.array_equal(canaries.record().included, canaries.included)
    again = _canaries(parameters, "dirac", count=10_000)
    other = _canaries(parameters, "dirac", count=10_000, seed=6)
    assert np.array_equal(again.included, canaries.included)
    assert np.array_equal(again.coordinates, canaries.coordinates)
    assert not np.array_equal(other.included, canaries.included)
    assert len(np.unique(canaries.coordinates)) == 10_000  # without replacement


@pytest.mark.parametrize("rate", [0.01, 0.3])
def test_included_canaries_are_sampled_at_the_real_examples_rate(rate: float) -> None:
    parameters = [torch.zeros(50, 50)]
    canaries = _canaries(parameters, "dirac", count=1000, sample_rate=rate)
    for _ in range(400):
        sums = canaries.add_to_sums([torch.zeros(50, 50)])
        canaries.observe(sums)
    record = canaries.record()
    trials = 400 * int(record.included.sum())
    hits = int(record.sampled.sum())
    sd = np.sqrt(trials * rate * (1 - rate))
    assert abs(hits - trials * rate) < 4.5 * sd
    # Each included canary's observation is C exactly when sampled (no noise here).
    assert np.array_equal(record.observations == CLIP, record.sampled)


@pytest.mark.parametrize("direction", ["dirac", "random_direction"])
def test_a_canary_gradient_has_norm_exactly_the_clipping_norm(direction: str) -> None:
    parameters = [torch.zeros(7, 3), torch.zeros(5)]
    canaries = _canaries(parameters, direction, count=1, sample_rate=1.0, seed=1)
    canaries.included[:] = True
    gradient = torch.cat([s.flatten() for s in canaries.add_to_sums(
        [torch.zeros_like(p) for p in parameters])])
    assert float(gradient.norm()) == pytest.approx(CLIP, rel=1e-6)


def test_misuse_is_refused_with_one_line() -> None:
    parameters = [torch.zeros(3)]
    with pytest.raises(ConfigError, match="need as many trainable coordinates"):
        _canaries(parameters, "dirac", count=4)
    with pytest.raises(ConfigError, match="direction must be one of"):
        _canaries(parameters, "gaussian")
    canaries = _canaries(parameters, "dirac", count=2)
    with pytest.raises(ModelError, match="parameters changed"):
        canaries.add_to_sums([torch.zeros(4)])
    with pytest.raises(ModelError, match="without add_to_sums"):
        canaries.observe([torch.zeros(3)])


# -- training, the run directory ------------------------------------------------------------------


def _quiet() -> Console:
    return Console(file=io.StringIO(), width=200)


def _canary_config(raw: dict[str, Any], mode: str = "fast") -> dict[str, Any]:
    return _merge(raw, {"training": {
        "dp": {"enabled": True, "noise_multiplier": 1.0, "delta": 1e-3, "grad_sample_mode": mode},
        "canaries": {"count": 300, "kind": "gradient", "direction": "dirac"},
    }})


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in extra.items():
        merged[key] = _merge(base.get(key, {}), value) if isinstance(value, dict) else value
    return merged


@pytest.mark.slow
@pytest.mark.parametrize("mode", MODES)
def test_training_records_the_canaries_in_the_run_directory(
    tiny_config: Callable[..., dict[str, Any]], mode: str
) -> None:
    config = parse_config(_canary_config(tiny_config(), mode))
    plain = train(parse_config(_merge(tiny_config(experiment_name="plain"), {"training": {
        "dp": {"enabled": True, "noise_multiplier": 1.0, "delta": 1e-3,
               "grad_sample_mode": mode}}})), console=_quiet())
    result = train(config, console=_quiet())
    run = RunDirectory(result.run_dir)
    manifest = run.require_trained()
    assert "gradient_canaries.npz" in manifest.files
    record = run.read_gradient_canaries()
    metrics = run.read_training()
    # 100 members at batch 50: 2 steps an epoch, 2 epochs; no pool example became a canary.
    assert record.observations.shape == (4, 300) and record.sample_rate == 0.5
    assert (record.noise_multiplier, record.max_grad_norm) == (1.0, 1.0)
    assert len(run.read_split().canaries) == 0 and metrics.canaries.count == 0
    assert metrics.gradient_canaries is not None
    assert metrics.gradient_canaries.included == int(record.included.sum()) > 0
    assert metrics.epsilon == plain.metrics["epsilon"]
    # The real batches (the sampling-rate check's evidence): Binomial(100, 0.5) each.
    sizes = record.known_batch_sizes()
    assert record.dataset_size == 100 and sizes.shape == (4,) and (sizes >= 0).all()
    assert 100 <= sizes.sum() <= 300
    model = build_run_model(config)
    model.load_state_dict(run.read_model_state())
    final = torch.cat([p.detach().flatten() for p in model.parameters() if p.requires_grad])
    assert np.allclose(record.final, final[torch.as_tensor(record.coordinates)].numpy())
    assert not RunDirectory(plain.run_dir).has_gradient_canaries()
    RunDirectory(plain.run_dir).require_trained()


def test_batch_sizes_round_trip_and_older_records_read_as_unknown(tmp_path: Any) -> None:
    canaries = _canaries(optimizer_parameters(torch.optim.SGD(_mlp().parameters(), lr=0.1)),
                         "dirac", dataset_size=64)
    for size in (3, 0):
        canaries.note_batch(size)
        sums = canaries.add_to_sums([torch.zeros_like(p) for p in canaries.parameters])
        canaries.observe(sums)
    sums = canaries.add_to_sums([torch.zeros_like(p) for p in canaries.parameters])
    canaries.observe(sums)  # a step nobody noted: unknown
    record = canaries.record()
    path = tmp_path / "gradient_canaries.npz"
    record.save(path)
    loaded = GradientCanaryRecord.load(path)
    assert loaded.known_batch_sizes().tolist() == [3, 0, -1] and loaded.dataset_size == 64
    sizes = [p.numel() for p in canaries.parameters]
    assert loaded.parameter_sizes is not None and loaded.parameter_sizes.tolist() == sizes
    with np.load(path) as saved:
        arrays = {key: value for key, value in saved.items()
                  if key not in ("batch_sizes", "dataset_size", "parameter_sizes")}
    with path.open("wb") as handle:
        np.savez(handle, **arrays)  # as auditml wrote it before batch sizes were kept
    older = GradientCanaryRecord.load(path)
    assert older.known_batch_sizes().tolist() == [-1, -1, -1] and older.dataset_size == 0
    assert older.parameter_sizes is None
    twice = arrays["coordinates"].copy()
    twice[1] = twice[0]
    for bad in ({"batch_sizes": np.array([3, 0], np.int64)},
                {"batch_sizes": np.array([3, 0, -2], np.int64)},
                {"batch_sizes": np.array([3, 99, 0], np.int64), "dataset_size": np.int64(64)},
                {"parameter_sizes": np.array([*sizes[:-1], sizes[-1] + 1], np.int64)},
                {"parameter_sizes": np.array([0, *sizes], np.int64)},
                {"coordinates": twice}):
        with path.open("wb") as handle:
            np.savez(handle, **{**arrays, **bad})
        with pytest.raises(RunDirectoryError,
                           match=r"batch_sizes|dataset_size|parameter_sizes|share a coordinate"):
            GradientCanaryRecord.load(path)


@pytest.mark.slow
def test_a_changed_or_corrupt_canary_file_is_refused(
    tiny_config: Callable[..., dict[str, Any]]
) -> None:
    result = train(parse_config(_canary_config(tiny_config())), console=_quiet())
    run = RunDirectory(result.run_dir)
    path = result.run_dir / "gradient_canaries.npz"
    record = run.read_gradient_canaries()
    bad = dataclasses.replace(record, observations=record.observations[:, :5])
    bad.save(path)
    with pytest.raises(RunDirectoryError, match="changed after training"):
        run.require_trained()
    with pytest.raises(RunDirectoryError, match=r"gradient_canaries\.npz is unreadable \(obs"):
        run.read_gradient_canaries()
    with np.load(path) as saved:
        arrays = dict(saved)
    with path.open("wb") as handle:
        np.savez(handle, **{**arrays, "observations": record.observations.astype(float)})
    with pytest.raises(RunDirectoryError, match="observations has dtype float64"):
        run.read_gradient_canaries()
    path.write_bytes(b"not a zip")
    with pytest.raises(RunDirectoryError, match=r"gradient_canaries\.npz is unreadable"):
        run.read_gradient_canaries()
    path.unlink()
    with pytest.raises(RunDirectoryError, match="changed after training"):
        run.require_trained()


def test_gradient_canaries_without_dp_are_refused_before_the_data(
    tiny_config: Callable[..., dict[str, Any]]
) -> None:
    raw = tiny_config(training={"canaries": {"count": 10, "kind": "gradient"}})
    with pytest.raises(ConfigError, match="needs DP-SGD") as error:
        train(parse_config(raw), console=_quiet())
    assert "\n" not in str(error.value)


def test_gradient_canaries_take_no_pool_examples() -> None:
    labels = np.arange(1000) % 10
    split = make_split(labels, 200, seed=2, validation_from_pool=True, canaries=500,
                       canary_kind="gradient")
    plain = make_split(labels, 200, seed=2, validation_from_pool=True)
    assert len(split.canaries) == len(split.canary_included) == 0
    np.testing.assert_array_equal(split.validation, plain.validation)


# -- the planted-bug mechanisms (tests/planted_dp.py) work as documented --------------------------


@pytest.mark.slow
def test_planted_bugs_change_the_mechanism_as_documented() -> None:
    from planted_dp import BUGS, train_planted

    runs = {bug: train_planted(bug, seed=0, canaries=500, epochs=2, canary_norm=10.0)
            for bug in (None, *BUGS)}
    correct = runs[None]
    out = ~correct.record.included
    # Canaries whose coin said OUT see only noise (plus a little of the real gradients).
    assert np.std(correct.record.observations[:, out]) == pytest.approx(1.0, rel=0.1)
    halved = runs["noise_halved"].record
    assert np.std(halved.observations[:, ~halved.included]) == pytest.approx(0.5, rel=0.1)
    assert halved.noise_multiplier == 1.0  # the record holds the claim, not the truth
    half_rate = runs["accountant_half_rate"]
    assert half_rate.record.sample_rate == correct.record.sample_rate
    assert half_rate.claimed_epsilon < correct.claimed_epsilon
    for bug in BUGS:
        assert runs[bug].record.max_grad_norm == 1.0
        assert runs[bug].record.observations.shape == correct.record.observations.shape


def test_tensor_owners_maps_flat_coordinates_to_tensors_and_offsets() -> None:
    from auditml.gradient_canary_record import tensor_owners

    owners, local = tensor_owners(np.array([0, 2, 3, 4, 9]), np.array([3, 1, 6]))
    assert owners.tolist() == [0, 0, 1, 2, 2]
    assert local.tolist() == [0, 2, 0, 0, 5]


def test_divisors_and_loop_facts_round_trip_and_bad_ones_are_refused(tmp_path: Any) -> None:
    canaries = _canaries(optimizer_parameters(torch.optim.SGD(_mlp().parameters(), lr=0.1)),
                         "dirac", dataset_size=64)
    for divisor in (16.0, None):
        sums = canaries.add_to_sums([torch.randn_like(p) for p in canaries.parameters])
        canaries.observe(sums)
        if divisor is not None:
            canaries.note_applied([s / divisor for s in sums])
    facts = LoopFacts(loader="Poisson", sampling="poisson", loader_rate=0.25, dataset_size=64,
                      mixing_layers=["1: BatchNorm1d"],
                      probe=HiddenStateProbe(ran=True, reason="first batch", batch=3,
                                             mixing=True, max_change=0.5))
    record = dataclasses.replace(canaries.record(), loop_facts=facts)
    assert record.divisors is not None
    assert record.divisors[0] == pytest.approx(16.0) and np.isnan(record.divisors[1])
    path = tmp_path / "gradient_canaries.npz"
    record.save(path)
    loaded = GradientCanaryRecord.load(path)
    assert loaded.loop_facts == facts
    assert np.array_equal(loaded.divisors, record.divisors, equal_nan=True)  # type: ignore[arg-type]
    with np.load(path) as saved:
        arrays = dict(saved)
    for bad, words in (({"divisors": np.array([16.0], np.float64)}, "divisors must hold"),
                       ({"divisors": np.array([16.0, np.inf])}, "divisors must hold"),
                       ({"loop_facts": np.str_('{"loader": 3}')}, "loader"),
                       ({"loop_facts": np.str_('{"surprise": true}')}, "surprise")):
        with path.open("wb") as handle:
            np.savez(handle, **{**arrays, **bad})
        with pytest.raises(RunDirectoryError, match=words):
            GradientCanaryRecord.load(path)
    older = {key: value for key, value in arrays.items() if key not in ("divisors", "loop_facts")}
    with path.open("wb") as handle:
        np.savez(handle, **older)
    assert GradientCanaryRecord.load(path).divisors is None
    assert GradientCanaryRecord.load(path).loop_facts is None


def test_dirac_canaries_on_one_flat_vector_equal_them_tensor_by_tensor(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Small models add and project on one flat copy of the sums, large ones tensor by tensor:
    both give the same sums (inputs untouched) and the same projections."""
    import auditml.training.gradient_canaries as module

    parameters = optimizer_parameters(torch.optim.SGD(_mlp().parameters(), lr=0.1))
    sums = [torch.randn_like(p) for p in parameters]
    before = [s.clone() for s in sums]
    results = {}
    for flat_limit in (1 << 20, 0):
        monkeypatch.setattr(module, "_FLAT_DIMENSION", flat_limit)
        canaries = _canaries(parameters, "dirac")
        canaries.sample_rate = 0.5
        added = canaries.add_to_sums(sums)
        results[flat_limit] = (added, canaries._directions.project(added))
        canaries.observe(added)
    (flat_sums, flat_projection), (split_sums, split_projection) = results.values()
    for flat, split, original, kept in zip(flat_sums, split_sums, sums, before, strict=True):
        assert torch.equal(flat, split) and flat.shape == original.shape
        assert torch.equal(original, kept)  # the caller's sums are not changed in place
    assert torch.equal(flat_projection, split_projection)
    assert any(not torch.equal(a, b) for a, b in zip(flat_sums, sums, strict=True))
