"""K models trained as one computation equal K models trained alone: same batches, same noise
draws, same weights up to floating point; and the reference store uses it where it applies.

Tolerance: the batched path computes the same quantities in another order (per-example norms
from ``vmap(grad)`` instead of the fast path's rules, the clipped sum as the gradient of a
weighted loss, batched kernels), so single steps agree to ~1e-7 relative and a few dozen steps to
~1e-6. Weights are compared by the relative norm of the difference per tensor, bounded by 1e-5:
Adam turns near-zero gradients into ±lr steps, so a few entries with gradients at rounding level
can differ by lr-sized amounts while the tensor as a whole agrees to 1e-6.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from opacus.utils.uniform_sampler import UniformWithReplacementSampler
from torch import nn
from torch.utils.data import BatchSampler

from auditml.attacks import AuditTarget
from auditml.attacks.lira import LiraAttack
from auditml.config import AuditConfig, AuditMLConfig, parse_config
from auditml.data import ArrayDataset
from auditml.models import MODELS
from auditml.training import build_run_model
from auditml.training.batched import train_batched
from auditml.training.batched_jobs import (
    BatchedReferenceJob,
    batch_models_setting,
    can_batch,
    why_not_batched,
)
from auditml.training.executors import Job, SerialExecutor
from auditml.training.reference import (
    ReferenceJob,
    ReferenceStore,
    _model_seed,
    load_pool,
    paired_keep,
)
from auditml.training.trainer import fit_model

CPU = torch.device("cpu")
TOLERANCE = 1e-5
Weights = dict[str, np.ndarray]


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    """Tiny models: more threads only add overhead, and stall when another process holds a core."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _config(tiny_config: Callable[..., dict[str, Any]], *, dp: bool, optimizer: str = "sgd",
            **dp_settings: Any) -> AuditMLConfig:
    raw = tiny_config(
        data={"batch_size": 16},
        training={"epochs": 2, "optimizer": optimizer, "learning_rate": 0.05 if optimizer ==
                  "sgd" else 0.002,
                  "dp": {"enabled": True, "noise_multiplier": 1.0, "max_grad_norm": 1.0,
                         **dp_settings} if dp else {"enabled": False, **dp_settings}},
    )
    return parse_config(raw)


def _subsets(count: int) -> list[np.ndarray]:
    """Complementary halves of 201 examples: subsets of 100 and 101 examples."""
    keep = paired_keep(count, 201, seed=5)
    return [np.flatnonzero(row) for row in keep]


def _pool(config: AuditMLConfig) -> ArrayDataset:
    return load_pool(config.resolved().model_dump(mode="json"))


def _alone(config: AuditMLConfig, subset: np.ndarray, seed: int) -> Weights:
    fit = fit_model(config, _pool(config).subset(subset), None, seed=seed, device=CPU)
    return {name: t.detach().numpy() for name, t in fit.model.state_dict().items()}


def _relative_difference(a: Weights, b: Weights) -> float:
    assert a.keys() == b.keys()
    return max(float(np.linalg.norm(a[n] - b[n]) / np.linalg.norm(a[n])) for n in a)


class Draws:
    """What the samplers yielded and what ``torch.normal`` returned, by the object drawing them
    (a sampler, a generator), in order of first use: model order in a batched run."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.batches: dict[int, list[list[int]]] = defaultdict(list)
        self.noise: dict[int, list[torch.Tensor]] = defaultdict(list)
        for sampler in (BatchSampler, UniformWithReplacementSampler):
            monkeypatch.setattr(sampler, "__iter__", self._recording(sampler.__iter__))
        normal = torch.normal

        def recording_normal(*args: Any, **kwargs: Any) -> torch.Tensor:
            drawn = normal(*args, **kwargs)
            self.noise[id(kwargs.get("generator"))].append(drawn.clone())
            return drawn

        monkeypatch.setattr(torch, "normal", recording_normal)

    def _recording(self, iterate: Callable[[Any], Iterator[list[int]]]
                   ) -> Callable[[Any], Iterator[list[int]]]:
        def wrapper(sampler: Any) -> Iterator[list[int]]:
            for batch in iterate(sampler):
                self.batches[id(sampler)].append(list(batch))
                yield batch

        return wrapper

    def take(self) -> tuple[list[list[list[int]]], list[list[torch.Tensor]]]:
        taken = list(self.batches.values()), list(self.noise.values())
        self.batches.clear()
        self.noise.clear()
        return taken


@pytest.mark.parametrize("vectorize", [True, False], ids=["vmap", "loop"])
@pytest.mark.parametrize(
    ("dp", "optimizer", "mode"),
    [(False, "sgd", "auto"), (False, "adam", "auto"), (True, "sgd", "auto"),
     (True, "adam", "auto"), (True, "sgd", "hooks")],
)
def test_batched_models_equal_models_trained_alone(
    tiny_config: Callable[..., dict[str, Any]], monkeypatch: pytest.MonkeyPatch,
    dp: bool, optimizer: str, mode: str, vectorize: bool,
) -> None:
    config = _config(tiny_config, dp=dp, optimizer=optimizer, grad_sample_mode=mode)
    subsets, seeds = _subsets(3), [11, 22, 33]
    draws = Draws(monkeypatch)
    batched = train_batched(config, _pool(config), subsets, seeds, device=CPU,
                            vectorize=vectorize)
    batched_batches, batched_noise = draws.take()
    assert len(batched_batches) == 3
    for k in range(3):
        alone = _alone(config, subsets[k], seeds[k])
        (alone_batches,), alone_noise = draws.take()
        # The very same batches (shuffles or Poisson masks), epoch after epoch.
        assert batched_batches[k] == alone_batches
        assert len(alone_batches) == 2 * 7  # 2 epochs of ceil(101 / 16) batches
        if dp:  # the very same noise draws, in the same order
            (alone_noise_draws,) = alone_noise
            assert len(alone_noise_draws) == 2 * 7 * len(alone)
            assert len(batched_noise[k]) == len(alone_noise_draws)
            for ours, theirs in zip(batched_noise[k], alone_noise_draws, strict=True):
                assert torch.equal(ours, theirs)
        else:
            assert alone_noise == [] and batched_noise == []
        assert _relative_difference(alone, batched[k]) < TOLERANCE, f"model {k}"


def test_each_model_trains_on_its_own_subset_with_its_own_seed(
    tiny_config: Callable[..., dict[str, Any]],
) -> None:
    config = _config(tiny_config, dp=True)
    first, second = _subsets(2)
    batched = train_batched(config, _pool(config), [first, second, first], [7, 7, 8], device=CPU,
                            vectorize=True)
    alone = [_alone(config, first, 7), _alone(config, second, 7), _alone(config, first, 8)]
    for k in range(3):
        assert _relative_difference(alone[k], batched[k]) < TOLERANCE, f"model {k}"
    # A different subset, or a different seed (noise), gives a clearly different model.
    assert _relative_difference(alone[0], batched[1]) > 100 * TOLERANCE
    assert _relative_difference(alone[0], batched[2]) > 100 * TOLERANCE


@pytest.mark.parametrize("dp", [False, True])
def test_subsets_with_different_schedules_train_in_separate_groups(
    tiny_config: Callable[..., dict[str, Any]], dp: bool
) -> None:
    """96 and 97 examples at batch 16: 6 and 7 batches per epoch (and with ε, different σ).
    96 is a whole number of batches, where the shuffling sampler draws once more after the last
    batch (the draw the next epoch depends on)."""
    config = _config(tiny_config, dp=dp)
    subsets = [np.arange(96), np.arange(100, 197), np.arange(50, 146)]
    batched = train_batched(config, _pool(config), subsets, [1, 2, 3], device=CPU)
    for k, (subset, seed) in enumerate(zip(subsets, [1, 2, 3], strict=True)):
        assert _relative_difference(_alone(config, subset, seed), batched[k]) < TOLERANCE


def _batch_norm_cnn(input_shape: tuple[int, int, int], num_classes: int) -> nn.Module:
    return nn.Sequential(nn.Conv2d(input_shape[0], 4, 3), nn.BatchNorm2d(4), nn.Flatten(),
                         nn.LazyLinear(num_classes))


class _DataDependent(nn.Module):
    def __init__(self, features: int, num_classes: int) -> None:
        super().__init__()
        self.linear = nn.Linear(features, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.linear(x.flatten(1))
        return out if float(out.sum()) > 0 else -out  # Python control flow on a value


def test_why_not_batched_names_the_reason(
    tiny_config: Callable[..., dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert can_batch(_config(tiny_config, dp=True))
    assert can_batch(_config(tiny_config, dp=False))
    canaries = parse_config(tiny_config(training={
        "dp": {"enabled": True, "noise_multiplier": 1.0},
        "canaries": {"count": 4, "kind": "gradient"},
    }))
    assert "gradient canaries" in str(why_not_batched(canaries))
    monkeypatch.setattr(MODELS, "_entries", {
        **MODELS._entries, "bn_cnn": _batch_norm_cnn,
        "data_dependent": lambda shape, classes: _DataDependent(int(np.prod(shape)), classes),
    })
    batch_norm = parse_config(tiny_config(model={"arch": "bn_cnn"}))
    assert "BatchNorm2d keep running statistics" in str(why_not_batched(batch_norm))
    dependent = parse_config(tiny_config(model={"arch": "data_dependent"}))
    assert "torch.func cannot batch data_dependent" in str(why_not_batched(dependent))


def test_batch_models_setting() -> None:
    assert batch_models_setting(AuditConfig(batched=False, batch_models=4)) == 1
    assert batch_models_setting(AuditConfig(batch_models=4)) == 4
    assert batch_models_setting(AuditConfig()) == 8
    assert batch_models_setting(AuditConfig(), "cuda") == 64
    # DP-SGD on a CPU is batched where the per-layer rules clip the model; where they do not,
    # the pool unless asked (vmap's per-example gradients are slower there).
    assert batch_models_setting(AuditConfig(), "cpu", dp=True) == 8
    assert batch_models_setting(AuditConfig(), "cpu", dp=True, layer_rules=False) == 1
    assert batch_models_setting(AuditConfig(batch_models=4), "cpu", dp=True,
                                layer_rules=False) == 4
    assert batch_models_setting(AuditConfig(), "cuda", dp=True, layer_rules=False) == 64


class _Scaled(nn.Module):
    """A linear model times a trainable scale: a parameter no per-layer rule knows."""

    def __init__(self, features: int, num_classes: int) -> None:
        super().__init__()
        self.linear = nn.Linear(features, num_classes)
        self.scale = nn.Parameter(torch.ones(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x.flatten(1)) * self.scale


def test_the_layer_rules_cover_the_shipped_models_and_not_an_unknown_layer(
    tiny_config: Callable[..., dict[str, Any]], monkeypatch: pytest.MonkeyPatch,
) -> None:
    from auditml.training.batched_jobs import layer_rules_cover

    assert layer_rules_cover(_config(tiny_config, dp=True))
    monkeypatch.setattr(MODELS, "_entries", {
        **MODELS._entries,
        "scaled": lambda shape, classes: _Scaled(int(np.prod(shape)), classes),
    })
    assert not layer_rules_cover(parse_config(tiny_config(
        model={"arch": "scaled"}, training={"dp": {"enabled": True, "noise_multiplier": 1.0}})))


class Jobs:
    """Runs jobs one by one and keeps them; with ``crash_after``, stops there as a kill would."""

    def __init__(self, crash_after: int | None = None) -> None:
        self.jobs: list[Job[Any]] = []
        self.crash_after = crash_after

    def run(self, jobs: Sequence[Job[Any]], on_done: Callable[[int, Any], None]) -> None:
        self.jobs.extend(jobs)

        def done(index: int, result: Any) -> None:
            on_done(index, result)
            if index + 1 == self.crash_after:
                raise KeyboardInterrupt

        SerialExecutor().run(jobs, done)


def _ensure(config: AuditMLConfig, directory: Path, count: int, batch_models: int,
            executor: Jobs) -> Any:
    return ReferenceStore(directory).ensure(
        config, np.arange(60), count, lambda: build_run_model(config), workers=1, console=None,
        description="reference models", executor=executor, batch_models=batch_models,
    )


def test_the_store_trains_groups_when_it_can_and_one_by_one_when_it_cannot(
    tiny_config: Callable[..., dict[str, Any]], tmp_path: Path
) -> None:
    config = _config(tiny_config, dp=True)
    executor = Jobs()
    _ensure(config, tmp_path / "batched", 5, 2, executor)
    assert [type(job) for job in executor.jobs] == [BatchedReferenceJob] * 3
    assert [len(job.positions) for job in executor.jobs] == [2, 2, 1]  # type: ignore[attr-defined]
    canaries = parse_config(tiny_config(
        data={"batch_size": 16},
        training={"epochs": 1, "dp": {"enabled": True, "noise_multiplier": 1.0},
                  "canaries": {"count": 4, "kind": "gradient"}},
    ))
    executor = Jobs()
    _ensure(canaries, tmp_path / "pool", 3, 8, executor)
    assert [type(job) for job in executor.jobs] == [ReferenceJob] * 3
    executor = Jobs()
    _ensure(config, tmp_path / "off", 3, 1, executor)
    assert [type(job) for job in executor.jobs] == [ReferenceJob] * 3


def test_a_killed_batched_run_keeps_the_groups_that_finished(
    tiny_config: Callable[..., dict[str, Any]], tmp_path: Path
) -> None:
    config = _config(tiny_config, dp=False)
    with pytest.raises(KeyboardInterrupt):
        _ensure(config, tmp_path, 4, 2, Jobs(crash_after=1))
    first = [_model_seed(config.seed, k) for k in (0, 1)]
    rerun = Jobs()
    _ensure(config, tmp_path, 4, 2, rerun)
    # Models 0 and 1 were saved when their group finished; only 2 and 3 train again.
    assert [job.seeds for job in rerun.jobs] == [  # type: ignore[attr-defined]
        (_model_seed(config.seed, 2), _model_seed(config.seed, 3))
    ]
    assert all(seed not in rerun.jobs[0].seeds for seed in first)  # type: ignore[attr-defined]


def test_batched_reference_models_give_the_pool_s_attack_scores(
    tiny_config: Callable[..., dict[str, Any]], tmp_path: Path
) -> None:
    config = _config(tiny_config, dp=True)
    pool = _pool(config)
    examples = pool.subset(np.arange(60))
    target = build_run_model(config)
    target.load_state_dict({n: torch.from_numpy(w) for n, w in
                            _alone(config, np.arange(30), 99).items()})
    scores = []
    for name, batch_models in (("pool", 1), ("batched", 4)):
        executor = Jobs()
        reference = _ensure(config, tmp_path / name, 4, batch_models, executor)
        assert {type(job) for job in executor.jobs} == (
            {ReferenceJob} if batch_models == 1 else {BatchedReferenceJob})
        attack = LiraAttack().fit(AuditTarget(
            model=target.eval(), examples=examples, num_classes=10, device=CPU, seed=0,
            reference=reference,
        ))
        scores.append(attack.score())
    np.testing.assert_allclose(scores[1], scores[0], rtol=1e-4, atol=1e-4)
    assert np.std(scores[0]) > 0.1  # the scores say something: equality is not vacuous


def test_turning_batching_on_or_off_reuses_the_trained_models(
    tiny_config: Callable[..., dict[str, Any]], tmp_path: Path
) -> None:
    """How models are scheduled is not part of what they are: stores written before the setting
    existed, or with another setting, stay valid."""
    config = _config(tiny_config, dp=False)
    _ensure(config, tmp_path, 2, 2, Jobs())
    for audit in ({"batched": False}, {"batch_models": 3}):
        changed = config.model_copy(update={"audit": AuditConfig(**audit)})
        executor = Jobs()
        _ensure(changed, tmp_path, 2, 2, executor)
        assert executor.jobs == []


@pytest.mark.parametrize("rules", [True, False], ids=["layer-rules", "vmap-norms"])
def test_the_cpu_loop_clips_with_the_layer_rules_where_they_cover_the_model(
    tiny_config: Callable[..., dict[str, Any]], monkeypatch: pytest.MonkeyPatch, rules: bool,
) -> None:
    # On the CPU each model's clipped sum comes from the single-model trainer's per-layer rules
    # (one forward, one backward); vmap's per-example norms are only the fallback for a model
    # they do not cover. Either way the models equal the ones trained alone.
    import auditml.training.batched as batched

    config = _config(tiny_config, dp=True)
    if rules:
        def no_vmap(*_: Any) -> torch.Tensor:
            raise AssertionError("vmap norms used although the layer rules cover the model")
        monkeypatch.setattr(batched._BatchedFit, "_per_example_norms", no_vmap)
    else:
        monkeypatch.setattr(batched, "fast_path_problems", lambda _: ["no rule (planted)"])
        monkeypatch.setattr(batched, "PerExampleClipper", None)  # would fail if it were used
    subsets, seeds = _subsets(2), [11, 22]
    trained = train_batched(config, _pool(config), subsets, seeds, device=CPU, vectorize=False)
    for k in range(2):
        assert _relative_difference(_alone(config, subsets[k], seeds[k]), trained[k]) < TOLERANCE


@pytest.mark.parametrize("dp", [False, True])
def test_batched_models_follow_the_learning_rate_schedule(
    tiny_config: Callable[..., dict[str, Any]], dp: bool,
) -> None:
    # Without DP no recipe applies (the models train at a constant rate either way).
    config = _config(tiny_config, dp=dp, recipe={"lr_schedule": "cosine"})
    subsets, seeds = _subsets(2), [11, 22]
    trained = train_batched(config, _pool(config), subsets, seeds, device=CPU, vectorize=False)
    for k in range(2):
        assert _relative_difference(_alone(config, subsets[k], seeds[k]), trained[k]) < TOLERANCE
