"""Bad arguments to the Python API end in one ValueError that names the argument.

One table for ``auditml.api.audit``, one for ``CanaryAudit`` and its ``result``: each case is a
call and the argument its error must name (``ArgumentError`` is an ``AuditMLError`` and a
``ValueError``), never a ZeroDivisionError, IndexError or a torch error from deep inside.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch
from opacus import PrivacyEngine
from torch import nn
from torch.utils.data import TensorDataset

import auditml.api
from auditml.audit.own_loop import CanaryAudit
from auditml.data import ArrayDataset, SensitiveAttribute
from auditml.errors import AuditMLError

FEATURES, CLASSES = 6, 3
_generator = np.random.default_rng(0)
X = _generator.normal(size=(40, FEATURES)).astype(np.float32)
Y = _generator.integers(0, CLASSES, 40)


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(FEATURES, 8), nn.ReLU(), nn.Linear(8, CLASSES))


def _factory(train_set: ArrayDataset, seed: int) -> nn.Module:
    return _model()


def _audit(**changes: Any) -> None:
    arguments: dict[str, Any] = {"model": _model(), "members": (X[:20], Y[:20]),
                                 "nonmembers": (X[20:], Y[20:]), "progress": False}
    arguments.update(changes)
    auditml.api.audit(arguments.pop("model"), arguments.pop("members"),
                      arguments.pop("nonmembers"), **arguments)


def _with(array: np.ndarray, index: Any, value: Any) -> np.ndarray:
    changed = array.copy()
    changed[index] = value
    return changed


AUDIT_CASES: list[tuple[str, dict[str, Any], str]] = [
    ("label beyond the outputs", {"members": (X[:20], _with(Y[:20], 0, CLASSES))}, "members"),
    ("nonmember label beyond", {"nonmembers": (X[20:], _with(Y[20:], 3, 7))}, "nonmembers"),
    ("negative label", {"members": (X[:20], _with(Y[:20], 0, -1))}, "members"),
    ("fractional label", {"nonmembers": (X[20:], _with(Y[20:].astype(float), 0, 0.5))},
     "nonmembers"),
    ("NaN label", {"members": (X[:20], _with(Y[:20].astype(float), 0, np.nan))}, "members"),
    ("text labels", {"members": (X[:20], np.array(["a"] * 20))}, "members"),
    ("2-D labels", {"members": (X[:20], Y[:20, None])}, "members"),
    ("fewer labels than inputs", {"members": (X[:20], Y[:19])}, "members"),
    ("no members", {"members": (X[:0], Y[:0])}, "members"),
    ("no nonmembers", {"nonmembers": (X[:0], Y[:0])}, "nonmembers"),
    # Found by QA: one member failed after the reference models trained, naming `is_member`.
    ("one member", {"members": (X[:1], Y[:1])}, "members"),
    ("one nonmember", {"nonmembers": (X[20:21], Y[20:21])}, "nonmembers"),
    ("empty Dataset", {"members": TensorDataset(torch.zeros(0, FEATURES),
                                                torch.zeros(0, dtype=torch.long))}, "members"),
    ("NaN input", {"members": (_with(X[:20], (0, 0), np.nan), Y[:20])}, "members"),
    ("infinite input", {"nonmembers": (_with(X[20:], (1, 2), np.inf), Y[20:])}, "nonmembers"),
    ("a list, not a pair", {"members": [X[:20], Y[:20], Y[:20]]}, "members"),
    ("a number", {"nonmembers": 3}, "nonmembers"),
    ("text inputs", {"members": (np.array([["a"] * FEATURES] * 20), Y[:20])}, "members"),
    ("wrong feature count", {"members": (X[:20, :4], Y[:20]), "nonmembers": (X[20:, :4], Y[20:])},
     "model"),
    ("nonmembers of another shape", {"nonmembers": (X[20:, :4], Y[20:])}, "nonmembers"),
    ("population of another shape", {"population": (X[:5, :2], Y[:5])}, "population"),
    ("population with NaN", {"population": (_with(X[:5], (0, 0), np.nan), Y[:5])}, "population"),
    ("population label beyond", {"population": (X[:5], _with(Y[:5], 0, 9))}, "population"),
    ("not a module", {"model": lambda x: x}, "model"),
    ("a model with one output", {"model": nn.Linear(FEATURES, 1)}, "model"),
    ("unknown attack", {"attacks": ["mia_nope"]}, "attacks"),
    ("attacks not names", {"attacks": [3]}, "attacks"),
    ("no attack", {"attacks": []}, "attacks"),
    ("a canary audit", {"attacks": ["dp_audit_all_iterates"]}, "attacks"),
    ("attribute inference without the attribute", {"attacks": ["attribute_inference"]},
     "attacks"),
    ("the attribute's values in other units than the inputs",
     {"attacks": ["attribute_inference"], "population": (X, Y),
      "sensitive": SensitiveAttribute("s", (0,), np.array([[-1.0], [1.0]]), ("s0", "s1"))},
     "sensitive"),
    ("unknown setting", {"settings": {"mia_threshold": {"nope": 1}}}, "settings"),
    ("bad setting value", {"settings": {"mia_threshold": {"metric": "nope"}}}, "settings"),
    ("settings for an unknown attack", {"settings": {"mia_nope": {}}}, "settings"),
    ("settings not a mapping", {"settings": ["mia_threshold"]}, "settings"),
    ("no reference models", {"reference_models": 0}, "reference_models"),
    ("a fractional count", {"reference_models": 2.5}, "reference_models"),
    ("a negative seed", {"seed": -1}, "seed"),
    ("delta of 1", {"delta": 1.0}, "delta"),
    ("NaN delta", {"delta": float("nan")}, "delta"),
    ("negative claimed epsilon", {"claimed_epsilon": -1.0, "delta": 1e-5}, "claimed_epsilon"),
    ("a claim without delta", {"claimed_epsilon": 1.0}, "delta"),
    ("an unknown device", {"device": "warp-drive"}, "device"),
    ("a factory that is not callable", {"reference_factory": 3}, "reference_factory"),
    ("a factory returning another thing", {"attacks": ["mia_lira"], "reference_models": 2,
                                           "reference_factory": lambda s, k: "model"},
     "reference_factory"),
    ("reference_dir without a factory", {"reference_dir": "refs"}, "reference_dir"),
    ("reference_key not text", {"reference_key": 3, "reference_factory": _factory,
                                "reference_dir": "refs"}, "reference_key"),
]


@pytest.mark.parametrize(("changes", "argument"), [case[1:] for case in AUDIT_CASES],
                         ids=[case[0] for case in AUDIT_CASES])
def test_audit_names_the_bad_argument(
    changes: dict[str, Any], argument: str, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # reference_dir cases write nothing, but stay in tmp_path
    with pytest.raises(ValueError) as raised:
        _audit(**changes)
    assert isinstance(raised.value, AuditMLError)
    assert f"`{argument}`" in str(raised.value), str(raised.value)
    assert "\n" not in str(raised.value)


def test_too_few_members_are_refused_before_reference_models_train() -> None:
    calls: list[int] = []

    def factory(train_set: ArrayDataset, seed: int) -> nn.Module:
        calls.append(seed)
        return _model()

    with pytest.raises(ValueError, match=r"^`members` has 1 example; a membership attack needs "
                       r"at least 2 members and 2 non-members"):
        _audit(members=(X[:1], Y[:1]), attacks=["mia_lira"], reference_factory=factory,
               reference_models=2)
    assert calls == []


def _private() -> tuple[PrivacyEngine, nn.Module, Any, Any]:
    torch.manual_seed(0)
    data = TensorDataset(torch.randn(40, FEATURES), torch.randint(0, CLASSES, (40,)))
    engine, plain = PrivacyEngine(), _model()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model, optimizer, loader = engine.make_private(
            module=plain, optimizer=torch.optim.SGD(plain.parameters(), lr=0.1),
            data_loader=torch.utils.data.DataLoader(data, batch_size=10),
            noise_multiplier=1.0, max_grad_norm=1.0,
        )
    return engine, model, optimizer, loader


def _trained_audit() -> tuple[PrivacyEngine, CanaryAudit]:
    engine, model, optimizer, loader = _private()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        audit = CanaryAudit(optimizer, count=20, seed=0)
    for xb, yb in loader:
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(xb), yb).backward()
        optimizer.step()
    return engine, audit


def _canary(**changes: Any) -> Callable[[], object]:
    def call() -> object:
        _, _, optimizer, _ = _private()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return CanaryAudit(optimizer, **{"count": 20, **changes})
    return call


def _result(*args: Any, **changes: Any) -> Callable[[], object]:
    def call() -> object:
        engine, audit = _trained_audit()
        return audit.result(*(engine if arg == "ENGINE" else arg for arg in args), **changes)
    return call


def _saved(path: Any, **changes: Any) -> Callable[[], object]:
    def call() -> object:
        engine, audit = _trained_audit()
        return audit.result(engine, delta=1e-5).save(path, **changes)
    return call


CANARY_CASES: list[tuple[str, Callable[[], object], str]] = [
    ("a plain optimizer", lambda: CanaryAudit(torch.optim.SGD(_model().parameters(), lr=0.1)),
     "optimizer"),
    ("no canaries", _canary(count=0), "count"),
    ("a fractional count", _canary(count=2.5), "count"),
    ("an unknown direction", _canary(direction="sideways"), "direction"),
    ("a negative seed", _canary(seed=-1), "seed"),
    ("a rate of 0", _canary(sample_rate=0.0), "sample_rate"),
    ("a rate above 1", _canary(sample_rate=1.5), "sample_rate"),
    ("a dataset size of 0", _canary(dataset_size=0), "dataset_size"),
    ("a loader that is a list", _canary(data_loader=[1, 2]), "data_loader"),
    ("a model that is text", _canary(model="net"), "model"),
    ("an engine that is not one", _canary(privacy_engine=object()), "privacy_engine"),
    ("a canary norm of 0", _canary(canary_norm=0.0), "canary_norm"),
    ("delta of 0", _result("ENGINE", delta=0), "delta"),
    ("delta of 1", _result("ENGINE", delta=1.0), "delta"),
    ("no delta", _result("ENGINE"), "delta"),
    ("no engine", _result(delta=1e-5), "privacy_engine"),
    ("an unknown threat model", _result("ENGINE", delta=1e-5, threat_model="x"),
     "threat_model"),
    # Found by QA: each was an error from Opacus, torch or pydantic that named no argument.
    ("more dirac canaries than weights", _canary(count=5000), "count"),
    ("more canaries than allowed", _canary(count=10**6, direction="random_direction"), "count"),
    ("a delta of 1e-300", _result("ENGINE", delta=1e-300), "delta"),
    ("a path that is a number", _saved(123), "path"),
    ("a name that is a number", _saved("out", name=5), "name"),
]


@pytest.mark.parametrize("call", [case[1] for case in CANARY_CASES],
                         ids=[case[0] for case in CANARY_CASES])
def test_canary_audit_names_the_bad_argument(call: Callable[[], object]) -> None:
    argument = next(case[2] for case in CANARY_CASES if case[1] is call)
    with pytest.raises(ValueError) as raised:
        call()
    assert isinstance(raised.value, AuditMLError)
    assert f"`{argument}`" in str(raised.value), str(raised.value)
    assert "\n" not in str(raised.value)


def test_numpy_integers_are_integers() -> None:
    """``count=np.int64(100)`` (from a sweep over a numpy array) was refused as not an integer."""
    import numpy as np

    audit = _canary(count=np.int64(20), seed=np.int64(3))()
    assert isinstance(audit, CanaryAudit) and audit.canaries.count == 20
