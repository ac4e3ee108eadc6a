"""Audit your own Opacus training loop: ``auditml.CanaryAudit(optimizer, model=model,
data_loader=loader, privacy_engine=privacy_engine)``.

Wrap the ``DPOptimizer`` that ``PrivacyEngine.make_private`` returned, train as usual, then ask
for the result with the same privacy engine::

    audit = auditml.CanaryAudit(optimizer, model=model, data_loader=loader,
                                privacy_engine=privacy_engine)
    ...your ordinary training loop...
    result = audit.result(privacy_engine, delta=1e-5)
    result.epsilon_lower_bound, result.claimed_epsilon, result.verdict, result.failed_checks

The audit adds m gradient canaries inside the optimiser's step — each included by a recorded
fair coin, Poisson-sampled at the loop's own rate, added to the clipped sum before the noise —
and records the noisy sums (:mod:`auditml.training.gradient_canaries`); nothing else the
optimiser or the accountant does changes. It also watches what the accountant assumes of the
loop (:mod:`auditml.audit.canaries.assumptions`): each step's real batch size and the divisor of
its noisy sum; given the ``model``, ``data_loader`` and ``privacy_engine``, the loader's sampling,
the model's layers and a first-batch probe (:mod:`auditml.training.loop_inspection`), and what
can be seen before the first step is said then, one line each (:class:`AssumptionWarning`).
``result`` runs the white-box audit of the chosen threat model
(:mod:`auditml.audit.canaries.white_box`) against the curve the engine's own accountant claims,
with every assumption checked.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from auditml.audit.canaries.assumptions import attach_time_findings
from auditml.audit.canaries.base import CanaryEvidence, PrivacyClaim
from auditml.audit.canaries.white_box import AllIteratesAudit, LastIterateAudit
from auditml.config import MIN_DELTA
from auditml.errors import ArgumentError, AuditMLError
from auditml.gradient_canary_record import GradientCanaryRecord
from auditml.metrics.dp.accounting import spent_epsilon
from auditml.metrics.dp.violation import claim_word
from auditml.records import (
    AssumptionCheck,
    CanaryRecord,
    GaussianBoundRecord,
    HiddenStateProbe,
    RunFacts,
)
from auditml.training.clipping_probe import ClippingProbe, attach_through_clipping
from auditml.training.gradient_canaries import (
    DIRECTIONS,
    MAX_CANARIES,
    GradientCanaries,
    attach_to_dp_optimizer,
)
from auditml.training.loop_inspection import LoopInspector, static_facts

_THREAT_MODELS = {"all_iterates": AllIteratesAudit, "last_iterate": LastIterateAudit}
_DIRECTIONS = DIRECTIONS


class AssumptionWarning(UserWarning):
    """What :class:`CanaryAudit` sees wrong with a loop before its first step (one line each)."""


@dataclass(frozen=True)
class CanaryAuditResult:
    """``epsilon_lower_bound`` (Steinke et al., at ``record.confidence``), the accountant's
    ``claimed_epsilon`` at the same δ, and ``violation``: the claim fails, at 95 % confidence
    together — the audit contradicts the claimed curve (the f-DP test of the claimed curve or
    the mechanism check) or the loop broke an assumption of the accountant (``failed_checks``
    names them; ``checks`` holds every check, with what it saw)."""

    epsilon_lower_bound: float
    claimed_epsilon: float
    violation: bool
    threat_model: str
    record: CanaryRecord
    # What save() keeps beside the record: the canaries' observations, the model's class name.
    evidence: GradientCanaryRecord | None = field(default=None, repr=False, compare=False)
    arch: str | None = field(default=None, repr=False, compare=False)

    def save(self, path: str | Path, *, name: str | None = None) -> Path:
        """Write the audit as a run directory at ``path`` that ``auditml report`` reads like
        the canary audit of a trained run, and ``auditml compare --dp-audit`` shows beside
        runs: its :class:`~auditml.records.CanaryRecord`, the canaries' observations
        (``gradient_canaries.npz``) and ``model.json`` saying what is known of the model (the
        engine's claim; no accuracy, no dataset). ``name`` (default: the directory's name)
        names it in reports. ``path`` must be new, empty, or an earlier save (replaced whole);
        anything else is refused and left untouched. Returns ``path``."""
        from auditml.audit.saved import save_audit, with_run_facts
        from auditml.records import AuditedModelRecord, Versions

        if not isinstance(path, str | Path):
            raise ArgumentError(f"`path` must be a directory path (str or Path), got a "
                                f"{type(path).__name__}")
        if name is not None and (not isinstance(name, str) or not name.strip()):
            raise ArgumentError(f"`name` must be a non-empty str (the audit's name in reports), "
                                f"got {name!r}")
        destination = Path(path)
        model = AuditedModelRecord(
            source="CanaryAudit", experiment_name=name or destination.resolve().name,
            arch=self.arch, dp_enabled=True, epsilon=self.claimed_epsilon,
            delta=self.record.delta, versions=Versions.current(),
        )
        return save_audit(
            destination, model,
            lambda run, facts: run.write_canary(self.record.attack,
                                                with_run_facts(self.record, facts)),
            gradient_canaries=self.evidence,
        )

    @property
    def checks(self) -> tuple[AssumptionCheck, ...]:
        """Every assumption of the accountant, checked (the record's)."""
        return tuple(self.record.assumptions or ())

    @property
    def failed_checks(self) -> tuple[str, ...]:
        """The assumptions of the accountant the loop broke."""
        return tuple(self.record.failed_checks)

    @property
    def gaussian_bound(self) -> GaussianBoundRecord | None:
        """The ε lower bound under the Gaussian assumption (the record's, with its normality
        and equal-variance p-values): reported beside ``violation``, never part of it."""
        return self.record.gaussian_bound

    @property
    def unchecked_checks(self) -> tuple[str, ...]:
        """The assumptions of the accountant the audit could not check (their objects were not
        given): without a contradiction the claim is then "not verified", never "consistent"."""
        return tuple(self.record.unchecked_checks)

    @property
    def claim_applies(self) -> bool | None:
        """False when the mechanism that ran is not the one the accountant analysed; None when
        that is not known (some assumptions were not checked: :attr:`unchecked_checks`); True
        when every assumption was checked and held."""
        if any(check.finding == "not_applicable" for check in self.checks):
            return False
        return None if self.unchecked_checks else True

    @property
    def verdict(self) -> str:
        """"VIOLATION", "consistent" (no contradiction, every assumption checked), or "not
        verified (not checked: ...)" (no contradiction, some assumptions not checked)."""
        return claim_word(violated=self.violation, unchecked=self.unchecked_checks)


class CanaryAudit:
    """Gradient canaries inside a user's Opacus ``DPOptimizer``; see the module docstring.

    ``sample_rate`` is the loop's Poisson sampling rate; by default it is read from the step hook
    that ``PrivacyEngine.make_private`` attached to the optimiser (pass it when that fails).
    ``data_loader`` is the loader the loop iterates (the one ``make_private`` returned): its
    sampler is checked, and its dataset's size lets the audit check the real sampling rate
    from the batch sizes it sees; ``dataset_size`` (``len(dataset)``) does the latter alone.
    ``model`` (the module ``make_private`` returned) lets the audit check the model's hidden
    state (layers that mix examples, buffers updated from the data) and count the batch sizes
    where the optimiser keeps no per-example rows (ghost clipping). ``privacy_engine`` lets it
    check the noise source and the accountant at once; ``result`` takes it as well.
    Checks whose object is not given are reported as not checked.

    ``through_clipping=True`` (``grad_sample_mode="hooks"``, Dirac canaries) puts the canaries
    through the optimiser's own per-example clipping, as rows of norm ``canary_norm`` clipped
    after the real examples' gradients (as a further micro-batch), with the clipping probe
    that catches a clipping of the summed gradient (:mod:`auditml.training.clipping_probe`).
    By default they join the clipped sum, which tests the noise and the sampling but takes the
    clipping on trust.
    """

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        count: int = 1000,
        *,
        seed: int = 0,
        direction: str = "dirac",
        sample_rate: float | None = None,
        dataset_size: int | None = None,
        data_loader: Any = None,
        model: nn.Module | None = None,
        privacy_engine: Any = None,
        through_clipping: bool = False,
        canary_norm: float = 10.0,
    ) -> None:
        _check_settings(count=count, seed=seed, direction=direction, sample_rate=sample_rate,
                        dataset_size=dataset_size, canary_norm=canary_norm)
        for needed in ("add_noise", "noise_multiplier", "max_grad_norm", "params"):
            if not hasattr(optimizer, needed):
                raise ArgumentError(
                    "`optimizer`: CanaryAudit needs the Opacus DPOptimizer that "
                    "PrivacyEngine.make_private returned (this "
                    f"{type(optimizer).__name__} has no {needed!r})"
                )
        from opacus.optimizers import AdaClipDPOptimizer

        if isinstance(optimizer, AdaClipDPOptimizer):
            # Its clipping norm moves every step (and its noise with it): a schedule, which the
            # canaries and the mechanism check would judge as if C were fixed (result refuses).
            raise ArgumentError(
                "`optimizer`: CanaryAudit assumes one clipping norm for the whole run, and "
                "Opacus's adaptive clipping (make_private(clipping='adaptive')) changes it every "
                "step: audit the loop with clipping='flat' or 'per_layer'"
            )
        if data_loader is not None and not hasattr(data_loader, "batch_sampler"):
            raise ArgumentError(f"`data_loader` must be the torch DataLoader the loop iterates, "
                                f"got a {type(data_loader).__name__}")
        if model is not None and not isinstance(model, nn.Module):
            raise ArgumentError(f"`model` must be the torch.nn.Module the loop trains, got a "
                                f"{type(model).__name__}")
        if privacy_engine is not None and not hasattr(privacy_engine, "accountant"):
            raise ArgumentError(f"`privacy_engine` must be the opacus PrivacyEngine that made "
                                f"the optimiser private, got a {type(privacy_engine).__name__}")
        self.privacy_engine = privacy_engine
        self.optimizer = optimizer
        self.arch = None if model is None else type(getattr(model, "_module", model)).__name__
        self.facts = static_facts(
            model=model, loader=data_loader,
            secure_rng=None if privacy_engine is None else bool(privacy_engine.secure_mode),
            clipping="through" if through_clipping else "after",
        )
        rate = sample_rate if sample_rate is not None else _hooked_sample_rate(
            optimizer, self.facts.loader_rate)
        weights = sum(p.numel() for p in optimizer.params)  # type: ignore[attr-defined]
        if direction == "dirac" and count > weights:
            raise ArgumentError(
                f"`count`: {count} dirac canaries need as many trainable weights, and the model "
                f"has {weights}: pass fewer, or direction='random_direction'"
            )
        self.canaries = GradientCanaries(
            list(optimizer.params),  # type: ignore[attr-defined]
            count=int(count),
            direction=direction,  # type: ignore[arg-type]
            max_grad_norm=float(optimizer.max_grad_norm),  # type: ignore[attr-defined]
            sample_rate=rate,
            noise_multiplier=float(optimizer.noise_multiplier),  # type: ignore[attr-defined]
            seed=int(seed),
            dataset_size=int(dataset_size or self.facts.dataset_size or 0),
        )
        self.inspector = (None if model is None else LoopInspector(
            model, tracked=list(optimizer.params)))  # type: ignore[attr-defined]
        self.probe: ClippingProbe | None = None
        if through_clipping:
            self.probe = ClippingProbe(
                list(optimizer.params), seed=seed,  # type: ignore[attr-defined]
                max_grad_norm=float(optimizer.max_grad_norm),  # type: ignore[attr-defined]
            )
            detach = attach_through_clipping(optimizer, self.canaries, self.probe,
                                             canary_norm=canary_norm)
        else:
            detach = attach_to_dp_optimizer(
                optimizer, self.canaries,
                rows=self.inspector.take_rows if self.inspector is not None else None,
            )

        def detach_all() -> None:
            detach()
            if self.inspector is not None:
                self.inspector.close()

        self.detach = detach_all
        accountant = None if privacy_engine is None else privacy_engine.accountant.mechanism()
        for line in attach_time_findings(self.facts, accountant=accountant,
                                         accounted_rate=rate):
            warnings.warn(f"auditml: {line}", AssumptionWarning, stacklevel=2)
        missing = [name for name, given in (("model", model), ("data_loader", data_loader),
                                            ("privacy_engine", privacy_engine)) if given is None]
        if missing:
            warnings.warn(
                f"auditml: without {', '.join(f'{name}=' for name in missing)} some of the "
                "accountant's assumptions cannot be checked, so the result can at best be \"not "
                "verified\", never \"consistent\": pass what make_private returned",
                AssumptionWarning, stacklevel=2,
            )

    def result(
        self, privacy_engine: Any = None, delta: float | None = None, *,
        threat_model: str = "all_iterates",
    ) -> CanaryAuditResult:
        """Audit what the loop did so far against ``privacy_engine``'s accountant at ``delta``
        (the engine given to the constructor when None)."""
        if threat_model not in _THREAT_MODELS:
            raise ArgumentError(
                f"`threat_model` must be one of {', '.join(_THREAT_MODELS)}, got {threat_model!r}"
            )
        engine = privacy_engine if privacy_engine is not None else self.privacy_engine
        if engine is None or not hasattr(engine, "accountant"):
            raise ArgumentError("`privacy_engine`: pass the opacus PrivacyEngine that made the "
                                "optimiser private (audit.result(privacy_engine, delta=1e-5))")
        if delta is None or isinstance(delta, bool) or not isinstance(delta, float | int) or not (
                MIN_DELTA <= delta < 1):
            raise ArgumentError(f"`delta` must be in [{MIN_DELTA:g}, 1), got {delta!r}")
        accountant = engine.accountant
        if not accountant.history:
            raise AuditMLError("the privacy engine's accountant has no steps: train, then ask")
        self._check_one_setting(accountant.history)
        claimed = spent_epsilon(accountant, delta)
        claim = PrivacyClaim(
            accountant=accountant.mechanism(), history=list(accountant.history),
            epsilon=claimed, delta=float(delta),
        )
        evidence = CanaryEvidence(
            model=None, device=torch.device("cpu"), delta=float(delta),
            run_facts=RunFacts(experiment_name="own loop", dp_enabled=True, epsilon=claimed,
                               delta=float(delta)),
            gradient_canaries=self._record(), claim=claim,
        )
        record = _THREAT_MODELS[threat_model]().run(evidence)
        return CanaryAuditResult(
            epsilon_lower_bound=record.epsilon_lower_bound, claimed_epsilon=claimed,
            violation=bool(record.violation), threat_model=threat_model, record=record,
            evidence=evidence.gradient_canaries, arch=self.arch,
        )

    def _check_one_setting(self, history: list[tuple[float, float, int]]) -> None:
        """Refuse a loop whose noise multiplier or clipping norm changed after the audit was
        attached: the canaries have the norm C of that moment and the mechanism check compares
        the measured noise with its σ, so their numbers would be wrong (a clipping norm lowered
        to C/4 makes every canary four times an example's reach; a σ lowered on schedule reads
        as missing noise)."""
        canaries = self.canaries
        sigmas = sorted({float(entry[0]) for entry in history})
        if any(not math.isclose(sigma, canaries.noise_multiplier, rel_tol=1e-9)
               for sigma in sigmas):
            used = ", ".join(f"{sigma:g}" for sigma in sigmas)
            raise AuditMLError(
                f"the accountant's steps have noise multipliers {used}, not only the "
                f"{canaries.noise_multiplier:g} the optimiser had when CanaryAudit "
                "was attached: this audit's canaries and mechanism check assume one noise "
                "multiplier and clipping norm for the whole run; audit the loop without the "
                "schedule"
            )
        clipping = float(self.optimizer.max_grad_norm)  # type: ignore[attr-defined]
        if not math.isclose(clipping, canaries.max_grad_norm, rel_tol=1e-9):
            raise AuditMLError(
                f"the optimiser's max_grad_norm is {clipping:g}, not the "
                f"{canaries.max_grad_norm:g} it had when CanaryAudit was attached: the canaries "
                "have that norm, so against another clipping norm their bounds are wrong; audit "
                "the loop without changing max_grad_norm"
            )

    def state_dict(self) -> dict[str, Any]:
        """What the audit has recorded so far, to save with a checkpoint (``torch.save``; it
        loads with ``weights_only=True``). A resumed loop makes a new ``CanaryAudit`` with the
        same settings on its new optimiser and calls :meth:`load_state_dict`: the audit then
        covers the whole training, and its steps check compares every noisy step with what the
        resumed engine's accountant accounts (restore the accountant too:
        ``PrivacyEngine.save_checkpoint`` / ``load_checkpoint``)."""
        return {
            "canaries": self.canaries.state_dict(),
            "clipping_probe": None if self.probe is None else self.probe.state_dict(),
            "hidden_state_probe": None if self.inspector is None or self.inspector.probe is None
            else self.inspector.probe.model_dump(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Go on from a :meth:`state_dict` saved by an audit with the same settings."""
        if not isinstance(state, dict) or "canaries" not in state:
            raise AuditMLError("state: not a CanaryAudit.state_dict()")
        if (state.get("clipping_probe") is None) != (self.probe is None):
            raise AuditMLError("state: saved with another through_clipping setting")
        self.canaries.load_state_dict(state["canaries"])
        if self.probe is not None:
            self.probe.load_state_dict(state["clipping_probe"])
        saved = state.get("hidden_state_probe")
        if self.inspector is not None and saved is not None:
            self.inspector.probe = HiddenStateProbe.model_validate(saved)

    def _record(self) -> GradientCanaryRecord:
        facts = self.facts if self.inspector is None else self.inspector.facts(self.facts)
        record = dataclasses.replace(self.canaries.record(), loop_facts=facts)
        if self.probe is None:
            return record
        probe, probe_sampled = self.probe.arrays()
        return dataclasses.replace(record, probe=probe, probe_sampled=probe_sampled)


def _check_settings(*, count: object, seed: object, direction: object, sample_rate: object,
                    dataset_size: object, canary_norm: object) -> None:
    """Refuse a bad setting by name before anything is attached to the optimiser."""
    def whole(value: object) -> bool:  # numpy integers too
        return isinstance(value, numbers.Integral) and not isinstance(value, bool | np.bool_)

    def number(value: object) -> bool:
        return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(
            value)

    if not whole(count) or not 1 <= count <= MAX_CANARIES:  # type: ignore[operator]
        raise ArgumentError(f"`count` must be an integer in [1, {MAX_CANARIES:,}] (canaries), "
                            f"got {count!r}")
    if not whole(seed) or seed < 0:  # type: ignore[operator]
        raise ArgumentError(f"`seed` must be a non-negative integer, got {seed!r}")
    if direction not in _DIRECTIONS:
        raise ArgumentError(f"`direction` must be one of {', '.join(_DIRECTIONS)}, got "
                            f"{direction!r}")
    if sample_rate is not None and (not number(sample_rate) or not 0 < sample_rate <= 1):  # type: ignore[operator]
        raise ArgumentError(f"`sample_rate` must be in (0, 1] (the loop's Poisson rate), got "
                            f"{sample_rate!r}")
    if dataset_size is not None and (not whole(dataset_size) or dataset_size < 1):  # type: ignore[operator]
        raise ArgumentError(f"`dataset_size` must be a positive integer (len(dataset)), got "
                            f"{dataset_size!r}")
    if not number(canary_norm) or canary_norm <= 0:  # type: ignore[operator]
        raise ArgumentError(f"`canary_norm` must be a positive number, got {canary_norm!r}")


def _hooked_sample_rate(optimizer: torch.optim.Optimizer, loader_rate: float | None) -> float:
    """The sampling rate PrivacyEngine gave the accountant's step hook (Opacus 1.5-1.6), else
    the rate the Poisson loader draws at."""
    hook = getattr(optimizer, "step_hook", None)
    closure = getattr(hook, "__closure__", None) or ()
    names = getattr(getattr(hook, "__code__", None), "co_freevars", ())
    values = dict(zip(names, (cell.cell_contents for cell in closure), strict=False))
    rate = values.get("sample_rate", loader_rate)
    if not isinstance(rate, float | int) or not 0 < rate <= 1:
        raise AuditMLError(
            "CanaryAudit could not read the sampling rate from the optimiser (attach it after "
            "PrivacyEngine.make_private, or pass data_loader= or sample_rate=1/len(data_loader))"
        )
    return float(rate)
