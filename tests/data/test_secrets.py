"""Secret canaries: reproducible from the seed, secrets of the stated alphabet and space, the
candidate space enumerated in full and sampled uniformly, secrets located in the encoded rows."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from auditml.data.secrets import (
    DIGIT_ALPHABET,
    RARE_ALPHABET,
    SecretDesign,
    make_secrets,
    unused_byte_values,
)
from auditml.data.text_tokens import BOS_ID, encode, encode_bytes, prefix_ids
from auditml.errors import ArgumentError


def test_the_same_arguments_give_the_same_canaries() -> None:
    first = make_secrets(20, kind="digits", length=6, seed=3)
    assert first == make_secrets(20, kind="digits", length=6, seed=3)
    assert first.secrets != make_secrets(20, kind="digits", length=6, seed=4).secrets
    assert make_secrets(5, kind="rare", length=8, seed=3) == make_secrets(
        5, kind="rare", length=8, seed=3)


def test_digit_secrets() -> None:
    canaries = make_secrets(50, kind="digits", length=6, seed=0, template="my PIN {id} is {secret}")
    assert canaries.design.space_size == 10**6 and canaries.design.alphabet == DIGIT_ALPHABET
    assert len(canaries) == 50 and len(set(canaries.secrets)) == 50
    assert len(set(canaries.prefixes)) == 50  # {id} gives each canary its own prefix
    for prefix, secret, suffix, text in zip(canaries.prefixes, canaries.secrets,
                                            canaries.suffixes, canaries.texts, strict=True):
        assert len(secret) == 6 and secret.isdigit()
        assert prefix.startswith(b"my PIN ") and prefix.endswith(b" is ") and suffix == b""
        assert text == prefix + secret + suffix
    # Distinct even when they fill the whole space.
    full = make_secrets(10, kind="digits", length=1, seed=0)
    assert sorted(full.secrets) == [str(digit).encode() for digit in range(10)]
    # Uniform over the space: the secrets' leading digits are not all alike.
    assert len({secret[0] for secret in canaries.secrets}) > 5


def test_every_candidate_once_and_the_secret_among_them() -> None:
    design = SecretDesign(kind="digits", length=4, alphabet=DIGIT_ALPHABET)
    candidates = design.candidates()
    assert candidates.shape == (10**4, 4) and candidates.dtype == np.uint8
    as_text = [row.tobytes() for row in candidates]
    assert as_text == [f"{i:04d}".encode() for i in range(10**4)]
    canaries = make_secrets(3, kind="digits", length=4, seed=1)
    for secret in canaries.secrets:
        assert as_text[canaries.design.index_of(secret)] == secret


def test_rare_secrets_use_only_bytes_the_training_text_lacks() -> None:
    canaries = make_secrets(30, kind="rare", length=8, seed=2)
    assert canaries.design.space_size == 128**8
    for prefix, secret, suffix in zip(canaries.prefixes, canaries.secrets, canaries.suffixes,
                                      strict=True):
        assert len(secret) == 8 and set(secret) <= set(RARE_ALPHABET)
        assert not set(prefix + suffix) & set(RARE_ALPHABET)
    # A caller's own alphabet: the bytes absent from the training ids.
    training = encode(["abc", "xyz"], 8)
    unused = unused_byte_values(training)
    assert len(unused) == 250 and not set(b"abcxyz") & set(unused)
    # The template's characters (and {id}'s letters) must not be secret symbols.
    with pytest.raises(ArgumentError, match="template uses the byte 0x20 of the rare alphabet"):
        make_secrets(4, kind="rare", length=3, seed=0, alphabet=unused)
    ascii_text = encode(["Note : the access key is . " + "abcdefghijklmnopqrstuvwxyz"], 64)
    unused = unused_byte_values(ascii_text)
    own = make_secrets(4, kind="rare", length=3, seed=0, alphabet=unused)
    assert all(set(secret) <= set(unused) for secret in own.secrets)
    assert not set(b"".join(own.prefixes + own.suffixes)) & set(unused)
    with pytest.raises(ArgumentError, match="more than 1e\\+07 to enumerate"):
        canaries.candidates()


def test_sampled_candidates_are_uniform_over_the_space() -> None:
    design = SecretDesign(kind="digits", length=3, alphabet=DIGIT_ALPHABET)
    sample = design.sample_candidates(20_000, np.random.default_rng(0))
    assert sample.shape == (20_000, 3) and set(np.unique(sample)) <= set(DIGIT_ALPHABET)
    np.testing.assert_array_equal(sample, design.sample_candidates(20_000,
                                                                   np.random.default_rng(0)))
    # Each of the 1,000 candidates about 20 times: a chi-square test of uniformity.
    indices = [design.index_of(row.tobytes()) for row in sample]
    counts = np.bincount(indices, minlength=1000)
    assert stats.chisquare(counts).pvalue > 1e-3
    # Positions independent: the pair (first, last) is uniform over 100 cells too.
    pairs = np.bincount((sample[:, 0] - 48) * 10 + (sample[:, 2] - 48), minlength=100)
    assert stats.chisquare(pairs).pvalue > 1e-3


def test_secret_spans_locate_the_secret_in_the_encoded_row() -> None:
    canaries = make_secrets(4, kind="rare", length=5, seed=0)
    ids = encode_bytes(canaries.texts, 80)
    for row, (start, stop), secret in zip(ids, canaries.secret_spans(), canaries.secrets,
                                          strict=True):
        assert row[start:stop].tolist() == list(secret)
    prompts = prefix_ids(canaries.prefixes)
    assert all(p[0] == BOS_ID and len(p) == start for p, (start, _) in
               zip(prompts, canaries.secret_spans(), strict=True))


def test_with_secrets_puts_candidates_in_a_canarys_place() -> None:
    canaries = make_secrets(2, kind="digits", length=3, seed=0, template="PIN {secret}, {id}.")
    texts = canaries.with_secrets(1, canaries.candidates()[:2])
    assert texts == [canaries.prefixes[1] + b"000" + canaries.suffixes[1],
                     canaries.prefixes[1] + b"001" + canaries.suffixes[1]]
    index = canaries.design.index_of(canaries.secrets[1])
    assert canaries.with_secrets(1, canaries.candidates()[index:index + 1]) == [canaries.texts[1]]


@pytest.mark.parametrize(("arguments", "message"), [
    ({"kind": "words"}, "kind must be one of digits, rare"),
    ({"length": 0}, "length must be a positive integer"),
    ({"template": "no hole"}, "template must contain {secret} exactly once"),
    ({"length": 1, "count": 11}, "count=11 distinct secrets do not fit in the 10 candidates"),
    ({"kind": "rare", "template": "clé {secret}"}, "template uses the byte 0xa9 of the rare"),
    ({"alphabet": b"aa"}, "alphabet must be at least 2 distinct bytes"),
    ({"seed": -1}, "seed must be a non-negative integer"),
    ({"count": 100_001, "length": 32}, "count must be at most 100,000, got 100001"),
])
def test_bad_arguments_are_named(arguments: dict[str, object], message: str) -> None:
    settings: dict[str, object] = {"count": 2, "kind": "digits", "length": 4, "seed": 0,
                                   **arguments}
    with pytest.raises(ArgumentError, match=message.replace("{", r"\{").replace("+", r"\+")):
        make_secrets(**settings)  # type: ignore[arg-type]
