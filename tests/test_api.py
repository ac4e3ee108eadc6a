"""auditml.audit: any nn.Module, the caller's data, the same attacks and metrics."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

import auditml
from auditml.attacks import MissingResourceError
from auditml.attacks.rmia import OFFLINE_A_CANDIDATES
from auditml.data import ArrayDataset
from auditml.errors import AuditMLError


def _memorising_model(x: torch.Tensor, y: torch.Tensor) -> nn.Module:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(x.shape[1], 64), nn.ReLU(), nn.Linear(64, 3))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(300):
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()
    return model


@pytest.fixture(scope="module")
def data() -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(1)
    # Random labels: only memorisation fits the members, so membership is visible.
    return torch.randn(200, 8, generator=generator), torch.randint(
        0, 3, (200,), generator=generator
    )


def test_audit_any_module_on_tensors(
    data: tuple[torch.Tensor, torch.Tensor], tmp_path: Path
) -> None:
    x, y = data
    model = _memorising_model(x[:100], y[:100])
    results = auditml.audit(model, (x[:100], y[:100]), (x[100:], y[100:]))
    threshold = results.attacks["mia_threshold"]
    assert threshold.metrics.auc > 0.75
    assert threshold.scores.shape == (200,)
    assert "mia_threshold" in results.summary() and "100 members" in results.summary()
    # Bracketed text is printed as it is, never read as rich markup (it was dropped).
    assert "[low, high]: 95% bootstrap (BCa) interval" in results.summary()
    written = tmp_path / "audit.json"
    payload = json.loads(results.to_json(written))
    assert payload == json.loads(written.read_text())
    assert payload["mia_threshold"]["metrics"]["auc"] == threshold.metrics.auc


def test_inputs_as_dataset_arrays_or_tensors_agree(data: tuple[torch.Tensor, torch.Tensor]) -> None:
    x, y = data
    model = _memorising_model(x[:100], y[:100])
    from_tensors = auditml.audit(model, (x[:100], y[:100]), (x[100:], y[100:]))
    from_datasets = auditml.audit(
        model,
        TensorDataset(x[:100], y[:100]),
        ArrayDataset(x[100:].numpy(), y[100:].numpy()),
    )
    np.testing.assert_allclose(
        from_tensors.attacks["mia_threshold"].scores, from_datasets.attacks["mia_threshold"].scores
    )


def test_attacks_that_need_reference_models_say_so(data: tuple[torch.Tensor, torch.Tensor]) -> None:
    x, y = data
    needs_reference = [
        name
        for name in auditml.attacks.ATTACKS.available()
        if "reference" in auditml.attacks.ATTACKS.get(name).requires
    ]
    if not needs_reference:
        pytest.skip("no registered attack needs reference models")
    with pytest.raises(MissingResourceError, match="needs reference"):
        auditml.audit(
            nn.Linear(8, 3), (x[:10], y[:10]), (x[10:20], y[10:20]), attacks=[needs_reference[0]]
        )


def test_bad_inputs(data: tuple[torch.Tensor, torch.Tensor]) -> None:
    x, y = data
    with pytest.raises(AuditMLError, match="`members` needs as many labels as inputs"):
        auditml.audit(nn.Linear(8, 3), (x[:10], y[:9]), (x[10:20], y[10:20]))
    with pytest.raises(AuditMLError, match="`nonmembers` must be"):
        auditml.audit(nn.Linear(8, 3), (x[:10], y[:10]), x[10:20])  # type: ignore[arg-type]
    with pytest.raises(AuditMLError, match="unknown attack"):
        auditml.audit(nn.Linear(8, 3), (x[:10], y[:10]), (x[10:20], y[10:20]), attacks=["nope"])


@pytest.mark.parametrize(("labels", "words"), [
    (torch.tensor([0, 1, 2, -1] * 5), r"`members` labels must be one non-negative whole number"
                                      r".* holding \[-1\]"),
    (torch.full((20,), 0.5), r"`members` labels .* holding \[0.5\]"),
    (torch.tensor([0, 1, 2, 5] * 5), r"`members` has label 5, but the model has 3 outputs"),
])
def test_labels_that_are_not_class_indices_are_refused_naming_the_argument(
    data: tuple[torch.Tensor, torch.Tensor], labels: torch.Tensor, words: str,
) -> None:
    """Negative, fractional and out-of-range labels were accepted, or an IndexError deep in an
    attack (issue 25)."""
    x, y = data
    with pytest.raises(AuditMLError, match=words):
        auditml.audit(nn.Linear(8, 3), (x[:20], labels), (x[20:40], y[20:40]))
    with pytest.raises(AuditMLError, match="`nonmembers` inputs hold NaN"):
        auditml.audit(nn.Linear(8, 3), (x[:20], y[:20]), (x[20:40] * float("nan"), y[20:40]))


def test_one_attack_can_be_named_as_a_string(data: tuple[torch.Tensor, torch.Tensor]) -> None:
    x, y = data  # a str was iterated: "unknown attack 'm'"
    results = auditml.audit(nn.Linear(8, 3), (x[:20], y[:20]), (x[20:40], y[20:40]),
                            attacks="mia_threshold")
    assert list(results.attacks) == ["mia_threshold"]


def test_reference_models_with_other_outputs_are_refused(
    data: tuple[torch.Tensor, torch.Tensor],
) -> None:
    x, y = data

    def five_classes(train_set: ArrayDataset, seed: int) -> nn.Module:
        return nn.Linear(8, 5)

    with pytest.raises(AuditMLError, match=r"`reference_factory` returned a model with 5 "
                       r"outputs; the audited model has 3"):
        auditml.audit(nn.Linear(8, 3), (x[:20], y[:20]), (x[20:40], y[20:40]),
                      attacks=["mia_lira"], reference_factory=five_classes, reference_models=2)


def test_rmia_records_how_it_chose_a(data: tuple[torch.Tensor, torch.Tensor]) -> None:
    x, y = data

    def factory(train_set: ArrayDataset, seed: int) -> nn.Module:
        return _memorising_model(torch.from_numpy(train_set.x), torch.from_numpy(train_set.y))

    results = auditml.audit(
        factory(ArrayDataset(x[:60].numpy(), y[:60].numpy()), 0),
        (x[:60], y[:60]), (x[60:120], y[60:120]), population=(x[120:], y[120:]),
        attacks=["mia_rmia"], reference_factory=factory, reference_models=4,
        settings={"mia_rmia": {"mode": "offline"}},  # auto would be online with 4 paired models
    )
    fitted = results.attacks["mia_rmia"].payload["fitted"]
    assert fitted["mode"] == "offline" and fitted["mode_reason"] == "as configured"
    assert fitted["a_source"] == "tuned"
    # Every candidate was scored, and the chosen a is one of them.
    assert [float(a) for a in fitted["auc_by_a"]] == list(OFFLINE_A_CANDIDATES)
    assert fitted["a"] in OFFLINE_A_CANDIDATES
    # The tuned a has the best AUC on the played reference model (the smallest a on ties).
    best = max(fitted["auc_by_a"].values())
    assert fitted["auc_by_a"][repr(fitted["a"])] == best
    assert all(float(a) >= fitted["a"] for a, auc in fitted["auc_by_a"].items() if auc == best)


def test_auditml_audit_is_the_function_even_after_the_subpackage_is_imported() -> None:
    """``help(auditml.audit)`` documents the function, not the audit package, and importing the
    package's modules by name (before and after) neither replaces it nor fails."""
    import inspect
    import pydoc
    import subprocess
    import sys

    import auditml.api

    script = (
        "import inspect, pydoc, sys, auditml\n"
        "assert 'auditml.api' not in sys.modules  # still lazy\n"
        "first = auditml.audit\n"
        "import auditml.audit.core\n"
        "from auditml.audit.core import run_attacks\n"
        "from auditml.audit import runner\n"
        "import auditml.audit.plan\n"
        "assert auditml.audit is first, auditml.audit\n"
        "print(inspect.isfunction(auditml.audit), run_attacks.__module__, runner.__name__)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["True", "auditml.audit.core", "auditml.audit.runner"]
    # In this process the audit package was imported long ago (conftest, other tests).
    assert "auditml.audit.core" in sys.modules
    assert auditml.audit is auditml.api.audit
    assert inspect.signature(auditml.audit) == inspect.signature(auditml.api.audit)
    assert "nonmembers" in str(inspect.signature(auditml.audit))
    shown = pydoc.render_doc(auditml.audit, renderer=pydoc.plaintext)
    assert "function audit in module auditml.api" in shown and "reference_factory" in shown


def test_the_callers_training_mode_is_restored(data: tuple[torch.Tensor, torch.Tensor]) -> None:
    """The model is attacked in eval mode; a model in training mode was left in eval mode."""
    x, y = data
    model = nn.Sequential(nn.Linear(8, 16), nn.Dropout(0.5), nn.Linear(16, 3))
    for training in (True, False):
        model.train(training)
        auditml.audit(model, (x[:20], y[:20]), (x[20:40], y[20:40]), progress=False)
        assert model.training is training
        assert all(module.training is training for module in model.modules())
