"""Membership signals of a causal language model, one score per text, from one forward pass.

Every function takes per-token arrays over next-token positions, all of shape ``(N, T)`` (``T =
L - 1`` for token ids of length ``L``): entry ``[i, t]`` is about predicting token ``t + 1`` of
text ``i`` from the tokens before it, and ``mask[i, t]`` says whether that target is a real token
(not padding). They are the arrays of the model's ``TokenStatistics``, given as plain arrays so
this module needs neither torch nor the model:

- ``log_probs``: log p(x_t | x_<t), the log-probability of the actual next token;
- ``mean``, ``std``: μ_t = E_{z~p(·|x_<t)}[log p(z | x_<t)] and σ_t, the standard deviation of the
  same, over the model's whole next-token distribution (what Min-K%++ needs);
- ``mask``: booleans (or 0/1), at least one real target per row.

Entries outside the mask are ignored (they may hold anything, even NaN); entries inside must be
finite. Every score is oriented so that **higher means "more likely a member"**, like the other
attacks' scores, so the metrics of :mod:`auditml.metrics` apply unchanged.

Signals, with ``n_i`` the number of real targets of row ``i``:

- :func:`loss_score` — the LOSS attack (Yeom et al. 2018) on a sequence: the mean token
  log-likelihood ``(1/n_i) Σ_t log p(x_t)`` = − the mean token negative log-likelihood.
- :func:`zlib_score` — Carlini et al. 2021 ("Extracting Training Data from Large Language
  Models"): the model's log-perplexity divided by the zlib entropy of the text.
- :func:`min_k_score` — Shi et al. 2024 ("Detecting Pretraining Data from Large Language Models"):
  the mean of the lowest ``k`` fraction of token log-probabilities.
- :func:`min_k_plus_plus_score` — Zhang et al. 2024/2025 ("Min-K%++: Improved Baseline for
  Detecting Pre-Training Data from Large Language Models"): the same on tokens standardised by
  the model's own next-token distribution.
- :func:`reference_score` — the reference-model attack (Carlini et al. 2021; Mireshghallah et al.
  2022, "Quantifying Privacy Risks of Masked Language Models Using Membership Inference
  Attacks"): the target's log-likelihood minus the reference (pre-fine-tuning) model's.

These are the definitions of the papers' public code (and of MIMIR, Duan et al. 2024), with two
choices made explicit: Min-K% keeps at least one token (the papers' ``int(k · n)`` keeps none for a
short text), and Min-K%++ scores a token 0 where σ_t = 0 (the papers divide by zero).
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike

from auditml.errors import AuditMLError

DEFAULT_K = 0.2
"""The fraction of tokens Min-K% and Min-K%++ average (Shi et al. 2024 and Zhang et al. 2024 both
report k = 20 % as a good default)."""

# k · n is computed in floating point: 0.29 · 100 = 28.999999999999996. A whole number that
# close is taken to be whole, so that the count is the mathematical ⌊k · n⌋.
_FLOOR_SLACK = 1e-9


class TextSignalInputError(AuditMLError, ValueError):
    """Per-token arrays, a mask, texts or a setting given to a text signal are unusable."""


# --- validation -------------------------------------------------------------------------------


def _check_mask(mask: ArrayLike) -> np.ndarray:
    """``mask`` as a 2-D bool array with at least one True per row."""
    try:
        array = np.asarray(mask)
    except ValueError as error:  # ragged nested lists
        raise TextSignalInputError(f"`mask` must be a 2-D array: {error}") from None
    if array.ndim != 2 or array.shape[0] == 0:
        raise TextSignalInputError(
            f"`mask` must be 2-D (texts, positions) with at least one text, got shape "
            f"{array.shape}."
        )
    if array.dtype.kind not in "biuf":
        raise TextSignalInputError(f"`mask` must hold booleans or 0/1, got dtype {array.dtype}.")
    if array.dtype.kind != "b":
        if not np.isin(array, (0, 1)).all():  # NaN is neither, so it is refused here too
            raise TextSignalInputError("`mask` must hold booleans or 0/1, got other values.")
        array = array.astype(bool)
    empty = np.flatnonzero(~array.any(axis=1))
    if len(empty):
        raise TextSignalInputError(
            f"`mask` must mark at least one real token in every row, but {len(empty)} rows have "
            f"none (first: row {int(empty[0])}); drop texts with no token to predict."
        )
    return array


def _check_tokens(values: ArrayLike, name: str, mask: np.ndarray) -> np.ndarray:
    """``values`` as float64 of ``mask``'s shape, finite where ``mask`` is True."""
    try:
        array = np.asarray(values)
    except ValueError as error:
        raise TextSignalInputError(f"`{name}` must be a 2-D array: {error}") from None
    if array.shape != mask.shape:
        raise TextSignalInputError(
            f"`{name}` must have the shape of `mask` {mask.shape}, got {array.shape}."
        )
    if array.dtype.kind not in "biuf":
        raise TextSignalInputError(f"`{name}` must be real numbers, got dtype {array.dtype}.")
    array = array.astype(np.float64)
    bad = int((~np.isfinite(array) & mask).sum())
    if bad:
        raise TextSignalInputError(
            f"`{name}` must be finite at every real token, got {bad} NaN or infinite values."
        )
    return array


def _check_k(k: object) -> float:
    if (
        isinstance(k, (bool, np.bool_))
        or not isinstance(k, (int, float, np.integer, np.floating))
        or not 0 < k <= 1  # NaN fails too
    ):
        raise TextSignalInputError(f"`k` must be a fraction in (0, 1], got {k!r}.")
    return float(k)


def _masked_mean(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    return np.where(mask, values, 0.0).sum(axis=1) / mask.sum(axis=1)


# --- the signals ------------------------------------------------------------------------------


def loss_score(log_probs: ArrayLike, mask: ArrayLike) -> np.ndarray:
    """Mean token log-likelihood of each text: ``(1/n_i) Σ_{t: mask} log p(x_t | x_<t)``.

    The LOSS attack (Yeom et al. 2018, "Privacy Risk in Machine Learning") on a sequence: −(mean
    token cross-entropy), the negative log-perplexity, so higher = member. Returns float64 ``(N,)``.
    """
    checked_mask = _check_mask(mask)
    return _masked_mean(_check_tokens(log_probs, "log_probs", checked_mask), checked_mask)


def zlib_score(log_probs: ArrayLike, mask: ArrayLike, texts: Sequence[bytes]) -> np.ndarray:
    """−(mean token NLL) / (zlib-compressed length of the text in bytes), per text.

    Carlini et al. 2021 (USENIX Security, "Extracting Training Data from Large Language Models", the
    "zlib" membership metric): a text the model finds likely only because it is repetitive or simple
    is also easy for zlib; the ratio of the model's log-perplexity (the **mean** token negative
    log-likelihood) to the text's zlib entropy (``len(zlib.compress(text))``, default level, in
    bytes) keeps what the model knows beyond that. The paper ranks texts by this ratio, low =
    memorised; MIMIR (Duan et al. 2024) uses the same mean loss over the compressed length. Here the
    sign is flipped so that higher = member: ``loss_score / len(zlib.compress(texts[i]))``.

    ``texts[i]`` is text ``i`` as UTF-8 bytes (a ``str`` is encoded as UTF-8): the text that was
    scored, so for a text truncated to fit the model, its truncated bytes. The compressed length
    is never 0 (zlib's header alone is 8 bytes), so no text divides by zero.
    """
    checked_mask = _check_mask(mask)
    mean_log_likelihood = _masked_mean(_check_tokens(log_probs, "log_probs", checked_mask),
                                       checked_mask)
    if isinstance(texts, (str, bytes, bytearray)) or not isinstance(texts, Sequence):
        raise TextSignalInputError(
            f"`texts` must be a sequence with one text (bytes) per row, got {type(texts).__name__}."
        )
    if len(texts) != len(checked_mask):
        raise TextSignalInputError(
            f"`texts` must hold one text per row of `mask` ({len(checked_mask)}), got "
            f"{len(texts)}."
        )
    compressed = np.empty(len(texts), dtype=np.float64)
    for index, text in enumerate(texts):
        if isinstance(text, str):
            text = text.encode("utf-8")
        if not isinstance(text, (bytes, bytearray)):
            raise TextSignalInputError(
                f"`texts` must hold bytes (or str), got {type(text).__name__} at index {index}."
            )
        compressed[index] = len(zlib.compress(bytes(text)))
    return mean_log_likelihood / compressed


def _lowest_fraction_mean(values: np.ndarray, mask: np.ndarray, k: float) -> np.ndarray:
    """Per row, the mean of the ``max(1, ⌊k · n_i⌋)`` smallest masked values."""
    counts = mask.sum(axis=1)
    kept = np.maximum(1, np.floor(k * counts + _FLOOR_SLACK)).astype(np.int64)
    ascending = np.sort(np.where(mask, values, np.inf), axis=1)
    chosen = np.arange(values.shape[1])[None, :] < kept[:, None]
    return np.where(chosen, ascending, 0.0).sum(axis=1) / kept


def min_k_score(log_probs: ArrayLike, mask: ArrayLike, k: float = DEFAULT_K) -> np.ndarray:
    """Min-K% Prob: the mean of the lowest ``k`` fraction of each text's token log-probabilities.

    Shi et al. 2024 (ICLR, "Detecting Pretraining Data from Large Language Models"):
    ``(1/|S|) Σ_{t ∈ S} log p(x_t | x_<t)`` where S holds the text's |S| least likely tokens. A
    text seen in training has few outlier tokens of low probability; an unseen one has more.
    Higher = member (the paper's statistic, before its sign flip to a "score").

    **Rounding**: |S| = max(1, ⌊k · n_i⌋) for a row with n_i real tokens — the floor of the
    authors' code (``int(len(tokens) * ratio)``), kept at least 1 where theirs would average no
    token and give NaN. So k = 0.2 averages 2 tokens of 10, 1 of 9, and 1 of 3; k = 1 is
    :func:`loss_score`. Ties among the smallest values do not matter (equal values, same mean).
    """
    checked_k = _check_k(k)
    checked_mask = _check_mask(mask)
    values = _check_tokens(log_probs, "log_probs", checked_mask)
    return _lowest_fraction_mean(values, checked_mask, checked_k)


def min_k_plus_plus_score(
    log_probs: ArrayLike,
    mean: ArrayLike,
    std: ArrayLike,
    mask: ArrayLike,
    k: float = DEFAULT_K,
) -> np.ndarray:
    """Min-K%++: Min-K% on tokens standardised by the model's own next-token distribution.

    Zhang et al. 2024 (ICLR 2025, "Min-K%++: Improved Baseline for Detecting Pre-Training Data
    from Large Language Models"): per token

        s_t = (log p(x_t | x_<t) − μ_t) / σ_t,   μ_t = E_{z ~ p(·|x_<t)} log p(z | x_<t),
        σ_t² = E_{z ~ p(·|x_<t)} (log p(z | x_<t) − μ_t)²,

    then the mean of the lowest ``k`` fraction of the s_t, rounded as in :func:`min_k_score`.
    The paper's motivation: maximum-likelihood training pushes training texts towards local
    maxima of the likelihood along each input dimension, where the token's log-probability is
    high *relative to* the other candidates at that position; s_t measures exactly that, so it
    does not reward tokens that are merely easy. Higher = member.

    ``std`` must be >= 0. Where σ_t = 0 the distribution is uniform on its support, so
    every token the model can produce has log-probability exactly μ_t: s_t is 0 there (the
    authors' code divides 0 by 0).
    """
    checked_k = _check_k(k)
    checked_mask = _check_mask(mask)
    values = _check_tokens(log_probs, "log_probs", checked_mask)
    means = _check_tokens(mean, "mean", checked_mask)
    deviations = _check_tokens(std, "std", checked_mask)
    negative = int(((deviations < 0) & checked_mask).sum())
    if negative:
        raise TextSignalInputError(
            f"`std` must be >= 0 (a standard deviation), got {negative} negative values."
        )
    positive = checked_mask & (deviations > 0)
    standardised = np.zeros_like(values)
    standardised[positive] = (values[positive] - means[positive]) / deviations[positive]
    return _lowest_fraction_mean(standardised, checked_mask, checked_k)


def reference_score(
    log_probs: ArrayLike, reference_log_probs: ArrayLike, mask: ArrayLike
) -> np.ndarray:
    """The target's mean token log-likelihood minus the reference model's, per text.

    Carlini et al. 2021 ("Extracting Training Data from Large Language Models": comparing to a
    smaller model) and Mireshghallah et al. 2022 (EMNLP, "Quantifying Privacy Risks of Masked
    Language Models Using Membership Inference Attacks": the likelihood-ratio test log p_target(x) −
    log p_reference(x); and "Memorization in NLP Fine-tuning Methods", with the pre-trained model as
    the reference of a fine-tuned one): a text is likely under the fine-tuned model for two reasons,
    because such texts are likely (the reference, here the model before fine-tuning, knows that too)
    or because it was trained on (only the target knows). The difference keeps the second. Both
    log-likelihoods are averaged over the same real tokens (MIMIR's reference attack, Duan et al.
    2024): the log of the likelihood ratio divided by the number of tokens, so texts of different
    lengths compare on one scale. Higher = member.
    """
    checked_mask = _check_mask(mask)
    target = _check_tokens(log_probs, "log_probs", checked_mask)
    reference = _check_tokens(reference_log_probs, "reference_log_probs", checked_mask)
    return _masked_mean(target - reference, checked_mask)


__all__ = [
    "DEFAULT_K",
    "TextSignalInputError",
    "loss_score",
    "min_k_plus_plus_score",
    "min_k_score",
    "reference_score",
    "zlib_score",
]
