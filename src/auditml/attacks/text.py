"""Membership attacks on causal language models from one forward pass of the target.

Each attack scores a text by a statistic of the target's next-token log-probabilities on it
(:func:`auditml.models.causal_lm.token_statistics`); the statistics themselves, with their
papers, are pure functions in :mod:`auditml.attacks.text_signals`:

- ``mia_text_loss``: the mean token log-likelihood (Yeom et al. 2018, for sequences);
- ``mia_text_zlib``: the log-likelihood relative to the text's zlib-compressed length (Carlini et
  al. 2021): a text that is easy for any compressor is not evidence of memorisation;
- ``mia_text_min_k``: the mean of the k least likely tokens (Min-K%, Shi et al. 2024);
- ``mia_text_min_k_pp``: the same of each token's log-probability standardised by the model's
  own next-token distribution (Min-K%++, Zhang et al. 2024), the strongest reference-free one;
- ``mia_text_reference``: the log-likelihood gained by fine-tuning, the target's minus that of
  the model it was fine-tuned from (``model.base``; Carlini et al. 2021, Mireshghallah et al.
  2022): what the base already found likely is not evidence of membership.

None needs reference models or population data; ``mia_text_reference`` needs the base model.
They attack only language models (data whose task is ``causal_lm``); the classifier attacks
refuse text, and these refuse classifiers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

import numpy as np
from pydantic import Field

from auditml.attacks.base import AttackSettings, AuditTarget, MembershipAttack
from auditml.attacks.text_signals import (
    loss_score,
    min_k_plus_plus_score,
    min_k_score,
    reference_score,
    zlib_score,
)
from auditml.data.text_tokens import text_bytes
from auditml.errors import ConfigError

if TYPE_CHECKING:
    from auditml.models.causal_lm import TokenStatistics

__all__ = [
    "MinKAttack",
    "MinKPlusPlusAttack",
    "ReferenceModelAttack",
    "TextAttack",
    "TextLossAttack",
    "ZlibAttack",
]


class MinKSettings(AttackSettings):
    k: float = Field(default=0.2, gt=0, le=1, description="fraction of least likely tokens")


class TextAttack(MembershipAttack):
    """Base of the one-pass text attacks: the target's token statistics, then a signal."""

    tasks: ClassVar[frozenset[str]] = frozenset({"causal_lm"})

    def score(self) -> np.ndarray:
        target = self.target
        return self._signal(target.token_statistics(), target.examples.x)

    def _signal(self, stats: TokenStatistics, ids: np.ndarray) -> np.ndarray:
        raise NotImplementedError


class TextLossAttack(TextAttack):
    name = "mia_text_loss"

    def _signal(self, stats: TokenStatistics, ids: np.ndarray) -> np.ndarray:
        return loss_score(stats.log_probs, stats.mask)


class ZlibAttack(TextAttack):
    name = "mia_text_zlib"

    def _fit(self, target: AuditTarget) -> None:
        if not getattr(target.model, "byte_tokens", True):
            raise ConfigError(
                f"{self.name} compresses each row's text, which only auditml's byte tokens give; "
                "leave it out for a model of its own tokenizer"
            )

    def _signal(self, stats: TokenStatistics, ids: np.ndarray) -> np.ndarray:
        return zlib_score(stats.log_probs, stats.mask, [text_bytes(row) for row in ids])


class MinKAttack(TextAttack):
    name = "mia_text_min_k"
    Settings = MinKSettings

    def _signal(self, stats: TokenStatistics, ids: np.ndarray) -> np.ndarray:
        return min_k_score(stats.log_probs, stats.mask, k=self.params.k)


class MinKPlusPlusAttack(TextAttack):
    name = "mia_text_min_k_pp"
    Settings = MinKSettings

    def _signal(self, stats: TokenStatistics, ids: np.ndarray) -> np.ndarray:
        return min_k_plus_plus_score(
            stats.log_probs, stats.mean, stats.std, stats.mask, k=self.params.k
        )


class ReferenceModelAttack(TextAttack):
    name = "mia_text_reference"
    requires = frozenset({"base"})

    def _signal(self, stats: TokenStatistics, ids: np.ndarray) -> np.ndarray:
        from auditml.models.causal_lm import token_statistics

        target = self.target
        assert target.base is not None  # fit checked it
        base = token_statistics(target.base, ids, device=target.device or "cpu")
        return reference_score(stats.log_probs, base.log_probs, stats.mask)
