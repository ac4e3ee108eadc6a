"""The byte-level tokenizer of auditml's language models: shipped, nothing to train or download.

A token is a byte of the text's UTF-8 encoding (ids 0..255) or one of three specials: ``PAD_ID``
(256), ``BOS_ID`` (257) and ``EOS_ID`` (258), so ``VOCAB_SIZE`` is 259. Every text is
representable and decoding needs no table; the price is longer sequences than a subword
vocabulary gives (one token per byte), which suits the short records auditml trains on.

A row of :func:`encode` is ``BOS, the text's bytes, EOS, PAD, ...`` (right padding) of length
``max_length``. A text of more than ``max_length - 2`` bytes is cut after its first
``max_length - 1`` bytes and keeps no EOS (the row has no room for one), so a truncated row is
recognisable: it ends in a byte, not in PAD or EOS. The cut is at a byte, so it may split a
multi-byte character; :func:`decode` then shows U+FFFD for the partial character.

Per-token arrays of the language-model signals are about next-token positions: entry ``t`` of
an ``(N, L - 1)`` array is about predicting ``ids[:, t + 1]`` from ``ids[:, :t + 1]``, and
:func:`target_mask` says which of those targets are real tokens (not PAD).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from auditml.errors import ArgumentError

PAD_ID = 256
BOS_ID = 257
EOS_ID = 258
VOCAB_SIZE = 259
# BOS and EOS: the shortest row holds an empty text.
MIN_LENGTH = 2


def encode(texts: Sequence[str], max_length: int) -> np.ndarray:
    """Token ids (int64 ``(N, max_length)``) of ``texts``, each encoded as UTF-8."""
    if isinstance(texts, str | bytes):
        raise ArgumentError("texts must be a sequence of strings, got a single string")
    encoded: list[bytes] = []
    for index, text in enumerate(texts):
        if not isinstance(text, str):
            raise ArgumentError(f"texts[{index}] must be a str, got {type(text).__name__}")
        # "surrogatepass" would write invalid UTF-8; a lone surrogate is refused instead.
        try:
            encoded.append(text.encode("utf-8"))
        except UnicodeEncodeError as error:
            raise ArgumentError(
                f"texts[{index}] cannot be encoded as UTF-8 ({error.reason} at character "
                f"{error.start})"
            ) from None
    return encode_bytes(encoded, max_length)


def encode_bytes(texts: Sequence[bytes], max_length: int) -> np.ndarray:
    """As :func:`encode`, for texts given as bytes (any bytes: a secret of bytes that are not
    valid UTF-8 included, see :mod:`auditml.data.secrets`)."""
    _check_max_length(max_length)
    if isinstance(texts, str | bytes):
        raise ArgumentError("texts must be a sequence of bytes objects, got a single one")
    ids = np.full((len(texts), max_length), PAD_ID, dtype=np.int64)
    ids[:, 0] = BOS_ID
    for row, text in enumerate(texts):
        if not isinstance(text, bytes | bytearray):
            raise ArgumentError(f"texts[{row}] must be bytes, got {type(text).__name__}")
        values = np.frombuffer(bytes(text[: max_length - 1]), dtype=np.uint8)
        ids[row, 1 : 1 + len(values)] = values
        if len(text) <= max_length - 2:
            ids[row, 1 + len(values)] = EOS_ID
    return ids


def text_bytes(ids: np.ndarray) -> bytes:
    """The bytes one row encodes: its byte tokens, without BOS, EOS and padding (what a
    compressor sees of the text; zlib's membership signal)."""
    row = _check_ids(ids, "ids")
    if row.ndim != 1:
        raise ArgumentError(f"ids must be one row (1-D), got shape {row.shape}")
    return row[row < 256].astype(np.uint8).tobytes()


def prefix_ids(texts: Sequence[bytes]) -> list[np.ndarray]:
    """BOS and the bytes of each text, without EOS or padding (int64, 1-D each): prompts for a
    model to continue (a canary's prefix, whose continuation should be its secret)."""
    if isinstance(texts, str | bytes):
        raise ArgumentError("texts must be a sequence of bytes objects, got a single one")
    rows = []
    for index, text in enumerate(texts):
        if not isinstance(text, bytes | bytearray):
            raise ArgumentError(f"texts[{index}] must be bytes, got {type(text).__name__}")
        values = np.frombuffer(bytes(text), dtype=np.uint8).astype(np.int64)
        rows.append(np.concatenate([np.array([BOS_ID], dtype=np.int64), values]))
    return rows


def decode(ids: np.ndarray) -> str:
    """The text of one row of token ids: the specials dropped, the bytes decoded as UTF-8 with
    invalid sequences shown as U+FFFD."""
    return text_bytes(ids).decode("utf-8", errors="replace")


def token_counts(ids: np.ndarray) -> np.ndarray:
    """The number of tokens that are not PAD in each row (int64 ``(N,)``); BOS and EOS count."""
    array = _check_rows(ids)
    return (array != PAD_ID).sum(axis=1).astype(np.int64)


def target_mask(ids: np.ndarray) -> np.ndarray:
    """Which next-token targets are real (bool ``(N, L - 1)``): ``mask[:, t]`` is
    ``ids[:, t + 1] != PAD_ID``."""
    return _check_rows(ids)[:, 1:] != PAD_ID


def truncated(ids: np.ndarray) -> np.ndarray:
    """Which rows were cut by :func:`encode` (bool ``(N,)``): their last token is a byte."""
    return _check_rows(ids)[:, -1] < 256


def _check_max_length(max_length: int) -> None:
    if isinstance(max_length, bool) or not isinstance(max_length, int | np.integer):
        raise ArgumentError(f"max_length must be an integer, got {max_length!r}")
    if max_length < MIN_LENGTH:
        raise ArgumentError(
            f"max_length must be at least {MIN_LENGTH} (room for BOS and EOS), got {max_length}"
        )


def _check_ids(ids: np.ndarray, name: str) -> np.ndarray:
    array = np.asarray(ids)
    if array.dtype.kind not in "iu":
        raise ArgumentError(f"{name} must be integer token ids, got dtype {array.dtype}")
    if array.size and (array.min() < 0 or array.max() >= VOCAB_SIZE):
        raise ArgumentError(
            f"{name} must be token ids in [0, {VOCAB_SIZE}), got values in "
            f"[{array.min()}, {array.max()}]"
        )
    return array


def _check_rows(ids: np.ndarray) -> np.ndarray:
    array = _check_ids(ids, "ids")
    if array.ndim != 2:
        raise ArgumentError(f"ids must be rows of token ids (N, L), got shape {array.shape}")
    return array
