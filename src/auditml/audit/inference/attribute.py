"""``auditml audit --attack attribute_inference``: infer the members' sensitive attribute.

Runs the imputation baseline and each model-querying attribute attack
(:mod:`auditml.attacks.attribute`) on the audited members and non-members, with the population
records the target never trained on as the attacker's auxiliary data, and reports each attack's
accuracy and AUC on members and on non-members, and its **advantage over imputation** on the
same records (:mod:`auditml.metrics.attribute`). The model leaks its members' attribute when an
attack beats imputation on members; beating it equally on non-members is what the model learned
about the population (a "distributional" inference, Jayaraman & Evans 2022), not about members.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from pydantic import Field, field_validator

from auditml.attacks.attribute import (
    ATTRIBUTE_ATTACKS,
    BASELINE,
    AttributeTarget,
    hide_attribute,
)
from auditml.attacks.attribute.model_output import softmax
from auditml.audit.core import score_attribute_attack
from auditml.audit.inference.base import (
    InferenceAudit,
    InferenceEvidence,
    InferenceOutcome,
    InferenceSettings,
)
from auditml.data import ArrayDataset, SensitiveAttribute
from auditml.errors import ConfigError
from auditml.metrics.attribute import (
    DEFAULT_BOOTSTRAP,
    advantage_over_imputation,
    attribute_score,
    member_gap,
    predicted_categories,
)
from auditml.models import predict_logits
from auditml.records import (
    AdvantageRecord,
    AttributeAttackResult,
    AttributeInferenceRecord,
    AttributeScoreRecord,
    MemberGapRecord,
)

# Fewer auxiliary records than this cannot train the baseline's classifier meaningfully.
MIN_AUXILIARY = 20


class AttributeInferenceSettings(InferenceSettings):
    attacks: list[str] = Field(
        default_factory=lambda: ["model_output", "confidence"],
        description="model-querying attacks judged against the imputation baseline",
    )
    classifier: Literal["logistic", "boosting"] = "logistic"
    confidence: float = Field(default=0.95, gt=0, lt=1)
    resamples: int = Field(default=DEFAULT_BOOTSTRAP, ge=100, le=100_000)

    @field_validator("attacks")
    @classmethod
    def _known_attacks(cls, names: list[str]) -> list[str]:
        for name in names:
            if name == BASELINE:
                raise ValueError(f"{BASELINE} is the baseline and always runs; list the others")
            if name not in ATTRIBUTE_ATTACKS:
                raise ValueError(ATTRIBUTE_ATTACKS.unknown_message(name))
        if not names:
            raise ValueError("name at least one attack (model_output, confidence)")
        return list(dict.fromkeys(names))


class AttributeInferenceAudit(InferenceAudit):
    name = "attribute_inference"
    Settings = AttributeInferenceSettings
    params: AttributeInferenceSettings

    def check(self, dataset: str, sensitive: SensitiveAttribute | None) -> None:
        if sensitive is None:
            raise ConfigError(
                f"attribute_inference: {dataset} declares no sensitive attribute; audit a "
                "tabular dataset that does (diabetes, adult), or pass sensitive= to "
                "auditml.audit"
            )

    def run(self, evidence: InferenceEvidence) -> InferenceOutcome:
        self.check(evidence.dataset, evidence.sensitive)
        attribute = evidence.sensitive
        assert attribute is not None
        auxiliary = evidence.population
        if auxiliary is None or len(auxiliary) < MIN_AUXILIARY:
            raise ConfigError(
                f"attribute_inference needs at least {MIN_AUXILIARY} population records the "
                f"model never trained on, got {0 if auxiliary is None else len(auxiliary)}; "
                "lower data.train_size or raise audit.population_size"
            )
        records = ArrayDataset(
            np.concatenate([evidence.members.x, evidence.nonmembers.x]),
            np.concatenate([evidence.members.y, evidence.nonmembers.y]),
        )
        is_member = np.r_[np.ones(len(evidence.members), bool),
                          np.zeros(len(evidence.nonmembers), bool)]
        try:
            attribute.check_encodes(records.x, "the audited examples")
        except ValueError as error:
            raise ConfigError(str(error)) from None
        truth = attribute.classes(records.x.reshape(len(records), -1))
        model = evidence.model.to(evidence.device).eval()
        target = AttributeTarget(
            records=hide_attribute(records, attribute), attribute=attribute,
            auxiliary=auxiliary, num_classes=evidence.num_classes,
            device=evidence.device, seed=evidence.seed, model=model,
            record_outputs=softmax(predict_logits(model, records.x, device=evidence.device)),
        )
        names = [BASELINE, *self.params.attacks]
        correct: dict[str, np.ndarray] = {}
        results: dict[str, AttributeAttackResult] = {}
        for name in names:
            attack = ATTRIBUTE_ATTACKS.get(name)(classifier=self.params.classifier)
            scores = score_attribute_attack(attack, target, evidence.seed)
            correct[name] = predicted_categories(scores) == truth
            results[name] = AttributeAttackResult(
                settings=attack.settings(),
                members=_score_record(scores[is_member], truth[is_member], self.params.confidence),
                nonmembers=_score_record(
                    scores[~is_member], truth[~is_member], self.params.confidence
                ),
                member_gap=MemberGapRecord(
                    **member_gap(correct[name][is_member], correct[name][~is_member]).to_dict()
                ),
                advantage_members=None if name == BASELINE else self._advantage(
                    correct[name][is_member], correct[BASELINE][is_member], evidence.seed
                ),
                advantage_nonmembers=None if name == BASELINE else self._advantage(
                    correct[name][~is_member], correct[BASELINE][~is_member], evidence.seed
                ),
            )
        best, beyond, specific = self._verdict(results)
        record = AttributeInferenceRecord(
            attribute=attribute.name, categories=list(attribute.categories),
            auxiliary_records=len(auxiliary), confidence=self.params.confidence,
            baseline=BASELINE, attacks=results, best_attack=best, beyond_imputation=beyond,
            member_specific=specific,
            run=evidence.run_facts,
        )
        return InferenceOutcome(record)

    def _advantage(self, attack: np.ndarray, baseline: np.ndarray, seed: int) -> AdvantageRecord:
        found = advantage_over_imputation(
            attack, baseline, confidence=self.params.confidence,
            resamples=self.params.resamples, seed=seed,
        )
        return AdvantageRecord(**found.to_dict())

    def _verdict(
        self, results: dict[str, AttributeAttackResult]
    ) -> tuple[str | None, bool, bool]:
        """The attack with the largest member advantage; whether some attack beats imputation
        on members, and whether some attack does better on members than on non-members, each
        at ``confidence`` after a Bonferroni correction over the attacks."""
        attacks = {n: r for n, r in results.items() if n != BASELINE}
        advantages = {n: r.advantage_members for n, r in attacks.items()}
        found = {n: a for n, a in advantages.items() if a is not None}
        if not found:
            return None, False, False
        best = max(found, key=lambda n: found[n].advantage)
        level = (1 - self.params.confidence) / len(attacks)
        beyond = any(a.advantage > 0 and a.p_value < level for a in found.values())
        specific = any(
            r.member_gap.gap > 0 and r.member_gap.p_value < level for r in attacks.values()
        )
        return best, beyond, specific


def _score_record(scores: np.ndarray, truth: np.ndarray, confidence: float) -> AttributeScoreRecord:
    found: dict[str, Any] = attribute_score(scores, truth, confidence).to_dict()
    if not np.isfinite(found["auc"]):
        found["auc"] = None
    return AttributeScoreRecord(**found)
