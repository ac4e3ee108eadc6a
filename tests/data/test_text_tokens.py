"""The byte-level tokenizer: rows laid out BOS, bytes, EOS, PAD; truncation keeps no EOS; decode
inverts encode for any text (non-ASCII included); bad arguments are named."""

from __future__ import annotations

import numpy as np
import pytest

from auditml.data.text_tokens import (
    BOS_ID,
    EOS_ID,
    PAD_ID,
    VOCAB_SIZE,
    decode,
    encode,
    encode_bytes,
    prefix_ids,
    target_mask,
    token_counts,
    truncated,
)
from auditml.errors import ArgumentError


def test_constants() -> None:
    assert (PAD_ID, BOS_ID, EOS_ID, VOCAB_SIZE) == (256, 257, 258, 259)


def test_rows_by_hand() -> None:
    ids = encode(["ab", "", "A"], 6)
    assert ids.dtype == np.int64 and ids.shape == (3, 6)
    np.testing.assert_array_equal(ids, [
        [BOS_ID, 97, 98, EOS_ID, PAD_ID, PAD_ID],
        [BOS_ID, EOS_ID, PAD_ID, PAD_ID, PAD_ID, PAD_ID],
        [BOS_ID, 65, EOS_ID, PAD_ID, PAD_ID, PAD_ID],
    ])
    np.testing.assert_array_equal(token_counts(ids), [4, 2, 3])
    np.testing.assert_array_equal(target_mask(ids), [
        [True, True, True, False, False],
        [True, False, False, False, False],
        [True, True, False, False, False],
    ])
    assert encode([], 4).shape == (0, 4)


def test_non_ascii_round_trip() -> None:
    texts = ["Zoë Müller — 東京, 🙂 ok", "naïve café", "plain"]
    ids = encode(texts, 64)
    # Each byte of the UTF-8 encoding is one token: 'ë' is 2 tokens, '東' 3, '🙂' 4.
    np.testing.assert_array_equal(token_counts(ids), [len(t.encode("utf-8")) + 2 for t in texts])
    assert [decode(row) for row in ids] == texts
    assert not truncated(ids).any()


def test_truncation_keeps_no_eos() -> None:
    length = 8
    fits = "x" * (length - 2)       # BOS + 6 bytes + EOS fill the row exactly
    cut = "y" * (length - 1)        # one byte too many for EOS: cut, no EOS
    long = "z" * 50
    ids = encode([fits, cut, long], length)
    np.testing.assert_array_equal(ids[0], [BOS_ID, *[ord("x")] * 6, EOS_ID])
    np.testing.assert_array_equal(ids[1], [BOS_ID, *[ord("y")] * 7])
    np.testing.assert_array_equal(ids[2], [BOS_ID, *[ord("z")] * 7])
    assert not (ids[1:] == EOS_ID).any() and not (ids == PAD_ID).any()
    np.testing.assert_array_equal(truncated(ids), [False, True, True])
    assert decode(ids[2]) == "z" * 7


def test_a_cut_through_a_character_decodes_to_the_replacement_character() -> None:
    ids = encode(["ab東"], 4)  # BOS, a, b, and the first of 東's three bytes
    assert ids[0, -1] == "東".encode()[0]
    assert decode(ids[0]) == "ab\ufffd"


def test_decode_drops_the_specials_wherever_they_are() -> None:
    row = np.array([BOS_ID, 104, 105, EOS_ID, 33, PAD_ID], dtype=np.int64)
    assert decode(row) == "hi!"


def test_encode_bytes_takes_any_bytes() -> None:
    ids = encode_bytes([b"k\xff\x80"], 6)
    np.testing.assert_array_equal(ids[0], [BOS_ID, 107, 255, 128, EOS_ID, PAD_ID])
    assert decode(ids[0]) == "k\ufffd\ufffd"


def test_prefix_ids_have_no_eos_or_padding() -> None:
    rows = prefix_ids([b"ab", b""])
    np.testing.assert_array_equal(rows[0], [BOS_ID, 97, 98])
    np.testing.assert_array_equal(rows[1], [BOS_ID])
    assert all(row.dtype == np.int64 for row in rows)


@pytest.mark.parametrize(("call", "message"), [
    (lambda: encode(["a"], 1), "max_length must be at least 2"),
    (lambda: encode(["a"], 3.0), "max_length must be an integer"),
    (lambda: encode("abc", 8), "texts must be a sequence of strings"),
    (lambda: encode(["a", b"b"], 8), r"texts\[1\] must be a str"),
    (lambda: encode(["\ud800"], 8), r"texts\[0\] cannot be encoded as UTF-8"),
    (lambda: encode_bytes([b"a", "b"], 8), r"texts\[1\] must be bytes"),
    (lambda: decode(np.array([[BOS_ID, 97]])), "ids must be one row"),
    (lambda: decode(np.array([BOS_ID, 300])), r"ids must be token ids in \[0, 259\)"),
    (lambda: decode(np.array([1.0, 2.0])), "ids must be integer token ids"),
    (lambda: token_counts(np.array([BOS_ID, 97])), r"ids must be rows of token ids \(N, L\)"),
    (lambda: prefix_ids(["ab"]), r"texts\[0\] must be bytes"),
])
def test_bad_arguments_are_named(call: object, message: str) -> None:
    with pytest.raises(ArgumentError, match=message):
        call()  # type: ignore[operator]
