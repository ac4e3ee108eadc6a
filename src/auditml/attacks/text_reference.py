"""LiRA and RMIA on sequence scores: attacks of a causal language model that compare it with
reference models trained like it.

The one-pass text attacks (:mod:`auditml.attacks.text`) compare a statistic across texts, so a
text that every model finds likely looks like a member. LiRA and RMIA compare each text with
itself: reference models (the target's recipe — its base, LoRA, DP-SGD, epochs — retrained on
random halves of the audited texts, ``keep[k, i]`` = model k trained on text i) say how likely
the text is under models that did and did not train on it. The signal of a text x under a model
θ is its mean token log-likelihood

    s(θ, x) = (1/n) Σ_t log p_θ(x_t | x_<t)     (:func:`~auditml.attacks.text_signals.loss_score`),

the LOSS attack's statistic, computed from the same token statistics for the target and for
every reference model.

- ``mia_text_lira``: LiRA (Carlini et al. 2022; :func:`auditml.attacks.lira.lira_scores`) on
  s: the log-ratio of N(s_target; μ_in, σ²_in) to N(s_target; μ_out, σ²_out), fitted to the
  reference models' s on the text (``online``), or the one-sided test against OUT only
  (``offline``). s averages about a hundred token log-likelihoods, so its spread over training
  runs is close to Gaussian, the assumption LiRA's logit scaling buys for a class probability.
  ``mode`` and ``variance`` are those of ``mia_lira``; there are no augmentations.
- ``mia_text_rmia``: RMIA (Zarifzadeh et al. 2024; :func:`auditml.attacks.rmia.rmia_scores`)
  with Pr(x | θ) = exp(s(θ, x)), the geometric mean of the text's token probabilities — its
  probability per token. The probability of the whole text, exp(n·s), underflows for a hundred
  tokens, and Pr(x), a mean over reference models, would be that of the single likeliest model;
  per token, LR(x) = exp(s_target) / mean_k exp(s_k) compares the target with the average
  reference model on the scale the LOSS attack reads. The population texts are ones neither the
  target nor any reference model trained on. ``mode``, ``a`` and ``gamma`` are those of
  ``mia_rmia``; there is no temperature (the signal is not a softmax over classes).

Both need reference models (``audit.reference_models``, trained by ``auditml audit`` and kept in
the run directory, or a ``reference_factory`` in :func:`auditml.audit_language_model`); RMIA
needs population texts too.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

import numpy as np

from auditml.attacks.base import AuditTarget, ReferenceModels
from auditml.attacks.lira import LiraAttack, LiraCoreSettings
from auditml.attacks.rmia import RmiaAttack, RmiaCoreSettings
from auditml.attacks.text_signals import loss_score
from auditml.data import ArrayDataset

if TYPE_CHECKING:
    from auditml.models.causal_lm import TokenStatistics

__all__ = ["TextLiraAttack", "TextRmiaAttack", "reference_sequence_scores"]

_LANGUAGE_MODELS = frozenset({"causal_lm"})


def _sequence_scores(stats: TokenStatistics) -> np.ndarray:
    """s(θ, x) of each text from one model's token statistics."""
    return loss_score(stats.log_probs, stats.mask)


def reference_sequence_scores(reference: ReferenceModels, texts: np.ndarray) -> np.ndarray:
    """``(K, len(texts))``: s(θ_k, x), the mean token log-likelihood of each text under every
    reference model."""
    return np.stack([_sequence_scores(stats) for stats in reference.token_statistics(texts)])


class TextLiraAttack(LiraAttack):
    """LiRA on each text's mean token log-likelihood."""

    name = "mia_text_lira"
    Settings = LiraCoreSettings
    tasks: ClassVar[frozenset[str]] = _LANGUAGE_MODELS

    def check_inputs(self, input_shape: tuple[int, ...]) -> None:
        """Every token row can be attacked (there are no augmentations to refuse)."""

    def _reference_signals(self, reference: ReferenceModels, examples: ArrayDataset
                           ) -> np.ndarray:
        return reference_sequence_scores(reference, examples.x)[None]

    def _target_signals(self, target: AuditTarget) -> np.ndarray:
        return _sequence_scores(target.token_statistics())[None]


class TextRmiaAttack(RmiaAttack):
    """RMIA with each text's probability per token, exp(mean token log-likelihood)."""

    name = "mia_text_rmia"
    Settings = RmiaCoreSettings
    tasks: ClassVar[frozenset[str]] = _LANGUAGE_MODELS

    def _reference_probs(self, reference: ReferenceModels, data: ArrayDataset) -> np.ndarray:
        return np.exp(reference_sequence_scores(reference, data.x))

    def _target_probs(self, target: AuditTarget, *, audited: bool) -> np.ndarray:
        if audited:
            return np.exp(_sequence_scores(target.token_statistics()))
        from auditml.models.causal_lm import token_statistics

        assert target.population is not None and target.model is not None  # fit checked them
        return np.exp(_sequence_scores(token_statistics(
            target.model, target.population.x, device=str(target.device or "cpu"))))
