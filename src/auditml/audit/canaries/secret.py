"""``secret_canaries``: a language model's secret canaries — ε lower bound, exposure, extraction.

Training added each of m secret canaries (``training.canaries.kind: secret``; texts
``prefix + secret + suffix``, :mod:`auditml.data.secrets`) with probability 1/2, ``repeats`` times
when added; the coins are in ``split.npz``. Threat model: black box, last iterate — the audit
reads only the final model's next-token probabilities, as Panda et al. 2025 ("Privacy Auditing of
Large Language Models") do. Three results:

- **ε lower bound** (the one-run audit, Steinke, Nasr and Jagielski 2023, with the f-DP test of
  Mahloujifar, Melis and Chaudhuri 2024: :func:`auditml.metrics.fdp_epsilon_audit`, as
  ``dp_audit``): each canary is scored by the log-likelihood of its secret given its prefix,
  ``Σ_t log p(s_t | prefix, s_<t)``. The score is a function of the released model alone, not
  of the coins, so the bound holds for every (ε, δ)-DP training at the stated confidence.
- **The claim test** (a DP run): the f-DP one-run test of the whole privacy curve the run's
  accountant claims, on guesses fixed before the scores are read (IN on the top tenth, OUT on
  the bottom tenth: :func:`auditml.audit.canaries.white_box.check_claim`, as the gradient
  canaries' audits do). **The verdict is this test alone**: ``violation`` is wrong with
  probability at most 5 % when the claim holds. DP-SGD's guarantee is per training row; a
  secret added ``repeats`` = r > 1 times is r rows, protected only by group privacy (about
  r ε), so then there is no claim to test: the verdict is left empty (``violation`` None) and
  ``secrets.repeats`` says why.
- **Exposure** (Carlini et al. 2019, "The Secret Sharer"): ``log2 |R| − log2 rank`` of the secret
  among every possible secret in the same text, ranked by the same score. R is too large to
  enumerate (10⁶ PINs), so the rank is estimated from ``candidates`` secrets drawn uniformly
  from R (:func:`auditml.metrics.estimated_exposure`); a space of at most ``candidates``
  secrets (``secret_length: 2`` digits, 100) is ranked whole instead, each secret once, and its
  exposure is exact, up to ``log2 |R|``. A sample of n candidates resolves
  exposures up to ``log2(n + 1)`` bits: a secret that beats every sampled candidate is ranked
  first of them, and how far above the cap its exposure lies the sample cannot say (Carlini et
  al. extrapolate with a fitted skew-normal; auditml does not claim what it has not measured),
  so each canary's exposure is taken at most at the cap. Given for the canaries trained on and,
  as the control, for those not: an untrained secret ranks uniformly at random, and the mean of
  ``log2(|R| / rank)`` over a uniform rank is about ``1 / ln 2`` ≈ 1.44 bits (1.40 for |R| =
  100, 1.14 for |R| = 10).
- **Extraction**: greedy decoding from the prefix reproduces the whole secret (Carlini et al.
  2021), with a Clopper–Pearson interval on the rate, for both groups.
"""

from __future__ import annotations

import hashlib
import math
from typing import Any

import numpy as np

from auditml.audit.canaries.base import CanaryAuditKind, CanaryEvidence, gaussian_bound
from auditml.audit.canaries.white_box import check_claim
from auditml.errors import AuditMLError, ConfigError
from auditml.metrics import estimated_exposure, extraction_rate, fdp_epsilon_audit
from auditml.records import CanaryRecord, SecretCanaryRecord, SecretGroupRecord

CONFIDENCE = 0.95
SCORE = "secret_log_likelihood"
DEFAULT_CANDIDATES = 255


class SecretAudit(CanaryAuditKind):
    name = "secret_canaries"

    def __init__(self, *, candidates: int = DEFAULT_CANDIDATES, **settings: Any) -> None:
        super().__init__(**settings)
        if isinstance(candidates, bool) or not isinstance(candidates, int) or candidates < 1:
            raise ConfigError(
                f"{self.name}: candidates={candidates!r}: must be a positive integer (secrets "
                "sampled to rank each canary's among)"
            )
        self.candidates = candidates

    def settings(self) -> dict[str, Any]:
        return {"candidates": self.candidates}

    def run(self, evidence: CanaryEvidence) -> CanaryRecord:
        from auditml.data.text_tokens import encode_bytes, prefix_ids
        from auditml.models.causal_lm import greedy_continuation, token_statistics

        model, secrets = evidence.model, evidence.secrets
        if secrets is None or model is None or len(secrets) == 0:
            raise AuditMLError(
                "secret_canaries needs secret canaries, and this run has none: set "
                "training.canaries.kind: secret and training.canaries.count (e.g. 200) in the "
                "config and train again"
            )
        device = evidence.device
        included = np.asarray(evidence.input_included, dtype=bool)
        spans = secrets.secret_spans()
        # As trained, cut after the longest canary: with causal attention the padding after a
        # text changes none of its tokens' probabilities, and scoring it costs time.
        trained = np.asarray(evidence.input_canaries.x)
        width = min(max(len(text) for text in secrets.texts) + 2, trained.shape[1])
        rows = trained[:, :width]

        def secret_log_likelihood(ids: np.ndarray, row_spans: np.ndarray) -> np.ndarray:
            """Σ log p of each row's secret tokens ``[a, b)`` given what precedes them."""
            stats = token_statistics(model, ids, device=str(device))
            # Next-token position t predicts token t + 1: the secret's tokens [a, b) are
            # predicted at positions [a - 1, b - 1).
            positions = np.arange(stats.log_probs.shape[1])
            in_secret = (positions >= row_spans[:, :1] - 1) & (positions < row_spans[:, 1:] - 1)
            return (stats.log_probs * in_secret).sum(axis=1)

        scores = secret_log_likelihood(rows, spans)
        bound = fdp_epsilon_audit(scores, included, delta=evidence.delta, confidence=CONFIDENCE)
        repeats = evidence.canary_repeats

        # The candidates are drawn from the training's id: the same run audits the same way.
        digest = hashlib.sha256(evidence.run_facts.training_id.encode()).digest()
        rng = np.random.default_rng([int.from_bytes(digest[:8], "little"), 27])
        exposures = np.empty(len(secrets))
        space_size = secrets.design.space_size
        # A space no larger than the sample asked for is ranked whole, each secret once: the
        # rank is then the true rank (estimated_exposure's exact case). A sample of as many
        # draws with replacement would repeat some secrets and miss others (the secret itself,
        # possibly), which estimated_exposure would misread as the whole space.
        enumerated = space_size <= self.candidates
        ranked = space_size if enumerated else self.candidates
        cap = math.log2(space_size) if enumerated else math.log2(self.candidates + 1)
        for index in range(len(secrets)):
            sampled = (secrets.design.candidates() if enumerated
                       else secrets.design.sample_candidates(self.candidates, rng))
            candidate_scores = secret_log_likelihood(
                encode_bytes(secrets.with_secrets(index, sampled), width),
                np.repeat(spans[index : index + 1], len(sampled), axis=0),
            )
            exposures[index] = min(cap, estimated_exposure(
                scores[index], candidate_scores, secrets.design.space_size,
                confidence=CONFIDENCE,
            ).exposure)
        decoded = greedy_continuation(model, prefix_ids(list(secrets.prefixes)),
                                      secrets.design.length, device=str(device))
        extracted = np.array([
            row.astype(np.uint8).tobytes() == secret
            for row, secret in zip(decoded, secrets.secrets, strict=True)
        ])

        def group(chosen: np.ndarray) -> SecretGroupRecord:
            if not chosen.any():
                return SecretGroupRecord(canaries=0, mean_exposure=None, max_exposure=None,
                                         extracted=0, extraction_rate=None,
                                         extraction_interval=None)
            rate = extraction_rate(extracted[chosen].tolist(), confidence=CONFIDENCE)
            return SecretGroupRecord(
                canaries=int(chosen.sum()),
                mean_exposure=float(exposures[chosen].mean()),
                max_exposure=float(exposures[chosen].max()),
                extracted=int(extracted[chosen].sum()),
                extraction_rate=rate.rate, extraction_interval=(rate.low, rate.high),
            )

        claim_test = None
        if evidence.claim is not None and repeats == 1:
            claim_test = check_claim(scores, included, evidence.claim, confidence=CONFIDENCE)
        bounds = {SCORE: bound.to_dict()}
        return CanaryRecord(
            attack=self.name,
            canaries=len(secrets),
            included=int(included.sum()),
            delta=evidence.delta,
            confidence=CONFIDENCE,
            epsilon_lower_bound=bound.epsilon,
            best_score=SCORE,
            max_epsilon=bounds[SCORE]["max_epsilon"],
            by_score=bounds,
            run=evidence.run_facts,
            threat_model="black_box",
            gaussian_bound=gaussian_bound({SCORE: scores}, included, delta=evidence.delta,
                                          confidence=CONFIDENCE),
            claim_test=claim_test,
            violation=None if claim_test is None else bool(claim_test["violation"]),
            secrets=SecretCanaryRecord(
                design=secrets.design.kind, secret_length=secrets.design.length,
                repeats=repeats, space_bits=math.log2(secrets.design.space_size),
                candidates=ranked, enumerated=enumerated, exposure_cap=cap,
                included=group(included), excluded=group(~included),
            ),
        )
