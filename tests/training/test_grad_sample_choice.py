"""``grad_sample_mode: auto`` picks the mode measured fastest, caches it per set-up, and survives
any cache file. Timing itself is never asserted: a fake measurement decides which mode wins."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
import torch
from torch import nn

from auditml.training import grad_sample_choice
from auditml.training.grad_sample_cache import (
    CACHE_ENVIRONMENT_VARIABLE,
    ModeCache,
    default_cache_path,
    mode_key,
)
from auditml.training.grad_sample_choice import (
    measure_step_seconds,
    resolve_grad_sample_mode,
    time_steps,
)

CPU = torch.device("cpu")
SHAPE = (1, 6, 6)


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 3, 3), nn.ReLU(), nn.Flatten(), nn.Linear(48, 4))


class FakeMeasure:
    """Per-step seconds by mode, as a measurement would report them; counts its calls."""

    def __init__(self, seconds: dict[str, float]) -> None:
        self.seconds = seconds
        self.asked: list[list[str]] = []

    def __call__(self, modes: Sequence[str]) -> dict[str, float]:
        self.asked.append(list(modes))
        return {mode: self.seconds[mode] for mode in modes if mode in self.seconds}


def _never(modes: Sequence[str]) -> dict[str, float]:
    raise AssertionError(f"measured {list(modes)} although the choice was known")


def _resolve(requested: str, cache: ModeCache, measure: object, *, batch_size: int = 8,
             model: nn.Module | None = None) -> tuple[str, str]:
    choice = resolve_grad_sample_mode(
        requested, model or _model(), arch="toy", input_shape=SHAPE, batch_size=batch_size,
        device=CPU, cache=cache, measure=measure,  # type: ignore[arg-type]
    )
    return choice.mode, choice.reason


def test_auto_picks_the_fastest_measured_mode_and_measures_it_once(tmp_path: Path) -> None:
    cache = ModeCache(tmp_path / "modes.json")
    hooks_fastest = FakeMeasure({"fast": 0.030, "hooks": 0.010, "ghost": 0.020})
    mode, reason = _resolve("auto", cache, hooks_fastest)
    # Leaving the default (fast) takes a second timing of the two.
    assert mode == "hooks" and hooks_fastest.asked == [["fast", "hooks", "ghost"],
                                                       ["fast", "hooks"]]
    assert "hooks 10.0 ms" in reason and "cached in" in reason
    # Another process, same set-up: the file answers, nothing is timed again.
    assert _resolve("auto", ModeCache(tmp_path / "modes.json"), _never)[0] == "hooks"
    # Another batch size is another key: timed again, and may choose differently.
    ghost_fastest = FakeMeasure({"fast": 0.030, "hooks": 0.040, "ghost": 0.020})
    assert _resolve("auto", cache, ghost_fastest, batch_size=64)[0] == "ghost"
    assert _resolve("auto", cache, _never)[0] == "hooks"
    stored = json.loads((tmp_path / "modes.json").read_text())
    assert sorted(entry["mode"] for entry in stored["choices"].values()) == ["ghost", "hooks"]


def test_the_default_mode_stays_unless_another_is_clearly_faster(tmp_path: Path) -> None:
    # Within 10% is within the noise of a short measurement: fast (the default) is kept.
    close = FakeMeasure({"fast": 0.0100, "hooks": 0.0095, "ghost": 0.0120})
    assert _resolve("auto", ModeCache(tmp_path / "a.json"), close)[0] == "fast"
    clear = FakeMeasure({"fast": 0.0100, "hooks": 0.0085, "ghost": 0.0120})
    assert _resolve("auto", ModeCache(tmp_path / "b.json"), clear)[0] == "hooks"


class NoisyMeasure(FakeMeasure):
    """The first measurement caught a burst of load during fast's steps; the second did not."""

    def __call__(self, modes: Sequence[str]) -> dict[str, float]:
        measured = super().__call__(modes)
        return {**measured, "fast": 0.050} if len(self.asked) == 1 else measured


def test_leaving_the_default_needs_a_second_timing_to_agree(tmp_path: Path) -> None:
    burst = NoisyMeasure({"fast": 0.010, "hooks": 0.030, "ghost": 0.020})
    mode, reason = _resolve("auto", ModeCache(tmp_path / "m.json"), burst)
    assert mode == "fast" and burst.asked == [["fast", "hooks", "ghost"], ["fast", "ghost"]]
    assert "fast 10.0 ms" in reason


def test_a_default_left_out_of_the_first_timing_is_timed_again(tmp_path: Path) -> None:
    # On a CPU a mode whose first step looked hopeless is dropped; a burst of load can do that
    # to the default, which then gets a second chance before another mode is cached.
    first = {"hooks": 0.030, "ghost": 0.020}
    calls: list[list[str]] = []

    def measure(modes: Sequence[str]) -> dict[str, float]:
        calls.append(list(modes))
        return first if len(calls) == 1 else {"fast": 0.010, "ghost": 0.020}

    assert _resolve("auto", ModeCache(tmp_path / "m.json"), measure)[0] == "fast"
    assert calls == [["fast", "hooks", "ghost"], ["fast", "ghost"]]


def test_an_explicit_mode_measures_nothing(tmp_path: Path) -> None:
    cache = ModeCache(tmp_path / "modes.json")
    for mode in ["fast", "hooks", "ghost"]:
        assert _resolve(mode, cache, _never) == (mode, "set by training.dp.grad_sample_mode")
    assert not cache.path.exists()


def test_a_mode_that_cannot_train_the_model_is_not_chosen(tmp_path: Path) -> None:
    embedding = nn.Sequential(nn.Embedding(10, 4), nn.Flatten(), nn.Linear(8, 2))
    fast_fastest = FakeMeasure({"fast": 0.001, "hooks": 0.030, "ghost": 0.020})
    mode, _ = _resolve("auto", ModeCache(tmp_path / "m.json"), fast_fastest, model=embedding)
    assert fast_fastest.asked[0] == ["hooks", "ghost"] and mode == "ghost"
    only_hooks_ran = FakeMeasure({"hooks": 0.5})
    assert _resolve("auto", ModeCache(tmp_path / "n.json"), only_hooks_ran)[0] == "hooks"
    mode, reason = _resolve("auto", ModeCache(tmp_path / "o.json"), FakeMeasure({}))
    assert mode == "fast" and "no mode could be timed" in reason


@pytest.mark.parametrize(
    "content",
    ["{not json", "[1, 2]", '{"format": 99, "choices": {}}', "\udcff"],
    ids=["not-json", "not-a-mapping", "other-format", "not-utf8"],
)
def test_a_corrupt_cache_file_is_measured_around_and_rewritten(
    tmp_path: Path, content: str
) -> None:
    path = tmp_path / "modes.json"
    path.write_bytes(content.encode("utf-8", "surrogateescape"))
    cache = ModeCache(path)
    assert _resolve("auto", cache, FakeMeasure({"fast": 2.0, "hooks": 1.0, "ghost": 3.0}))[0] \
        == "hooks"
    assert cache.problem is not None and str(path) in cache.problem
    assert _resolve("auto", ModeCache(path), _never)[0] == "hooks"  # rewritten whole


def test_a_cached_entry_naming_no_known_mode_is_measured_again(tmp_path: Path) -> None:
    path = tmp_path / "modes.json"
    cache = ModeCache(path)
    _resolve("auto", cache, FakeMeasure({"fast": 1.0, "hooks": 2.0, "ghost": 3.0}))
    stored = json.loads(path.read_text())
    for entry in stored["choices"].values():
        entry["mode"] = "turbo"
    path.write_text(json.dumps(stored))
    again = FakeMeasure({"fast": 3.0, "hooks": 2.0, "ghost": 1.0})
    assert _resolve("auto", ModeCache(path), again)[0] == "ghost"
    assert again.asked[0] == ["fast", "hooks", "ghost"]


def test_an_unwritable_cache_keeps_the_choice_in_memory(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    path = blocker / "modes.json"  # its "directory" is a file: cannot be created
    measure = FakeMeasure({"fast": 2.0, "hooks": 1.0, "ghost": 3.0})
    mode, reason = _resolve("auto", ModeCache(path), measure)
    assert mode == "hooks" and "not cached: cannot write" in reason
    assert _resolve("auto", ModeCache(path), _never)[0] == "hooks"


def test_the_key_names_device_architecture_shape_batch_and_versions() -> None:
    model = _model()

    def key(**changes: object) -> str:
        settings: dict = {"arch": "toy", "input_shape": SHAPE, "batch_size": 8, "device": CPU}
        settings.update(changes)
        return mode_key(settings.pop("model", model), **settings).text()

    base = key()
    assert key(model=_model()) == base  # another instance of the same layers
    assert f"torch {torch.__version__}" in base and base.startswith("cpu ")
    frozen = _model()
    frozen[0].weight.requires_grad_(False)
    others = [key(batch_size=16), key(input_shape=(1, 7, 7)), key(arch="other"),
              key(model=frozen), key(model=nn.Sequential(nn.Flatten(), nn.Linear(36, 4)))]
    assert len({base, *others}) == 1 + len(others)


def test_the_cache_file_follows_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(CACHE_ENVIRONMENT_VARIABLE, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_path() == tmp_path / "xdg" / "auditml" / "grad_sample_modes.json"
    monkeypatch.setenv(CACHE_ENVIRONMENT_VARIABLE, str(tmp_path / "mine.json"))
    assert default_cache_path() == tmp_path / "mine.json"


class _Shared(nn.Module):
    """A layer run twice: the fast path refuses it only once it runs."""

    def __init__(self) -> None:
        super().__init__()
        self.layer = nn.Linear(36, 36)
        self.head = nn.Linear(36, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.layer(self.layer(x.flatten(1))))


def test_real_measurement_times_each_mode_that_runs_and_disturbs_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Every mode timed to the end (none left out for a slow warm-up, which is timing-dependent).
    monkeypatch.setattr(grad_sample_choice, "DROP_SLOWER_THAN", None)
    model = _model()
    before = [p.detach().clone() for p in model.parameters()]
    torch.manual_seed(123)
    rng_before = torch.get_rng_state()
    seconds = measure_step_seconds(model, ["fast", "hooks", "ghost"], input_shape=SHAPE,
                                   batch_size=8, device=CPU)
    assert sorted(seconds) == ["fast", "ghost", "hooks"]
    assert all(value > 0 for value in seconds.values())
    assert torch.equal(torch.get_rng_state(), rng_before)
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))
    assert all(p.grad is None for p in model.parameters())
    shared = measure_step_seconds(_Shared(), ["fast", "hooks"], input_shape=SHAPE,
                                  batch_size=8, device=CPU)
    assert sorted(shared) == ["hooks"]


class FakeClock:
    """Time that moves only when a fake step says it took so long."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def step(self, *durations: float) -> Callable[[], None]:
        """A step taking ``durations[i]`` on its i-th call (the last one ever after)."""
        calls: list[None] = []

        def run() -> None:
            self.now += durations[min(len(calls), len(durations) - 1)]
            calls.append(None)

        run.calls = calls  # type: ignore[attr-defined]
        return run


def test_timing_skips_the_warm_up_and_keeps_the_median() -> None:
    clock = FakeClock()
    # First call slow (warm-up), then 1, 5, 2, 9, 3: the median of the timed calls.
    fast = clock.step(100.0, 1.0, 5.0, 2.0, 9.0, 3.0)
    slow = clock.step(4.0)
    seconds = time_steps({"fast": fast, "slow": slow}, device=CPU, budget_s=1e9, rounds=5,
                         clock=clock)
    assert seconds == {"fast": 3.0, "slow": 4.0}


def test_timing_within_the_budget_runs_one_warm_up_and_one_timed_step_each() -> None:
    clock = FakeClock()
    # Binary fractions, so that the fake clock's differences are exact.
    steps = {"a": clock.step(0.375), "b": clock.step(0.25), "c": clock.step(0.125)}
    seconds = time_steps(steps, device=CPU, budget_s=0.5, rounds=5, clock=clock)
    assert seconds == {"a": 0.375, "b": 0.25, "c": 0.125}
    assert [len(step.calls) for step in steps.values()] == [2, 2, 2]  # type: ignore[attr-defined]


def test_a_step_whose_warm_up_is_far_slower_is_not_timed_further() -> None:
    clock = FakeClock()
    steps = {"quick": clock.step(1.0), "close": clock.step(2.0), "slow": clock.step(3.0)}
    seconds = time_steps(steps, device=CPU, budget_s=1e9, rounds=2, drop_slower_than=2.5,
                         clock=clock)
    assert seconds == {"quick": 1.0, "close": 2.0}
    assert [len(step.calls) for step in steps.values()] == [3, 3, 1]  # type: ignore[attr-defined]
    # Without a warm-up (on a CPU) the first timed step judges, and the slow one keeps it.
    clock = FakeClock()
    steps = {"quick": clock.step(1.0), "close": clock.step(2.0), "slow": clock.step(3.0)}
    seconds = time_steps(steps, device=CPU, budget_s=1e9, rounds=2, warmup_rounds=0,
                         drop_slower_than=2.5, clock=clock)
    assert seconds == {"quick": 1.0, "close": 2.0}
    assert [len(step.calls) for step in steps.values()] == [2, 2, 1]  # type: ignore[attr-defined]
