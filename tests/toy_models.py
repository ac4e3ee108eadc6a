"""Small models and tasks shared by the attack tests (importable: ``pythonpath`` in pyproject).

The planted task: points labelled by a fixed linear rule; "planted" points get a wrong label,
which only memorisation can fit, so a model that trained on them is recognisably a member.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from auditml.data import ArrayDataset

DIM, CLASSES = 8, 10
RULE = np.random.default_rng(123).normal(size=(DIM, CLASSES))


def fit(model: nn.Module, x: np.ndarray, y: np.ndarray, *, lr: float, steps: int) -> nn.Module:
    """Full-batch Adam on cross-entropy for ``steps`` steps; returns the model in eval mode."""
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    inputs, labels = torch.from_numpy(x), torch.from_numpy(y)
    for _ in range(steps):
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(inputs), labels).backward()
        optimizer.step()
    return model.eval()


def draw(count: int, rng: np.random.Generator, *, planted: bool) -> ArrayDataset:
    """Points labelled by the rule; planted ones get a wrong label only memorisation fits."""
    x = rng.normal(size=(count, DIM)).astype(np.float32)
    y = np.argmax(x @ RULE, axis=1)
    if planted:
        y = (y + 1 + rng.integers(0, CLASSES - 1, count)) % CLASSES
    return ArrayDataset(x, y.astype(np.int64))


def join(*parts: ArrayDataset) -> ArrayDataset:
    return ArrayDataset(
        np.concatenate([part.x for part in parts]), np.concatenate([part.y for part in parts])
    )


def train_planted(data: ArrayDataset, seed: int) -> nn.Module:
    """The recipe shared by a target and its shadow models: a small MLP fitted hard."""
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(DIM, 64), nn.ReLU(), nn.Linear(64, CLASSES))
    return fit(model, data.x, data.y, lr=1e-2, steps=300)


class Scaled(nn.Module):
    """The wrapped model's logits times a positive constant: the same labels, other scores."""

    def __init__(self, model: nn.Module, factor: float) -> None:
        super().__init__()
        self.model, self.factor = model, factor

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x) * self.factor


# ---------------------------------------------------------------------------------------------
# Language models: token sequences a small GPT-2 memorised.

TEXT_LENGTH = 24  # tokens per row: BOS, 22 bytes, EOS


def draw_texts(count: int, rng: np.random.Generator) -> ArrayDataset:
    """``count`` rows of random lowercase bytes, encoded (label 0): nothing to learn but them."""
    from auditml.data.text_tokens import encode_bytes

    letters = rng.integers(ord("a"), ord("z") + 1, size=(count, TEXT_LENGTH - 2), dtype=np.uint8)
    ids = encode_bytes([row.tobytes() for row in letters], TEXT_LENGTH)
    return ArrayDataset(ids, np.zeros(count, np.int64))


def train_language_model(data: ArrayDataset | None, seed: int, steps: int = 100) -> nn.Module:
    """A 1-layer ``gpt2_tiny``-style model fitted hard to ``data`` (the same seed's untrained
    model when None: the base it was fine-tuned from)."""
    from transformers import GPT2Config, GPT2LMHeadModel

    from auditml.data.text_tokens import BOS_ID, EOS_ID, VOCAB_SIZE
    from auditml.models.causal_lm import CausalLM, next_token_loss

    torch.manual_seed(seed)
    model = CausalLM(GPT2LMHeadModel(GPT2Config(
        vocab_size=VOCAB_SIZE, n_positions=TEXT_LENGTH, n_embd=64, n_layer=1, n_head=2,
        resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, tie_word_embeddings=False,
        bos_token_id=BOS_ID, eos_token_id=EOS_ID,
    )))
    if data is not None:
        ids = torch.from_numpy(data.x)
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
        for _ in range(steps):
            optimizer.zero_grad()
            next_token_loss(model(ids), ids).backward()
            optimizer.step()
    return model.eval()
