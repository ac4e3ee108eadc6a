from __future__ import annotations

import copy
import math
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from opacus import PrivacyEngine
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from auditml.errors import ArgumentError, AuditMLError, TrainingError
from auditml.models import MODELS
from auditml.models.causal_lm import (
    BOS_ID,
    EOS_ID,
    PAD_ID,
    VOCAB_SIZE,
    CausalLM,
    NextTokenLoss,
    gpt2_tiny,
    greedy_continuation,
    next_token_loss,
    per_example_loss,
    token_statistics,
    with_lora,
)
from auditml.training.update_check import check_trained_weights, snapshot_trainable

LENGTH = 16


def _ids(rows: int, length: int = LENGTH, seed: int = 0) -> torch.Tensor:
    """Encoded-looking rows: BOS, random bytes, EOS, then PAD (rows of different lengths)."""
    rng = np.random.default_rng(seed)
    ids = np.full((rows, length), PAD_ID, dtype=np.int64)
    for row in range(rows):
        real = int(rng.integers(1, length - 1))
        ids[row, 0] = BOS_ID
        ids[row, 1:real + 1] = rng.integers(0, 256, real)
        ids[row, real + 1] = EOS_ID
    return torch.from_numpy(ids)


def _model(lora: bool = False, seed: int = 0) -> CausalLM:
    torch.manual_seed(seed)
    model = gpt2_tiny((LENGTH,), 4)
    return with_lora(model) if lora else model


def test_gpt2_tiny_is_registered_and_gives_logits_per_position() -> None:
    model = MODELS.get("gpt2_tiny")((LENGTH,), 4)
    assert isinstance(model, CausalLM)
    assert model.vocab_size == VOCAB_SIZE and model.max_length == LENGTH
    assert model(_ids(3)).shape == (3, LENGTH, VOCAB_SIZE)


def test_gpt2_tiny_embeddings_are_untied() -> None:
    lm = _model().language_model
    assert lm.lm_head.weight is not lm.transformer.wte.weight
    assert lm.lm_head.weight.data_ptr() != lm.transformer.wte.weight.data_ptr()


def test_gpt2_tiny_refuses_inputs_that_are_not_token_sequences() -> None:
    with pytest.raises(ValueError, match=r"shape \(max_length,\).*got \(1, 8, 8\)"):
        gpt2_tiny((1, 8, 8), 10)


def test_a_users_hugging_face_model_is_wrapped_as_it_is() -> None:
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    own = GPT2LMHeadModel(GPT2Config(vocab_size=300, n_positions=32, n_embd=32, n_layer=1,
                                     n_head=2)).eval()
    model = CausalLM.from_pretrained_model(own, pad_id=0)
    ids = torch.randint(0, 300, (2, 10))
    with torch.no_grad():
        torch.testing.assert_close(model(ids), own(input_ids=ids).logits)
    assert model.vocab_size == 300 and model.max_length == 32
    assert (model.pad_id, model.byte_tokens) == (0, False)  # its own tokenizer's ids
    with pytest.raises(ArgumentError, match="language_model must be a Hugging Face causal LM"):
        CausalLM.from_pretrained_model(nn.Linear(2, 2), pad_id=0)
    with pytest.raises(ArgumentError, match=r"pad_id must be a token id in \[0, 300\)"):
        CausalLM.from_pretrained_model(own, pad_id=300)


def test_with_lora_trains_only_adapters_and_starts_as_the_base_model() -> None:
    base = _model()
    ids = _ids(2)
    with torch.no_grad():
        expected = base(ids)
    model = with_lora(base, rank=4, alpha=8)
    trainable = [name for name, p in model.named_parameters() if p.requires_grad]
    # Two layers, each with one c_attn carrying lora_A and lora_B.
    assert len(trainable) == 4 and all("lora_" in name and "c_attn" in name for name in trainable)
    with torch.no_grad():
        torch.testing.assert_close(model(ids), expected)  # lora_B starts at zero
    with pytest.raises(ArgumentError, match="rank must be a positive integer"):
        with_lora(_model(), rank=0)


def test_next_token_loss_is_the_mean_of_each_sequences_own_loss() -> None:
    torch.manual_seed(0)
    ids = _ids(5)
    logits = torch.randn(5, LENGTH, VOCAB_SIZE)
    expected = []
    for row in range(5):
        targets = ids[row, 1:]
        keep = targets != PAD_ID
        expected.append(F.cross_entropy(logits[row, :-1][keep], targets[keep]))
    torch.testing.assert_close(per_example_loss(logits, ids), torch.stack(expected))
    torch.testing.assert_close(next_token_loss(logits, ids), torch.stack(expected).mean())


def test_token_statistics_match_a_direct_computation() -> None:
    model = _model(seed=1).train()
    ids = _ids(7, seed=2)
    stats = token_statistics(model, ids.numpy(), batch_size=3)
    assert model.training
    with torch.no_grad():
        log_p = torch.log_softmax(model.eval()(ids).double(), dim=-1)[:, :-1]
    p = log_p.exp()
    mean = (p * log_p).sum(-1)
    std = ((p * log_p.square()).sum(-1) - mean.square()).sqrt()
    actual = log_p.gather(-1, ids[:, 1:, None]).squeeze(-1)
    mask = ids[:, 1:].numpy() != PAD_ID
    assert not mask.all()  # some rows end before others: the batches' padding is cut
    for name, value in {"log_probs": actual, "mean": mean, "std": std}.items():
        array = getattr(stats, name)
        assert array.shape == (7, LENGTH - 1) and array.dtype == np.float64, name
        # Real targets as computed on the whole rows (padding targets mean nothing).
        np.testing.assert_allclose(array[mask], value.numpy()[mask], rtol=1e-5, atol=1e-5,
                                   err_msg=name)
    np.testing.assert_array_equal(stats.mask, mask)
    assert stats.mask.dtype == np.bool_


def test_next_token_evaluation_matches_a_direct_computation() -> None:
    from auditml.models.causal_lm import next_token_evaluation

    model = _model(seed=5)
    ids = _ids(9, seed=6)
    accuracy, perplexity = next_token_evaluation(model, ids.numpy(), batch_size=2)
    with torch.no_grad():
        logits = model.eval()(ids)[:, :-1]
    targets = ids[:, 1:]
    real = targets != PAD_ID
    assert not real.all()  # rows of different lengths
    right = (logits.argmax(-1) == targets)[real]
    loss = F.cross_entropy(logits[real], targets[real])
    assert accuracy == pytest.approx(float(right.double().mean()), abs=1e-12)
    assert perplexity == pytest.approx(math.exp(float(loss)), rel=1e-5)


def test_evaluations_batch_rows_of_like_length_and_keep_each_rows_place() -> None:
    """Rows are batched shortest first, so each batch is cut short; the statistics still come
    back in the rows' own order (the direct computation above checks the values)."""
    from auditml.models.causal_lm import next_token_evaluation

    model = _model(seed=7)
    ids = _ids(12, seed=8)
    widths: list[int] = []
    model.register_forward_pre_hook(lambda module, args: widths.append(args[0].shape[1]))
    lengths = (ids != PAD_ID).sum(dim=1).numpy()
    next_token_evaluation(model, ids.numpy(), batch_size=4)
    stats = token_statistics(model, ids.numpy(), batch_size=4)
    longest_per_batch = [max(int(np.sort(lengths)[start:start + 4].max()), 2)
                         for start in range(0, 12, 4)]
    assert widths == longest_per_batch * 2
    alone = token_statistics(model, ids[5:6].numpy(), batch_size=1)
    real = stats.mask[5]
    np.testing.assert_allclose(stats.log_probs[5][real], alone.log_probs[0][real], rtol=1e-5)


def test_token_statistics_name_bad_token_ids() -> None:
    model = _model()
    with pytest.raises(ArgumentError, match=r"input_ids must hold token ids in \[0, 259\)"):
        token_statistics(model, np.full((2, 5), VOCAB_SIZE))
    with pytest.raises(ArgumentError, match="input_ids must be an integer array of shape"):
        token_statistics(model, np.zeros(5, dtype=np.int64))


def test_greedy_decoding_reproduces_a_memorised_sequence() -> None:
    text = b"my PIN is 4921, call 555-0199"
    sequence = torch.tensor([[BOS_ID, *text, EOS_ID]])
    torch.manual_seed(0)
    model = gpt2_tiny((sequence.shape[1],), 1)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(150):
        optimizer.zero_grad()
        next_token_loss(model(sequence), sequence).backward()
        optimizer.step()
    prefix = sequence[0, :11].numpy()  # BOS and "my PIN is "
    rest = sequence[0, 11:].numpy()
    untrained = greedy_continuation(gpt2_tiny((sequence.shape[1],), 1), [prefix], len(rest))
    assert not np.array_equal(untrained[0], rest)
    # Two prefixes of different lengths are decoded in their own groups.
    out = greedy_continuation(model, [prefix, sequence[0, :5].numpy()], len(rest))
    assert out.shape == (2, len(rest)) and out.dtype == np.int64
    np.testing.assert_array_equal(out[0], rest)
    np.testing.assert_array_equal(out[1], sequence[0, 5:5 + len(rest)].numpy())
    # The last generated token is never fed back, so 11 + 21 tokens need only 31 positions.
    assert greedy_continuation(model, [prefix], len(rest) + 1).shape == (1, len(rest) + 1)
    with pytest.raises(ArgumentError, match=r"exceed the model's 31 positions; .* at most 21"):
        greedy_continuation(model, [prefix], len(rest) + 2)


def _train_privately(
    trained: CausalLM, steps: int = 3, batch: int = 8
) -> tuple[PrivacyEngine, list[dict[str, tuple[int, ...]]]]:
    """A few DP-SGD steps (Opacus hooks) on ``trained``; the per-sample gradient shapes seen."""
    data = DataLoader(TensorDataset(_ids(batch * steps)), batch_size=batch)
    optimizer = torch.optim.SGD([p for p in trained.parameters() if p.requires_grad], lr=0.5)
    engine = PrivacyEngine()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Opacus warns about the secure RNG and the accountant
        private, optimizer, data = engine.make_private(
            module=trained, optimizer=optimizer, data_loader=data, noise_multiplier=1.0,
            max_grad_norm=1.0, poisson_sampling=False, grad_sample_mode="hooks",
        )
    shapes = []
    for (ids,) in data:
        optimizer.zero_grad()
        next_token_loss(private(ids), ids).backward()
        seen = {}
        for name, param in trained.named_parameters():
            if param.requires_grad:
                assert param.grad_sample is not None, name
                assert torch.isfinite(param.grad_sample).all(), name
                seen[name] = tuple(param.grad_sample.shape)
        shapes.append(seen)
        optimizer.step()
    return engine, shapes


@pytest.mark.parametrize("lora", [False, True], ids=["full", "lora"])
def test_dp_sgd_with_hooks_stacks_per_sample_gradients_and_trains(lora: bool) -> None:
    model = _model(lora=lora)
    frozen = {name: p.detach().clone() for name, p in model.named_parameters()
              if not p.requires_grad}
    before = snapshot_trainable(model)
    engine, shapes = _train_privately(model)
    for seen in shapes:
        assert seen.keys() == before.keys()
        for name, shape in seen.items():
            assert shape == (8, *before[name].shape), name
    # The correct setups pass the check, frozen weights included.
    check_trained_weights(before, snapshot_trainable(model), where="test", model=model)
    assert engine.get_epsilon(delta=1e-5) > 0
    for name, value in frozen.items():
        assert torch.equal(dict(model.named_parameters())[name], value), name
    if not lora:  # the position embedding got one gradient per example
        assert "language_model.transformer.wpe.weight" in before


def test_the_check_fires_on_the_opacus_820_setup() -> None:
    """Opacus issue 820: DP-LoRA training runs, ε accrues, the loss falls, and the model that is
    evaluated and saved is the untrained one. The root cause found there: the optimizer and
    Opacus were set up on LoRA parameter objects other than those of the model kept (the model
    was placed on its device, a copy, after ``get_peft_model`` and ``make_private``)."""
    kept = _model(lora=True)
    before = snapshot_trainable(kept)
    trained = copy.deepcopy(kept)  # what Opacus and the optimizer hold
    engine, _ = _train_privately(trained)
    # Training looked normal: ε accrued and the tensors Opacus trained did move.
    assert engine.get_epsilon(delta=1e-5) > 0
    assert any(not torch.equal(before[name], value)
               for name, value in snapshot_trainable(trained).items())
    with pytest.raises(TrainingError, match=r"^after 3 steps: none of the model's 4 trainable "
                                            r"tensors changed .*Opacus issue 820") as err:
        check_trained_weights(before, snapshot_trainable(kept), where="after 3 steps")
    assert "\n" not in str(err.value) and isinstance(err.value, AuditMLError)


def test_the_check_fires_when_nothing_is_trainable() -> None:
    model = _model(lora=True).requires_grad_(False)
    with pytest.raises(TrainingError, match="has no trainable tensor"):
        check_trained_weights(snapshot_trainable(model), snapshot_trainable(model), where="x")


def test_the_check_fires_on_non_finite_weights() -> None:
    model = _model(lora=True)
    before = snapshot_trainable(model)
    name = next(iter(before))
    after = {key: value + 1 for key, value in before.items()}
    after[name][0, 0] = float("nan")
    with pytest.raises(TrainingError, match=rf"trainable tensor '{name}' holds non-finite"):
        check_trained_weights(before, after, where="x")
    moved = {key: value + 1 for key, value in before.items()}
    with torch.no_grad():
        model.language_model.base_model.model.lm_head.weight[0, 0] = float("inf")
    check_trained_weights(before, moved, where="x")  # the frozen tensors are not looked at
    with pytest.raises(TrainingError, match=r"tensor '.*lm_head.weight' holds non-finite"):
        check_trained_weights(before, moved, where="x", model=model)


def test_the_check_fires_when_the_trainable_set_changes() -> None:
    before = snapshot_trainable(_model(lora=True))
    after = {f"{key}.replaced": value + 1 for key, value in before.items()}
    with pytest.raises(TrainingError, match="the set of trainable tensors changed"):
        check_trained_weights(before, after, where="x")


@pytest.mark.parametrize("lora", [False, True], ids=["full", "lora"])
def test_weights_round_trip_through_safetensors(lora: bool, tmp_path: Path) -> None:
    """The run directory saves ``state_dict()`` with safetensors, which refuses shared tensors
    (tied embeddings would be one); a model built the same way loads them back exactly."""
    from safetensors.torch import load_file, save_file

    model = _model(lora=lora, seed=1)
    with torch.no_grad():
        for param in model.parameters():
            param.add_(0.01)  # so that loading is visible, LoRA's zero lora_B included
    save_file({k: t.detach().contiguous() for k, t in model.state_dict().items()},
              str(tmp_path / "model.safetensors"))
    fresh = _model(lora=lora, seed=2)
    fresh.load_state_dict(load_file(str(tmp_path / "model.safetensors")), strict=True)
    ids = _ids(2)
    with torch.no_grad():
        torch.testing.assert_close(fresh.eval()(ids), model.eval()(ids))


def _one_clipped_step(model: CausalLM, mode: str, ids: torch.Tensor, clip: float) -> float:
    """One noiseless DP-SGD step (lr 1) in Opacus's ``mode``; the norm of the update."""
    before = snapshot_trainable(model)
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=1.0)
    data = DataLoader(TensorDataset(ids), batch_size=len(ids))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        made = PrivacyEngine().make_private(
            module=model, optimizer=optimizer, data_loader=data, noise_multiplier=0.0,
            max_grad_norm=clip, poisson_sampling=False, grad_sample_mode=mode,
            criterion=NextTokenLoss(),
        )
    private, optimizer = made[0], made[1]
    # With ghost clipping the loss must come from the criterion make_private returns.
    loss_of = made[2] if mode == "ghost" else next_token_loss
    optimizer.zero_grad()
    loss_of(private(ids), ids).backward()
    optimizer.step()
    after = snapshot_trainable(model)
    return math.sqrt(sum(float((after[k] - before[k]).square().sum()) for k in before))


@pytest.mark.parametrize("lora", [False, True], ids=["full", "lora"])
def test_hooks_and_ghost_clipping_give_the_same_clipped_update(lora: bool) -> None:
    """With no noise, lr 1 and a mean loss, a DP-SGD update is the mean of per-sequence gradients
    clipped to ``clip``, so its norm is at most ``clip`` (the unclipped one is ~50 times more)."""
    ids = _ids(8, seed=3)
    norms, models = {}, {}
    for mode in ("hooks", "ghost"):
        models[mode] = _model(lora=lora)
        norms[mode] = _one_clipped_step(models[mode], mode, ids, clip=1e-3)
        assert 0 < norms[mode] <= 1e-3 * (1 + 1e-5), mode
    hooks, ghost = (dict(models[m].named_parameters()) for m in ("hooks", "ghost"))
    for name, value in hooks.items():
        torch.testing.assert_close(ghost[name], value, rtol=1e-4, atol=1e-7)


def test_next_token_loss_criterion_reductions() -> None:
    torch.manual_seed(0)
    ids, logits = _ids(4), torch.randn(4, LENGTH, VOCAB_SIZE)
    each = per_example_loss(logits, ids)
    torch.testing.assert_close(NextTokenLoss("none")(logits, ids), each)
    torch.testing.assert_close(NextTokenLoss("sum")(logits, ids), each.sum())
    torch.testing.assert_close(NextTokenLoss()(logits, ids), next_token_loss(logits, ids))
    with pytest.raises(ArgumentError, match="reduction must be"):
        NextTokenLoss("max")


def test_greedy_decoding_takes_an_array_of_prefixes_and_names_bad_ones() -> None:
    model = _model()
    prefixes = _ids(3)[:, :4].numpy()
    out = greedy_continuation(model, prefixes, 5)
    np.testing.assert_array_equal(out, greedy_continuation(model, list(prefixes), 5))
    with torch.no_grad():  # the first generated token is the argmax after the prefix
        expected = model(torch.from_numpy(prefixes))[:, -1].argmax(-1).numpy()
    np.testing.assert_array_equal(out[:, 0], expected)
    with pytest.raises(ArgumentError, match=r"prefix_ids must be an \(N, P\) array"):
        greedy_continuation(model, prefixes[0], 5)
    with pytest.raises(ArgumentError, match="prefix_ids must hold at least one prefix"):
        greedy_continuation(model, [], 5)
    with pytest.raises(ArgumentError, match="length must be a positive integer"):
        greedy_continuation(model, prefixes, 0)


def test_cutting_a_batchs_trailing_padding_changes_no_loss() -> None:
    from auditml.models.causal_lm import trim_padding

    model = _model(seed=3).eval()
    ids = _ids(6, seed=4)
    cut = trim_padding(ids)
    longest = int((ids != PAD_ID).sum(dim=1).max())
    assert cut.shape == (6, longest)  # every real token kept, nothing after the longest row
    with torch.no_grad():
        np.testing.assert_allclose(per_example_loss(model(cut), cut).numpy(),
                                   per_example_loss(model(ids), ids).numpy(), rtol=1e-5)
    assert trim_padding(torch.full((3, 8), PAD_ID)).shape == (3, 2)  # an all-padding batch
