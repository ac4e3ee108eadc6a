"""Text membership signals: each against a direct per-row computation, planted leaks, refusals."""

from __future__ import annotations

import math
import zlib

import numpy as np
import pytest
from scipy.special import log_softmax
from sklearn.metrics import roc_auc_score

from auditml.attacks.text_signals import (
    TextSignalInputError,
    loss_score,
    min_k_plus_plus_score,
    min_k_score,
    reference_score,
    zlib_score,
)

VOCAB = 12


def ragged(seed: int, rows: int = 6, width: int = 15) -> tuple[np.ndarray, np.ndarray]:
    """``(log_probs, mask)`` with a different number of real tokens per row (right padding), and
    NaN at the padded positions: they must be ignored."""
    rng = np.random.default_rng(seed)
    log_probs = np.log(rng.uniform(0.01, 1.0, size=(rows, width)))
    lengths = rng.integers(1, width + 1, size=rows)
    lengths[0] = width
    mask = np.arange(width)[None, :] < lengths[:, None]
    log_probs[~mask] = np.nan
    return log_probs, mask


def real_tokens(values: np.ndarray, mask: np.ndarray, row: int) -> list[float]:
    return [float(values[row, t]) for t in range(values.shape[1]) if mask[row, t]]


def lowest_mean(tokens: list[float], k: float) -> float:
    """Mean of the lowest fraction, with the rounding the docstring states, by plain Python."""
    kept = max(1, int(round(k * len(tokens), 9) // 1))
    return sum(sorted(tokens)[:kept]) / kept


def test_loss_score_is_the_mean_token_log_likelihood() -> None:
    log_probs, mask = ragged(0)
    expected = [sum(real_tokens(log_probs, mask, row)) / mask[row].sum()
                for row in range(len(mask))]
    np.testing.assert_allclose(loss_score(log_probs, mask), expected, rtol=1e-12)


def test_zlib_score_divides_the_mean_loss_by_zlib_compressed_length() -> None:
    log_probs, mask = ragged(1, rows=4)
    texts = [b"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", b"Kto 7 #q!",
             "Zo\u00eb's r\u00e9sum\u00e9 \u2014 \u65e5\u672c".encode(), b""]
    expected = []
    for row, text in enumerate(texts):
        tokens = real_tokens(log_probs, mask, row)
        mean_nll = -sum(tokens) / len(tokens)
        expected.append(-mean_nll / len(zlib.compress(text)))
    scores = zlib_score(log_probs, mask, texts)
    np.testing.assert_allclose(scores, expected, rtol=1e-12)
    # A repetitive text compresses well: the same loss counts for more per compressed byte.
    assert len(zlib.compress(texts[0])) < len(texts[0])
    # str is the same text as its UTF-8 bytes.
    as_str = [text.decode("utf-8") for text in texts]
    np.testing.assert_array_equal(zlib_score(log_probs, mask, as_str), scores)


@pytest.mark.parametrize(("count", "k", "kept"), [
    (10, 0.2, 2),   # exact
    (9, 0.2, 1),    # 1.8 floors to 1, as the authors' int(n * k)
    (3, 0.2, 1),    # 0.6 floors to 0: at least one token
    (1, 0.2, 1),
    (100, 0.29, 29),  # 0.29 * 100 = 28.999999999999996 in floating point: still 29
    (5, 0.5, 2),
    (7, 1.0, 7),    # all tokens: the mean log-likelihood
])
def test_min_k_rounding(count: int, k: float, kept: int) -> None:
    width = 100
    # Distinct values 1, 2, ..., count (negated so the lowest are -count, -count+1, ...).
    log_probs = np.zeros((1, width))
    log_probs[0, :count] = -np.arange(1, count + 1, dtype=float)
    mask = np.arange(width)[None, :] < count
    expected = -np.mean(np.arange(count, count - kept, -1, dtype=float))
    assert min_k_score(log_probs, mask, k)[0] == pytest.approx(expected, rel=1e-12)


def test_min_k_score_matches_a_direct_computation_per_row() -> None:
    log_probs, mask = ragged(2, rows=8)
    for k in (0.1, 0.2, 0.5, 1.0):
        expected = [lowest_mean(real_tokens(log_probs, mask, row), k) for row in range(len(mask))]
        np.testing.assert_allclose(min_k_score(log_probs, mask, k), expected, rtol=1e-12)
    np.testing.assert_allclose(min_k_score(log_probs, mask, 1.0), loss_score(log_probs, mask),
                               rtol=1e-12)


def test_min_k_plus_plus_by_hand() -> None:
    log_probs = np.array([[-1.0, -2.0, -3.0, -4.0, -5.0, 0.0]])
    mean = np.array([[-2.0, -2.0, -2.0, -4.0, -2.0, 0.0]])
    std = np.array([[1.0, 2.0, 1.0, 0.0, 0.5, 0.0]])
    mask = np.array([[True] * 5 + [False]])
    # Standardised: (−1+2)/1 = 1, 0/2 = 0, (−3+2)/1 = −1, σ = 0 → 0, (−5+2)/0.5 = −6.
    # k = 0.4 of 5 tokens keeps the 2 lowest: (−6 − 1)/2.
    assert min_k_plus_plus_score(log_probs, mean, std, mask, k=0.4)[0] == pytest.approx(-3.5)
    # k = 1: (1 + 0 − 1 + 0 − 6)/5.
    assert min_k_plus_plus_score(log_probs, mean, std, mask, k=1.0)[0] == pytest.approx(-1.2)


def test_min_k_plus_plus_from_next_token_distributions() -> None:
    """μ and σ of log p(z) under z ~ p, computed here from explicit distributions, and the score
    from a per-row loop."""
    rng = np.random.default_rng(3)
    rows, width = 5, 9
    distributions = log_softmax(rng.normal(0, 2, size=(rows, width, VOCAB)), axis=-1)
    targets = rng.integers(0, VOCAB, size=(rows, width))
    mask = np.arange(width)[None, :] < rng.integers(1, width + 1, size=rows)[:, None]
    log_probs = np.take_along_axis(distributions, targets[..., None], axis=-1)[..., 0]
    probs = np.exp(distributions)
    mean = (probs * distributions).sum(-1)
    std = np.sqrt((probs * distributions**2).sum(-1) - mean**2)
    for k in (0.2, 0.6):
        expected = []
        for row in range(rows):
            standardised = []
            for t in range(width):
                if mask[row, t]:
                    p = [math.exp(v) for v in distributions[row, t]]
                    mu = sum(pi * v for pi, v in zip(p, distributions[row, t], strict=True))
                    var = sum(pi * (v - mu) ** 2
                              for pi, v in zip(p, distributions[row, t], strict=True))
                    standardised.append((log_probs[row, t] - mu) / math.sqrt(var))
            expected.append(lowest_mean(standardised, k))
        np.testing.assert_allclose(min_k_plus_plus_score(log_probs, mean, std, mask, k),
                                   expected, rtol=1e-9)


def test_reference_score_is_the_mean_log_likelihood_difference() -> None:
    log_probs, mask = ragged(4)
    reference = np.log(np.random.default_rng(5).uniform(0.01, 1.0, size=mask.shape))
    reference[~mask] = np.nan
    expected = [
        sum(log_probs[row, t] - reference[row, t] for t in range(mask.shape[1]) if mask[row, t])
        / mask[row].sum()
        for row in range(len(mask))
    ]
    np.testing.assert_allclose(reference_score(log_probs, reference, mask), expected, rtol=1e-12)


def planted(seed: int, leak: float) -> dict[str, np.ndarray]:
    """200 texts, half members; members' tokens get ``leak`` nats more log-probability on the
    tokens the model finds hard (memorisation), and the reference model never saw any text."""
    rng = np.random.default_rng(seed)
    rows, width = 200, 40
    is_member = np.arange(rows) < rows // 2
    logits = rng.normal(0, 2, size=(rows, width, VOCAB))
    targets = rng.integers(0, VOCAB, size=(rows, width))
    reference = np.take_along_axis(log_softmax(logits, -1), targets[..., None], -1)[..., 0]
    # The target model raises the logit of each member's actual next token.
    np.put_along_axis(logits, targets[..., None],
                      np.take_along_axis(logits, targets[..., None], -1)
                      + leak * is_member[:, None, None], -1)
    distributions = log_softmax(logits, -1)
    probs = np.exp(distributions)
    mean = (probs * distributions).sum(-1)
    lengths = rng.integers(10, width + 1, size=rows)
    return {
        "log_probs": np.take_along_axis(distributions, targets[..., None], -1)[..., 0],
        "reference": reference,
        "mean": mean,
        "std": np.sqrt(np.maximum((probs * distributions**2).sum(-1) - mean**2, 0.0)),
        "mask": np.arange(width)[None, :] < lengths[:, None],
        "texts": np.array([bytes(rng.integers(97, 123, size=n).astype(np.uint8))
                           for n in lengths], dtype=object),
        "is_member": is_member,
    }


def all_scores(data: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    log_probs, mask = data["log_probs"], data["mask"]
    return {
        "loss": loss_score(log_probs, mask),
        "zlib": zlib_score(log_probs, mask, list(data["texts"])),
        "min_k": min_k_score(log_probs, mask),
        "min_k_plus_plus": min_k_plus_plus_score(log_probs, data["mean"], data["std"], mask),
        "reference": reference_score(log_probs, data["reference"], mask),
    }


def test_a_planted_leak_is_found_by_every_signal() -> None:
    data = planted(6, leak=3.0)
    for name, scores in all_scores(data).items():
        # zlib divides by the compressed length, which here varies with the (random) text
        # length and not with membership: noise the other signals do not have.
        assert roc_auc_score(data["is_member"], scores) > (0.9 if name == "zlib" else 0.95), name


def test_no_leak_gives_chance_auc() -> None:
    data = planted(7, leak=0.0)
    for name, scores in all_scores(data).items():
        # 100 vs 100: the AUC's standard deviation under no leak is about 0.04.
        assert abs(roc_auc_score(data["is_member"], scores) - 0.5) < 0.12, name


def test_padding_is_ignored() -> None:
    log_probs, mask = ragged(8)
    filled = np.where(mask, log_probs, -1e6)
    for score in (loss_score, min_k_score):
        np.testing.assert_array_equal(score(log_probs, mask), score(filled, mask))


@pytest.mark.parametrize("k", [0, -0.1, 1.5, math.nan, True, "0.2", None])
def test_bad_k_is_refused(k: object) -> None:
    log_probs, mask = ragged(9)
    with pytest.raises(TextSignalInputError, match="`k`"):
        min_k_score(log_probs, mask, k)  # type: ignore[arg-type]
    with pytest.raises(TextSignalInputError, match="`k`"):
        min_k_plus_plus_score(log_probs, log_probs, np.ones_like(log_probs), mask,
                              k)  # type: ignore[arg-type]


def test_bad_arrays_are_refused_naming_the_argument() -> None:
    log_probs, mask = ragged(10, rows=3, width=5)
    ones = np.ones_like(log_probs)
    empty_row = mask.copy()
    empty_row[1] = False
    infinite = np.where(mask, log_probs, 0.0)
    infinite[0, 0] = -np.inf
    cases = [
        (lambda: loss_score(log_probs[:, :4], mask), "`log_probs`"),
        (lambda: loss_score(log_probs, empty_row), "`mask`"),
        (lambda: loss_score(log_probs, mask.astype(float) * 2), "`mask`"),
        (lambda: loss_score(log_probs, mask[0]), "`mask`"),
        (lambda: loss_score(infinite, mask), "`log_probs`"),
        (lambda: loss_score(log_probs.astype(str), mask), "`log_probs`"),
        (lambda: reference_score(log_probs, ones[:2], mask), "`reference_log_probs`"),
        (lambda: min_k_plus_plus_score(log_probs, ones, -ones, mask), "`std`"),
        (lambda: min_k_plus_plus_score(log_probs, ones * np.nan, ones, mask), "`mean`"),
        (lambda: zlib_score(log_probs, mask, [b"a", b"b"]), "`texts`"),
        (lambda: zlib_score(log_probs, mask, b"abc"), "`texts`"),
        (lambda: zlib_score(log_probs, mask, [b"a", 5, b"c"]), "`texts`"),
    ]
    for call, name in cases:
        with pytest.raises(TextSignalInputError, match=name) as error:
            call()
        assert "\n" not in str(error.value)
    assert issubclass(TextSignalInputError, ValueError)


def test_importing_the_text_signals_loads_no_torch() -> None:
    # Scores from saved token statistics must be computable where torch is not installed.
    import subprocess
    import sys

    code = ("import sys, auditml.attacks.text_signals\n"
            "print(sorted(m for m in ('torch', 'transformers') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True)
    assert result.stdout.strip() == "[]", result.stdout
