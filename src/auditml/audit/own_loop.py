"""Audit your own Opacus training loop: ``auditml.CanaryAudit(optimizer, count=1000, seed=0)``.

Wrap the ``DPOptimizer`` that ``PrivacyEngine.make_private`` returned, train as usual, then ask
for the result with the same privacy engine::

    audit = auditml.CanaryAudit(optimizer, count=1000, seed=0)
    ...your ordinary training loop...
    result = audit.result(privacy_engine, delta=1e-5)
    result.epsilon_lower_bound, result.claimed_epsilon, result.violation

The audit adds m gradient canaries inside the optimiser's step — each included by a recorded
fair coin, Poisson-sampled at the loop's own rate, added to the clipped sum before the noise —
and records the noisy sums (:mod:`auditml.training.gradient_canaries`); nothing else the
optimiser or the accountant does changes. ``result`` runs the white-box audit of the chosen
threat model (:mod:`auditml.audit.canaries.white_box`) against the curve the engine's own
accountant claims.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import torch

from auditml.audit.canaries.base import CanaryEvidence, PrivacyClaim
from auditml.audit.canaries.white_box import AllIteratesAudit, LastIterateAudit
from auditml.errors import AuditMLError
from auditml.gradient_canary_record import GradientCanaryRecord
from auditml.records import CanaryRecord, RunFacts
from auditml.training.clipping_probe import ClippingProbe, attach_through_clipping
from auditml.training.gradient_canaries import GradientCanaries, attach_to_dp_optimizer

_THREAT_MODELS = {"all_iterates": AllIteratesAudit, "last_iterate": LastIterateAudit}


@dataclass(frozen=True)
class CanaryAuditResult:
    """``epsilon_lower_bound`` (Steinke et al., at ``record.confidence``), the accountant's
    ``claimed_epsilon`` at the same δ, and ``violation``: the audit contradicts the claim
    (the f-DP test of the claimed curve or the bound; together at 95% confidence)."""

    epsilon_lower_bound: float
    claimed_epsilon: float
    violation: bool
    threat_model: str
    record: CanaryRecord


class CanaryAudit:
    """Gradient canaries inside a user's Opacus ``DPOptimizer``; see the module docstring.

    ``sample_rate`` is the loop's Poisson sampling rate; by default it is read from the step hook
    that ``PrivacyEngine.make_private`` attached to the optimiser (pass it when that fails).
    ``dataset_size`` (the number of examples the loader samples from, ``len(dataset)``) lets
    the audit check the loop's real sampling rate against the accountant's, from the batch
    sizes it sees (hooks mode); without it that check is skipped.

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
        through_clipping: bool = False,
        canary_norm: float = 10.0,
    ) -> None:
        if dataset_size is not None and (
            isinstance(dataset_size, bool) or not isinstance(dataset_size, int) or dataset_size < 1
        ):
            raise AuditMLError(f"dataset_size must be a positive integer (len(dataset)), got "
                               f"{dataset_size!r}")
        for needed in ("add_noise", "noise_multiplier", "max_grad_norm", "params"):
            if not hasattr(optimizer, needed):
                raise AuditMLError(
                    "CanaryAudit needs the Opacus DPOptimizer that PrivacyEngine.make_private "
                    f"returned (this {type(optimizer).__name__} has no {needed!r})"
                )
        rate = sample_rate if sample_rate is not None else _hooked_sample_rate(optimizer)
        self.canaries = GradientCanaries(
            list(optimizer.params),  # type: ignore[attr-defined]
            count=count,
            direction=direction,  # type: ignore[arg-type]
            max_grad_norm=float(optimizer.max_grad_norm),  # type: ignore[attr-defined]
            sample_rate=rate,
            noise_multiplier=float(optimizer.noise_multiplier),  # type: ignore[attr-defined]
            seed=seed,
            dataset_size=dataset_size or 0,
        )
        self.probe: ClippingProbe | None = None
        if through_clipping:
            self.probe = ClippingProbe(
                list(optimizer.params), seed=seed,  # type: ignore[attr-defined]
                max_grad_norm=float(optimizer.max_grad_norm),  # type: ignore[attr-defined]
            )
            self.detach = attach_through_clipping(optimizer, self.canaries, self.probe,
                                                  canary_norm=canary_norm)
        else:
            self.detach = attach_to_dp_optimizer(optimizer, self.canaries)

    def result(
        self, privacy_engine: Any, delta: float, *, threat_model: str = "all_iterates"
    ) -> CanaryAuditResult:
        """Audit what the loop did so far against ``privacy_engine``'s accountant at ``delta``."""
        if threat_model not in _THREAT_MODELS:
            raise AuditMLError(
                f"threat_model must be one of {', '.join(_THREAT_MODELS)}, got {threat_model!r}"
            )
        accountant = privacy_engine.accountant
        if not accountant.history:
            raise AuditMLError("the privacy engine's accountant has no steps: train, then ask")
        claimed = float(accountant.get_epsilon(delta=delta))
        claim = PrivacyClaim(
            accountant=accountant.mechanism(), history=list(accountant.history),
            epsilon=claimed, delta=delta,
        )
        evidence = CanaryEvidence(
            model=None, device=torch.device("cpu"), delta=delta,
            run_facts=RunFacts(experiment_name="own loop", dp_enabled=True, epsilon=claimed,
                               delta=delta),
            gradient_canaries=self._record(), claim=claim,
        )
        record = _THREAT_MODELS[threat_model]().run(evidence)
        return CanaryAuditResult(
            epsilon_lower_bound=record.epsilon_lower_bound, claimed_epsilon=claimed,
            violation=bool(record.violation), threat_model=threat_model, record=record,
        )

    def _record(self) -> GradientCanaryRecord:
        record = self.canaries.record()
        if self.probe is None:
            return record
        probe, probe_sampled = self.probe.arrays()
        return dataclasses.replace(record, probe=probe, probe_sampled=probe_sampled)


def _hooked_sample_rate(optimizer: torch.optim.Optimizer) -> float:
    """The sampling rate PrivacyEngine gave the accountant's step hook (Opacus 1.5-1.6)."""
    hook = getattr(optimizer, "step_hook", None)
    closure = getattr(hook, "__closure__", None) or ()
    names = getattr(getattr(hook, "__code__", None), "co_freevars", ())
    values = dict(zip(names, (cell.cell_contents for cell in closure), strict=False))
    rate = values.get("sample_rate")
    if not isinstance(rate, float | int) or not 0 < rate <= 1:
        raise AuditMLError(
            "CanaryAudit could not read the sampling rate from the optimiser (attach it after "
            "PrivacyEngine.make_private, or pass sample_rate=1/len(data_loader))"
        )
    return float(rate)
