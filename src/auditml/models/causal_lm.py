"""Causal language models: a small GPT-2 built from a configuration, LoRA, and what audits need.

A causal LM in auditml is an ``nn.Module`` whose ``forward(input_ids)`` takes token ids of shape
``(N, L)`` and returns logits ``(N, L, V)``, position ``t`` predicting token ``t + 1``. Texts are
right-padded with ``PAD_ID`` (see the byte-level tokenizer in :mod:`auditml.data`): with causal
attention a real token never attends to a later PAD, so no attention mask is needed, and PAD
targets are left out of every loss and score here.

Per-token arrays are over next-token positions, shape ``(N, L - 1)``: entry ``t`` is about
predicting ``input_ids[:, t + 1]`` from ``input_ids[:, : t + 1]``, and
``mask[:, t] = input_ids[:, t + 1] != PAD_ID``.

Training checks that the weights really moved (:mod:`auditml.training.update_check`): DP-LoRA
fine-tuning can fail silently (Opacus issue 820).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from auditml.data.text_tokens import BOS_ID, EOS_ID, PAD_ID, VOCAB_SIZE
from auditml.errors import ArgumentError


class CausalLM(nn.Module):
    """A Hugging Face causal LM behind auditml's interface: ``forward(input_ids) -> logits``.

    Position ids are passed explicitly, one row per example: Opacus computes per-sample gradients
    of the position embedding only when its input has the batch dimension (a shared ``(1, L)``
    row would give one gradient for the whole batch).
    """

    def __init__(
        self, language_model: nn.Module, *, pad_id: int = PAD_ID, byte_tokens: bool = True
    ) -> None:
        super().__init__()
        self.language_model = language_model
        # The id that right-pads its rows (no loss, no score), and whether its token ids are
        # auditml's bytes (then a row's text is its bytes: what zlib compresses).
        self.pad_id = int(pad_id)
        self.byte_tokens = byte_tokens

    @classmethod
    def from_pretrained_model(cls, language_model: nn.Module, *, pad_id: int) -> CausalLM:
        """Wrap a user's own Hugging Face causal LM (anything whose call with ``input_ids`` and
        ``position_ids`` returns an object with ``.logits``); its weights are used as they are.
        Its rows are token ids of its own tokenizer, right-padded with ``pad_id`` (e.g. the
        tokenizer's ``pad_token_id``, or its EOS id when it has none)."""
        if not isinstance(language_model, nn.Module) or not hasattr(language_model, "config"):
            raise ArgumentError(
                f"language_model must be a Hugging Face causal LM (an nn.Module with a config), "
                f"got {type(language_model).__name__}"
            )
        vocab = int(_config(language_model).vocab_size)
        if isinstance(pad_id, bool) or not isinstance(pad_id, int) or not 0 <= pad_id < vocab:
            raise ArgumentError(f"pad_id must be a token id in [0, {vocab}), got {pad_id!r}")
        return cls(language_model, pad_id=pad_id, byte_tokens=False)

    @property
    def vocab_size(self) -> int:
        """Number of token ids the model scores (the last dimension of its logits)."""
        return int(_config(self.language_model).vocab_size)

    @property
    def max_length(self) -> int | None:
        """Longest sequence the model's position embedding covers, or None if unbounded."""
        config = _config(self.language_model)
        for key in ("n_positions", "max_position_embeddings"):
            value = getattr(config, key, None)
            if isinstance(value, int):
                return value
        return None

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        batch, length = input_ids.shape
        # Contiguous (not an expand view): Opacus's ghost clipping reshapes embedding inputs.
        position_ids = torch.arange(length, device=input_ids.device).repeat(batch, 1)
        output = self.language_model(input_ids=input_ids, position_ids=position_ids)
        return output.logits


def _config(language_model: nn.Module) -> Any:
    # A PeftModel keeps the wrapped model's config at the same attribute.
    return language_model.config


def gpt2_tiny(input_shape: tuple[int, ...], num_classes: int) -> CausalLM:
    """A 2-layer GPT-2, 128 wide with 4 heads, over the byte-level vocabulary (~0.5M parameters).

    Sized to train on 2 CPU cores in minutes. ``input_shape`` is ``(max_length,)``, the position
    embedding's size; ``num_classes`` (the data's categories) does not change the model. The input
    and output embeddings are untied: Opacus stacks per-sample gradients per parameter, and a tied
    matrix would be one parameter used by two layers (safetensors, the run directory's format,
    also refuses shared tensors). No dropout: the models audited are small and
    trained briefly, and deterministic training makes runs reproducible.
    """
    from transformers import GPT2Config, GPT2LMHeadModel

    if len(input_shape) != 1 or input_shape[0] < 2:
        raise ValueError(
            f"gpt2_tiny takes token sequences of shape (max_length,) with max_length >= 2, "
            f"got {tuple(input_shape)}"
        )
    del num_classes  # a language model predicts tokens, not the data's categories
    config = GPT2Config(
        vocab_size=VOCAB_SIZE, n_positions=input_shape[0], n_embd=128, n_layer=2, n_head=4,
        resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, tie_word_embeddings=False,
        # No pad_token_id: Hugging Face would then ask for an attention mask on every padded
        # batch. Right padding needs none (a real token never attends to a later PAD), and PAD
        # targets are masked out of the losses and scores here.
        bos_token_id=BOS_ID, eos_token_id=EOS_ID,
    )
    return CausalLM(GPT2LMHeadModel(config))


def with_lora(
    model: CausalLM, *, rank: int = 8, alpha: float = 16, dropout: float = 0.0
) -> CausalLM:
    """``model`` with LoRA adapters (Hu et al. 2022) on its attention projections ``c_attn``;
    only the adapters are trainable.

    ``peft`` changes ``model``'s modules in place (the result shares them). Build the optimizer
    and make the model private *after* this call and after the model is on its device: Opacus and
    the optimizer hold the parameter objects that exist when they are set up (Opacus issue 820).
    """
    from peft import LoraConfig, get_peft_model

    if not isinstance(model, CausalLM):
        raise ArgumentError(f"model must be a CausalLM, got {type(model).__name__}")
    if isinstance(rank, bool) or not isinstance(rank, int) or rank < 1:
        raise ArgumentError(f"rank must be a positive integer, got {rank!r}")
    if not (isinstance(alpha, int | float) and math.isfinite(alpha) and alpha > 0):
        raise ArgumentError(f"alpha must be a positive number, got {alpha!r}")
    if not (isinstance(dropout, int | float) and 0 <= dropout < 1):
        raise ArgumentError(f"dropout must be in [0, 1), got {dropout!r}")
    # GPT-2's c_attn is a transformers Conv1D whose weight is stored (in, out): fan_in_fan_out.
    config = LoraConfig(
        r=rank, lora_alpha=alpha, lora_dropout=dropout, target_modules=["c_attn"],
        fan_in_fan_out=True, bias="none",
    )
    with warnings.catch_warnings():
        # peft calls a transformers method deprecated in 5.x; nothing the caller can change.
        warnings.filterwarnings("ignore", message="`is_gradient_checkpointing` is deprecated",
                                category=FutureWarning)
        adapted = get_peft_model(model.language_model, config)
    return CausalLM(adapted)


def per_example_loss(logits: torch.Tensor, input_ids: torch.Tensor) -> torch.Tensor:
    """Each example's mean next-token cross-entropy over its non-PAD targets, shape ``(N,)``.

    A row with no target (impossible for encoded texts, which hold BOS and a token) gives 0.
    """
    targets = input_ids[:, 1:]
    predictions = logits[:, :-1]
    token_loss = F.cross_entropy(
        predictions.reshape(-1, predictions.shape[-1]), targets.reshape(-1), reduction="none"
    ).view(targets.shape)
    mask = (targets != PAD_ID).to(token_loss.dtype)
    return (token_loss * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1)


def next_token_loss(logits: torch.Tensor, input_ids: torch.Tensor) -> torch.Tensor:
    """The batch mean of :func:`per_example_loss`: with Opacus (``loss_reduction="mean"``) each
    example's gradient is that of its own sequence's loss, whatever its length."""
    return per_example_loss(logits, input_ids).mean()


class NextTokenLoss(nn.Module):
    """:func:`next_token_loss` as a criterion ``(logits, input_ids) -> loss``, for Opacus's
    ghost clipping (``make_private(..., grad_sample_mode="ghost", criterion=NextTokenLoss())``).

    Opacus sets ``reduction = "none"`` to get each sequence's loss, ``(N,)``. With ghost clipping
    the training loss must be computed by the criterion ``make_private`` returns: a loss computed
    directly (as with hooks) runs without error in Opacus 1.6 but leaves the per-sample gradients
    unclipped, so the update is not DP (the pitfall of Opacus issue 732).
    """

    def __init__(self, reduction: str = "mean") -> None:
        super().__init__()
        if reduction not in ("mean", "sum", "none"):
            raise ArgumentError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
        self.reduction = reduction

    def forward(self, logits: torch.Tensor, input_ids: torch.Tensor) -> torch.Tensor:
        losses = per_example_loss(logits, input_ids)
        if self.reduction == "none":
            return losses
        return losses.sum() if self.reduction == "sum" else losses.mean()


def next_token_predictions(
    logits: torch.Tensor, input_ids: torch.Tensor, pad_id: int = PAD_ID
) -> tuple[int, int]:
    """``(right, counted)``: next tokens the logits' argmax predicts right, out of the targets
    that are not ``pad_id`` (a language model's accuracy; :mod:`auditml.training.task`)."""
    targets = input_ids[:, 1:]
    real = targets != pad_id
    right = (logits[:, :-1].argmax(dim=-1) == targets) & real
    return int(right.sum()), int(real.sum())


def next_token_evaluation(
    model: nn.Module, input_ids: np.ndarray, *, batch_size: int = 64, device: str = "cpu"
) -> tuple[float, float]:
    """``(accuracy, perplexity)`` of ``model``'s next-token predictions on ``input_ids`` over all
    their non-PAD targets: the argmax's hit rate, and ``exp`` of the mean token cross-entropy
    (every token weighs the same, so longer texts weigh more). Eval mode, no gradients."""
    ids = _check_ids(input_ids, "input_ids", model, min_length=2)
    _check_positive(batch_size, "batch_size")
    pad = pad_id_of(model)
    right = counted = 0
    total_loss = 0.0
    with _evaluating(model), torch.no_grad():
        for rows in _batches_by_length(ids, pad, batch_size):
            batch = trim_padding(torch.as_tensor(ids[rows], device=device), pad)
            logits = model(batch).float()
            hits, real = next_token_predictions(logits, batch, pad)
            right, counted = right + hits, counted + real
            targets = batch[:, 1:]
            losses = F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]),
                                     targets.reshape(-1), reduction="none")
            total_loss += float((losses * (targets.reshape(-1) != pad)).sum())
    if counted == 0:
        return float("nan"), float("nan")
    return right / counted, math.exp(total_loss / counted)


@dataclass(frozen=True)
class TokenStatistics:
    """A model's next-token statistics on sequences, each ``(N, L - 1)``.

    ``log_probs``: log p of the actual next token. ``mean`` and ``std``: mean and standard
    deviation of log p(z) for z drawn from the model's next-token distribution p at that position
    (μ = Σ p log p, σ² = Σ p (log p)² − μ²; Min-K%++, Zhang et al. 2024). ``mask``: whether the
    target is a real token (not PAD).
    """

    log_probs: np.ndarray
    mean: np.ndarray
    std: np.ndarray
    mask: np.ndarray


def token_statistics(
    model: nn.Module, input_ids: np.ndarray, *, batch_size: int = 64, device: str = "cpu"
) -> TokenStatistics:
    """:class:`TokenStatistics` of ``model`` (already on ``device``) on ``input_ids`` (int
    ``(N, L)``), in eval mode without gradients; the model's training mode is restored after."""
    ids = _check_ids(input_ids, "input_ids", model, min_length=2)
    _check_positive(batch_size, "batch_size")
    pad = pad_id_of(model)
    # Zero where a batch was cut: its entries after its longest row's last token are padding.
    log_probs, mean, std = (np.zeros((len(ids), ids.shape[1] - 1)) for _ in range(3))
    with _evaluating(model), torch.no_grad():
        for rows in _batches_by_length(ids, pad, batch_size):
            # Without the batch's trailing padding (no real token attends to it; its entries
            # are masked).
            batch = trim_padding(torch.as_tensor(ids[rows], device=device), pad)
            log_p = torch.log_softmax(model(batch)[:, :-1].float(), dim=-1)
            p = log_p.exp()
            actual = log_p.gather(-1, batch[:, 1:, None]).squeeze(-1)
            # p log p is 0 where p is 0 (a -inf logit), not nan.
            entropy_mean = torch.where(p > 0, p * log_p, 0.0).sum(-1)
            # Σ p (log p − μ)², equal to Σ p (log p)² − μ² but without its cancellation.
            centred = torch.where(p > 0, log_p - entropy_mean[..., None], 0.0)
            variance = (p * centred.square()).sum(-1)
            width = batch.shape[1] - 1
            for out, values in ((log_probs, actual), (mean, entropy_mean), (std, variance.sqrt())):
                out[rows, :width] = values.double().cpu().numpy()
    return TokenStatistics(log_probs=log_probs, mean=mean, std=std, mask=ids[:, 1:] != pad)


def _batches_by_length(ids: np.ndarray, pad: int, batch_size: int) -> Iterator[np.ndarray]:
    """Row indices of ``ids`` in batches of ``batch_size``, shortest rows first (stable).

    Each batch is then cut after its longest row (:func:`trim_padding`), so rows of like length
    together leave little padding to compute: on the embedded texts (118 of 168 tokens on
    average) an evaluation takes 0.6 of the time it takes in the rows' own order. Rows are
    scored alone (causal attention, no batch statistics in eval mode), so the order changes no
    result beyond float rounding; callers put each row's result back in its place.
    """
    real = ids != pad
    lengths = np.where(real.any(axis=1), ids.shape[1] - real[:, ::-1].argmax(axis=1), 0)
    order = np.argsort(lengths, kind="stable")
    for start in range(0, len(order), batch_size):
        yield order[start:start + batch_size]


def pad_id_of(model: nn.Module) -> int:
    """The id that pads ``model``'s rows: its own (:class:`CausalLM`), else auditml's PAD."""
    return model.pad_id if isinstance(model, CausalLM) else PAD_ID


def trim_padding(ids: torch.Tensor, pad_id: int = PAD_ID) -> torch.Tensor:
    """Token ids ``(N, L)`` without the columns after the longest row's last real (not
    ``pad_id``) token, at least two columns (one prediction). Exact for a causal model: no real
    token attends to a later position, and padding targets carry no loss or score."""
    real = (ids != pad_id).any(dim=0).nonzero()
    length = int(real.max()) + 1 if len(real) else 0
    return ids[:, : max(length, 2)]


def greedy_continuation(
    model: nn.Module, prefix_ids: np.ndarray | Sequence[np.ndarray], length: int,
    *, device: str = "cpu",
) -> np.ndarray:
    """The ``length`` tokens ``model`` generates after each prefix by argmax decoding, int64
    ``(N, length)`` (the extraction attack of Carlini et al. 2019/2021).

    ``prefix_ids`` is an int ``(N, P)`` array or a list of 1-D arrays of any lengths (each should
    start with ``BOS_ID`` and hold no PAD or EOS). Prefixes of equal length are decoded together.
    """
    _check_positive(length, "length")
    if isinstance(prefix_ids, np.ndarray) and prefix_ids.ndim != 2:
        raise ArgumentError(
            f"prefix_ids must be an (N, P) array or a list of 1-D arrays, got shape "
            f"{prefix_ids.shape}"
        )
    rows = list(prefix_ids)
    if not rows:
        raise ArgumentError("prefix_ids must hold at least one prefix, got none")
    prefixes = [_check_ids(np.asarray(row)[None], "prefix_ids", model, min_length=1)[0]
                for row in rows]
    limit = model.max_length if isinstance(model, CausalLM) else None
    longest = max(len(row) for row in prefixes)
    if limit is not None and longest + length - 1 > limit:
        raise ArgumentError(
            f"prefix_ids of {longest} tokens plus length={length} exceed the model's "
            f"{limit} positions; shorten the prefixes or ask for at most {limit - longest + 1} "
            "tokens"
        )
    out = np.empty((len(prefixes), length), dtype=np.int64)
    by_length: dict[int, list[int]] = {}
    for index, row in enumerate(prefixes):
        by_length.setdefault(len(row), []).append(index)
    with _evaluating(model), torch.no_grad():
        for indices in by_length.values():
            tokens = torch.as_tensor(np.stack([prefixes[i] for i in indices]), device=device)
            for _ in range(length):
                following = model(tokens)[:, -1].argmax(dim=-1, keepdim=True)
                tokens = torch.cat([tokens, following], dim=1)
            out[indices] = tokens[:, -length:].cpu().numpy()
    return out


class _evaluating:
    """Eval mode for a block, then the model's previous mode."""

    def __init__(self, model: nn.Module) -> None:
        self.model = model
        self.was_training = model.training

    def __enter__(self) -> None:
        self.model.eval()

    def __exit__(self, *exc: object) -> None:
        self.model.train(self.was_training)


def _check_ids(ids: Any, name: str, model: nn.Module, *, min_length: int) -> np.ndarray:
    array = np.asarray(ids)
    if array.ndim != 2 or array.shape[0] == 0 or array.shape[1] < min_length:
        raise ArgumentError(
            f"{name} must be an integer array of shape (N, L) with N >= 1 and L >= {min_length}, "
            f"got shape {array.shape}"
        )
    if not np.issubdtype(array.dtype, np.integer):
        raise ArgumentError(f"{name} must hold integer token ids, got dtype {array.dtype}")
    vocab = model.vocab_size if isinstance(model, CausalLM) else None
    if array.min() < 0 or (vocab is not None and array.max() >= vocab):
        raise ArgumentError(
            f"{name} must hold token ids in [0, {vocab}), got values in "
            f"[{array.min()}, {array.max()}]"
        )
    return array.astype(np.int64, copy=False)


def _check_positive(value: Any, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ArgumentError(f"{name} must be a positive integer, got {value!r}")
