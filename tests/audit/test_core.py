"""The one audit core (``run_plan``): every kind of a plan run, each kind's evidence built only
when that kind is planned, each result handed to the caller as it finishes."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import numpy as np
import pytest

from auditml.audit.canaries.base import CanaryAuditKind, CanaryEvidence
from auditml.audit.core import AuditPlan, AuditRun, MembershipEvidence, PlanEvidence, run_plan
from auditml.audit.inference.base import InferenceAudit, InferenceEvidence, InferenceOutcome
from auditml.audit.plan import plan_audit
from auditml.audit.results import BOOTSTRAP_RESAMPLES, gdp_estimate_record
from auditml.data import ArrayDataset
from auditml.metrics import gdp_estimate_interval, membership_intervals
from auditml.records import RunFacts

FACTS = RunFacts(experiment_name="core", dp_enabled=False)


def _membership() -> MembershipEvidence:
    """Forty examples whose stored outputs give members the lower loss (no model at all)."""
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, 40)
    outputs = rng.normal(size=(40, 3))
    outputs[np.arange(20), labels[:20]] += 3.0  # the members' true class stands out
    examples = rng.normal(size=(40, 4)).astype(np.float32)
    return MembershipEvidence(
        None, ArrayDataset(examples[:20], labels[:20]), ArrayDataset(examples[20:], labels[20:]),
        num_classes=3, device=None, seed=0, delta=None, run_facts=FACTS, outputs=outputs,
    )


class _Canary(CanaryAuditKind):
    name = "fake_canary"

    def run(self, evidence: CanaryEvidence) -> Any:
        return ("canary record", evidence)


class _Inference(InferenceAudit):
    name = "fake_inference"

    def run(self, evidence: InferenceEvidence) -> InferenceOutcome:
        return InferenceOutcome(("inference record", evidence))  # type: ignore[arg-type]


def _never(kind: str) -> Any:
    def build() -> Any:
        raise AssertionError(f"{kind} evidence was built, but the plan has no {kind} audit")
    return build


def test_every_kind_runs_in_order_each_result_handed_over_as_it_finishes() -> None:
    plan = plan_audit(["mia_threshold"])
    plan = AuditPlan(plan.attacks, [_Canary()], [_Inference()])
    built: list[str] = []
    events: list[str] = []

    def build(kind: str, value: Any) -> Any:
        def builder() -> Any:
            built.append(kind)
            return value
        return builder

    canary_evidence, inference_evidence = object(), object()
    done = run_plan(
        plan,
        PlanEvidence(build("membership", _membership()), build("canaries", canary_evidence),
                     build("inference", inference_evidence)),
        on_attack=lambda outcome: events.append(f"attack {outcome.attack}"),
        on_attacks_done=lambda run: events.append(f"attacks done ({len(run.outcomes)})"),
        on_canary=lambda name, record: events.append(f"canary {name}"),
        on_inference=lambda name, outcome: events.append(f"inference {name}"),
    )
    assert built == ["membership", "canaries", "inference"]  # each once, in the order run
    assert events == ["attack mia_threshold", "attacks done (1)", "canary fake_canary",
                      "inference fake_inference"]
    assert isinstance(done.attacks, AuditRun) and done.attacks.outcomes[0].metrics.auc > 0.5
    assert done.canary_audits == {"fake_canary": ("canary record", canary_evidence)}
    assert done.inference_audits["fake_inference"].record == (
        "inference record", inference_evidence)


def test_evidence_is_built_only_for_the_kinds_planned() -> None:
    done = run_plan(plan_audit(["mia_threshold"]),
                    PlanEvidence(_membership, _never("canary"), _never("inference")))
    assert done.attacks is not None and done.canary_audits == done.inference_audits == {}
    only_canaries = AuditPlan([], [_Canary()])
    done = run_plan(only_canaries, PlanEvidence(_never("membership"), lambda: "evidence"))
    assert done.attacks is None and list(done.canary_audits) == ["fake_canary"]


def test_a_planned_kind_without_evidence_is_refused_before_anything_runs() -> None:
    plan = AuditPlan(plan_audit(["mia_threshold"]).attacks, [], [_Inference()])
    with pytest.raises(ValueError, match=r"inference audits \(fake_inference\).*"
                                         r"PlanEvidence\.inference"):
        run_plan(plan, PlanEvidence(membership=_never("membership")))


def test_an_outputs_only_plan_imports_no_torch() -> None:
    # The evidence of the other kinds needs the model (and torch): never built, never imported.
    code = (
        "import sys, numpy as np\n"
        "from auditml.audit.core import MembershipEvidence, PlanEvidence, run_plan\n"
        "from auditml.audit.plan import plan_audit\n"
        "from auditml.data import ArrayDataset\n"
        "from auditml.records import RunFacts\n"
        "rng = np.random.default_rng(0)\n"
        "x, y = rng.normal(size=(20, 4)).astype(np.float32), rng.integers(0, 2, 20)\n"
        "members, nonmembers = ArrayDataset(x[:10], y[:10]), ArrayDataset(x[10:], y[10:])\n"
        "evidence = MembershipEvidence(None, members, nonmembers, num_classes=2, device=None,\n"
        "    seed=0, delta=None, run_facts=RunFacts(experiment_name='x', dp_enabled=False),\n"
        "    outputs=rng.normal(size=(20, 2)))\n"
        "fail = lambda: 1 / 0\n"
        "done = run_plan(plan_audit(['mia_threshold']), PlanEvidence(lambda: evidence, fail,\n"
        "                fail))\n"
        "print(len(done.attacks.outcomes), 'torch' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True)
    assert result.stdout.split() == ["1", "False"]


def test_the_gdp_estimate_is_recorded_with_the_interval_its_auc_implies() -> None:
    done = run_plan(plan_audit(["mia_threshold"]), PlanEvidence(_membership))
    assert done.attacks is not None
    outcome = done.attacks.outcomes[0]
    scores, is_member = outcome.scores, outcome.is_member
    intervals = membership_intervals(scores, is_member, fprs=tuple(outcome.metrics.tpr_at_fpr),
                                     resamples=BOOTSTRAP_RESAMPLES, seed=0)
    recorded = outcome.record.model_dump(mode="json")["gdp_estimate"]
    assert recorded == gdp_estimate_record(scores, is_member, intervals, delta=1e-5)
    assert recorded["interval"] == list(gdp_estimate_interval(intervals.auc, 20, 20, delta=1e-5))
    assert "interval" not in gdp_estimate_record(scores, is_member, None, delta=1e-5)
