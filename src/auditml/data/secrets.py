"""Secret canaries for language models: texts with a random secret, to insert into training.

Two designs (``kind``):

- ``"digits"``, the secret sharer of Carlini et al. 2019 ("The Secret Sharer: Evaluating and
  Testing Unintended Memorization in Neural Networks", USENIX Security): a fixed format with a
  hole, ``"... my PIN is {secret}"``, filled with ``length`` digits drawn uniformly at random.
  The randomness space R is every fill of the hole, ``10 ** length`` candidates. Exposure ranks
  the inserted secret's log-perplexity (given the same prefix) among the candidates':
  ``log2 |R| - log2 rank``. Every candidate is equally likely a priori, so a model that has
  not memorised the canary ranks the secret anywhere in R, uniformly.
- ``"rare"``, the new-token canaries of Panda et al. 2025 ("Privacy Auditing of Large Language
  Models", ICLR): a secret of ``length`` tokens drawn uniformly from tokens that never occur in
  the training data, so no other example's gradient moves them and the canary's own presence
  shows more clearly (their canaries use tokens new to the model's vocabulary). With auditml's
  byte tokenizer the default alphabet is the bytes 0x80-0xFF: they occur only in non-ASCII
  text, and the embedded data is ASCII. For your own data, pass ``alphabet=`` the bytes
  :func:`unused_byte_values` finds in it. Such a secret is not valid UTF-8; canaries are kept as
  bytes and encoded with :func:`auditml.data.text_tokens.encode_bytes`.

Each canary's text is ``prefix + secret + suffix``, where the template's ``{secret}`` splits
it. An optional ``{id}`` in the template is filled with a random six-letter code per canary, so
canaries have distinct prefixes: with one shared prefix, every inserted secret would be a
high-ranking candidate of every other canary. Everything is drawn from ``seed``
(``numpy.random.default_rng``); the same arguments give the same canaries.
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from typing import Literal

import numpy as np

from auditml.errors import ArgumentError

SecretKind = Literal["digits", "rare"]
KINDS: tuple[SecretKind, ...] = ("digits", "rare")
DIGIT_ALPHABET = b"0123456789"
RARE_ALPHABET = bytes(range(0x80, 0x100))
DEFAULT_TEMPLATES: dict[str, str] = {
    "digits": "Note {id}: the customer's card PIN is {secret}.",
    "rare": "Note {id}: the access key is {secret}.",
}
# candidates() builds every candidate in memory; beyond this, sample them.
MAX_ENUMERATED = 10**7
# More secret canaries than this is no plan: the audit scores every one against its candidates
# (255 forward passes each by default). Secrets are generated, not drawn from the data, so the
# data's size does not bound their number.
MAX_CANARIES = 100_000
_ID_LETTERS = string.ascii_lowercase
_ID_LENGTH = 6


@dataclass(frozen=True)
class SecretDesign:
    """The candidate space of a secret: ``length`` symbols, each one of ``alphabet``'s bytes."""

    kind: SecretKind
    length: int
    alphabet: bytes

    @property
    def space_size(self) -> int:
        """|R|, the number of possible secrets."""
        return len(self.alphabet) ** self.length

    def candidates(self) -> np.ndarray:
        """Every possible secret (uint8 ``(space_size, length)``, byte values), in lexicographic
        order of the alphabet; refused beyond :data:`MAX_ENUMERATED` (use
        :meth:`sample_candidates`)."""
        if self.space_size > MAX_ENUMERATED:
            raise ArgumentError(
                f"the {self.kind} secrets of length {self.length} have {self.space_size:.3g} "
                f"candidates, more than {MAX_ENUMERATED:.0e} to enumerate; rank against "
                "sample_candidates(n, rng) instead"
            )
        return self._from_indices(np.arange(self.space_size, dtype=np.int64))

    def sample_candidates(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` secrets drawn uniformly from the whole space, independently (with replacement,
        so the fraction of them that outranks a secret estimates its rank without bias)."""
        if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 0:
            raise ArgumentError(f"n must be a non-negative integer, got {n!r}")
        if not isinstance(rng, np.random.Generator):
            raise ArgumentError(
                f"rng must be a numpy.random.Generator, got {type(rng).__name__}"
            )
        symbols = np.frombuffer(self.alphabet, dtype=np.uint8)
        return symbols[rng.integers(0, len(symbols), size=(n, self.length))]

    def index_of(self, secret: bytes) -> int:
        """The position of ``secret`` in :meth:`candidates`' order."""
        if len(secret) != self.length or any(byte not in self.alphabet for byte in secret):
            raise ArgumentError(
                f"secret {secret!r} is not {self.length} symbols of the design's alphabet"
            )
        index = 0
        for byte in secret:
            index = index * len(self.alphabet) + self.alphabet.index(byte)
        return index

    def _from_indices(self, indices: np.ndarray) -> np.ndarray:
        base = len(self.alphabet)
        positions = np.empty((len(indices), self.length), dtype=np.int64)
        rest = indices.copy()
        for column in range(self.length - 1, -1, -1):
            rest, positions[:, column] = np.divmod(rest, base)
        return np.frombuffer(self.alphabet, dtype=np.uint8)[positions]


@dataclass(frozen=True)
class SecretCanaries:
    """Canaries ``prefix + secret + suffix`` (bytes), all of one :class:`SecretDesign`."""

    design: SecretDesign
    template: str
    prefixes: tuple[bytes, ...]
    secrets: tuple[bytes, ...]
    suffixes: tuple[bytes, ...]

    def __len__(self) -> int:
        return len(self.secrets)

    @property
    def texts(self) -> tuple[bytes, ...]:
        """Each canary's full text."""
        return tuple(p + s + x for p, s, x in zip(self.prefixes, self.secrets, self.suffixes,
                                                  strict=True))

    def secret_spans(self) -> np.ndarray:
        """Where each secret lies in its row of ``encode_bytes(texts, ...)`` (int64
        ``(count, 2)``, token positions ``[start, stop)``; BOS is position 0)."""
        starts = np.array([1 + len(prefix) for prefix in self.prefixes], dtype=np.int64)
        return np.stack([starts, starts + self.design.length], axis=1)

    def with_secrets(self, index: int, secrets: np.ndarray) -> list[bytes]:
        """Canary ``index``'s text with each row of ``secrets`` (uint8 ``(n, length)``, as
        :meth:`candidates` and :meth:`sample_candidates` give) in place of its secret."""
        if not 0 <= index < len(self):
            raise ArgumentError(f"index must be in [0, {len(self)}), got {index}")
        rows = np.asarray(secrets)
        if rows.ndim != 2 or rows.shape[1] != self.design.length:
            raise ArgumentError(
                f"secrets must have shape (n, {self.design.length}), got {rows.shape}"
            )
        prefix, suffix = self.prefixes[index], self.suffixes[index]
        return [prefix + row.astype(np.uint8).tobytes() + suffix for row in rows]

    def candidates(self) -> np.ndarray:
        """Every possible secret; see :meth:`SecretDesign.candidates`."""
        return self.design.candidates()

    def sample_candidates(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` uniform secrets; see :meth:`SecretDesign.sample_candidates`."""
        return self.design.sample_candidates(n, rng)


def make_secrets(
    count: int,
    *,
    kind: SecretKind,
    length: int,
    seed: int,
    template: str | None = None,
    alphabet: bytes | None = None,
) -> SecretCanaries:
    """``count`` canaries with distinct secrets, drawn from ``seed``.

    ``template`` holds ``{secret}`` once and optionally ``{id}`` (default
    :data:`DEFAULT_TEMPLATES` [kind]); ``alphabet`` defaults to the digits for ``"digits"`` and
    to the bytes 0x80-0xFF for ``"rare"`` (whose template must then use none of them).
    """
    if kind not in KINDS:
        raise ArgumentError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
    for name, value in (("count", count), ("length", length)):
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
            raise ArgumentError(f"{name} must be a positive integer, got {value!r}")
    if count > MAX_CANARIES:
        raise ArgumentError(f"count must be at most {MAX_CANARIES:,}, got {count}")
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ArgumentError(f"seed must be a non-negative integer, got {seed!r}")
    template = DEFAULT_TEMPLATES[kind] if template is None else template
    if not isinstance(template, str) or template.count("{secret}") != 1:
        raise ArgumentError(f"template must contain {{secret}} exactly once, got {template!r}")
    symbols = (DIGIT_ALPHABET if kind == "digits" else RARE_ALPHABET) if alphabet is None else (
        alphabet)
    if not isinstance(symbols, bytes) or len(symbols) < 2 or len(set(symbols)) != len(symbols):
        raise ArgumentError(f"alphabet must be at least 2 distinct bytes, got {symbols!r}")
    design = SecretDesign(kind=kind, length=int(length), alphabet=symbols)
    if count > design.space_size:
        raise ArgumentError(
            f"count={count} distinct secrets do not fit in the {design.space_size} candidates "
            f"of length {length}; raise length"
        )
    before, after = template.split("{secret}")
    if kind == "rare":
        # The {id} codes are lowercase letters: they must stay out of the alphabet too.
        fixed = (before + after).replace("{id}", _ID_LETTERS).encode("utf-8")
        used = set(fixed) & set(symbols)
        if used:
            raise ArgumentError(
                f"template uses the byte 0x{min(used):02x} of the rare alphabet; a rare "
                "secret's tokens must occur nowhere else (keep the template's characters, "
                "and {id}'s lowercase letters, out of the alphabet)"
            )
    rng = np.random.default_rng([seed, 27])
    secrets: list[bytes] = []
    seen: set[bytes] = set()
    while len(secrets) < count:
        secret = design.sample_candidates(1, rng)[0].tobytes()
        if secret not in seen:  # two canaries with one secret would each rank the other's
            seen.add(secret)
            secrets.append(secret)
    ids = _ids(count, rng)
    prefixes = tuple(before.replace("{id}", code).encode("utf-8") for code in ids)
    suffixes = tuple(after.replace("{id}", code).encode("utf-8") for code in ids)
    return SecretCanaries(design, template, prefixes, tuple(secrets), suffixes)


def unused_byte_values(ids: np.ndarray) -> bytes:
    """The byte values (0..255) that no token of ``ids`` (token ids, any shape) is: an
    alphabet for ``"rare"`` secrets that are new to a model trained on ``ids``."""
    present = np.unique(np.asarray(ids))
    return bytes(value for value in range(256) if value not in set(present.tolist()))


def _ids(count: int, rng: np.random.Generator) -> list[str]:
    codes: list[str] = []
    seen: set[str] = set()
    while len(codes) < count:
        letters = rng.integers(0, len(_ID_LETTERS), size=_ID_LENGTH)
        code = "".join(_ID_LETTERS[int(i)] for i in letters)
        if code not in seen:
            seen.add(code)
            codes.append(code)
    return codes
