"""``auditml.audit_language_model``: a Hugging Face causal LM of its own tokenizer (its own
vocabulary and pad id) audited with the text attacks, saved and reported like any API audit;
every bad argument is one error naming it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from transformers import GPT2Config, GPT2LMHeadModel

import auditml
from auditml.cli import main
from auditml.errors import ArgumentError
from auditml.reporting import compare_runs, write_run_report
from toy_models import draw_texts, train_language_model

VOCAB, PAD, WIDTH = 500, 0, 16  # a tokenizer of its own: pad id 0, ids up to 499


def _own_rows(count: int, rng: np.random.Generator) -> np.ndarray:
    """Rows of random ids in [1, VOCAB), each of 6 to WIDTH tokens, right-padded with PAD."""
    rows = np.full((count, WIDTH), PAD, np.int64)
    for row in rows:
        length = int(rng.integers(6, WIDTH + 1))
        row[:length] = rng.integers(1, VOCAB, length)
    return rows


def _own_model(rows: np.ndarray | None, seed: int) -> GPT2LMHeadModel:
    """A Hugging Face GPT-2 over the own vocabulary, fitted hard to ``rows`` (or untrained)."""
    torch.manual_seed(seed)
    model = GPT2LMHeadModel(GPT2Config(vocab_size=VOCAB, n_positions=WIDTH, n_embd=64,
                                       n_layer=1, n_head=2, bos_token_id=1, eos_token_id=2))
    if rows is not None:
        from auditml.models.causal_lm import CausalLM

        wrapped = CausalLM.from_pretrained_model(model, pad_id=PAD)
        ids = torch.from_numpy(rows)
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
        for _ in range(100):
            optimizer.zero_grad()
            # The loss masks auditml's PAD; mask the own pad by hand for this toy.
            logits = wrapped(ids)
            targets = ids[:, 1:]
            losses = torch.nn.functional.cross_entropy(
                logits[:, :-1].reshape(-1, VOCAB), targets.reshape(-1), reduction="none")
            (losses * (targets.reshape(-1) != PAD)).mean().backward()
            optimizer.step()
    return model.eval()


@pytest.fixture(scope="module")
def own() -> dict[str, Any]:
    rng = np.random.default_rng(0)
    members, nonmembers = _own_rows(30, rng), _own_rows(30, rng)
    return {"members": members, "nonmembers": nonmembers,
            "model": _own_model(members, seed=1), "base": _own_model(None, seed=1)}


def test_a_models_own_tokenizer_is_audited_and_saved(own: dict[str, Any], tmp_path: Path) -> None:
    results = auditml.audit_language_model(
        own["model"], own["members"], own["nonmembers"], attacks="all", pad_id=PAD,
        base_model=own["base"], delta=1e-5, claimed_epsilon=8.0,
    )
    # zlib needs byte tokens: `all` leaves it out for a model of its own tokenizer.
    assert list(results.attacks) == ["mia_text_loss", "mia_text_min_k", "mia_text_min_k_pp",
                                     "mia_text_reference"]
    for name, found in results.attacks.items():
        assert found.metrics.auc > 0.9, (name, found.metrics.auc)
        assert found.scores.shape == (60,)
    assert results.model is not None and results.model.source == "api.audit_language_model"
    assert results.model.train_acc > results.model.nonmember_acc
    results.save(tmp_path / "audited")
    write_run_report(tmp_path / "audited", tmp_path / "page")
    assert "mia_text_min_k_pp" in (tmp_path / "page" / "report.html").read_text()


def test_saved_language_model_audits_compare_with_min_k_pp_by_default(
    own: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    """compare reads a saved audit's task from its model.json: Min-K%++ for language models,
    and runs of both tasks have no default (mia_threshold refuses a language model)."""
    text = auditml.audit_language_model(own["model"], own["members"], own["nonmembers"],
                                        pad_id=PAD).save(tmp_path / "text")
    comparison = compare_runs([text], tmp_path / "cmp")
    assert comparison.attack == "mia_text_min_k_pp"
    classifier = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 3))
    rng = np.random.default_rng(0)
    data = [(rng.normal(size=(20, 4)).astype(np.float32), rng.integers(0, 3, 20))
            for _ in range(2)]
    images = auditml.audit(classifier, *data, progress=False).save(tmp_path / "classifier")
    assert main(["compare", str(text), str(images), "--out", str(tmp_path / "mixed")]) == 2
    error = capsys.readouterr().err
    assert "no attack fits both" in error and "--attack" in error


def test_reference_models_from_a_factory_feed_lira_and_rmia_on_sequence_scores(
    own: dict[str, Any],
) -> None:
    halves: list[int] = []

    def train_like_the_target(train_set: Any, seed: int) -> GPT2LMHeadModel:
        halves.append(len(train_set))
        return _own_model(train_set.x, seed=seed % 1000)

    population = _own_rows(30, np.random.default_rng(5))
    results = auditml.audit_language_model(
        own["model"], own["members"], own["nonmembers"], attacks="all", pad_id=PAD,
        population=population, reference_factory=train_like_the_target, reference_models=2,
    )
    # `all` with reference models and population texts: LiRA and RMIA too (no base here).
    assert list(results.attacks) == ["mia_text_lira", "mia_text_loss", "mia_text_min_k",
                                     "mia_text_min_k_pp", "mia_text_rmia"]
    assert halves == [30, 30]  # complementary halves of the 60 audited rows
    for name in ("mia_text_lira", "mia_text_rmia"):
        assert results.attacks[name].metrics.auc > 0.9, name


def test_the_models_pad_id_decides_what_is_scored(own: dict[str, Any]) -> None:
    """The own pad id's targets are masked (auditml's PAD, 256, is an ordinary token here)."""
    from auditml.models.causal_lm import CausalLM, next_token_evaluation, token_statistics

    wrapped = CausalLM.from_pretrained_model(own["model"], pad_id=PAD)
    stats = token_statistics(wrapped, own["members"])
    np.testing.assert_array_equal(stats.mask, own["members"][:, 1:] != PAD)
    # Fitted hard to its members: nearly every real next token is predicted.
    assert next_token_evaluation(wrapped, own["members"])[0] > 0.9


def test_a_row_may_open_with_the_pad_id_and_auditmls_rows_may_not(own: dict[str, Any]) -> None:
    """A tokenizer whose BOS is its pad id (GPT-2's <|endoftext|>) opens every row with it;
    auditml's byte tokens have a BOS of their own, so a leading PAD there is left padding."""
    members, nonmembers = own["members"].copy(), own["nonmembers"].copy()
    members[:, 0] = nonmembers[:, 0] = PAD
    results = auditml.audit_language_model(own["model"], members, nonmembers, pad_id=PAD)
    assert "mia_text_min_k_pp" in results.attacks
    from auditml.data.text_tokens import PAD_ID, encode

    rows = encode([f"text {i}" for i in range(4)], 16)
    left = np.concatenate([np.full((4, 1), PAD_ID), rows[:, :-1]], axis=1)
    with pytest.raises(ArgumentError, match=r"`members` row 0 has a token after padding "
                                            r"\(position 1 follows"):
        auditml.audit_language_model(train_language_model(None, seed=0), left, rows)


def test_auditmls_own_model_needs_no_pad_id() -> None:
    rng = np.random.default_rng(1)
    members, nonmembers = draw_texts(25, rng), draw_texts(25, rng)
    model = train_language_model(members, seed=1)
    results = auditml.audit_language_model(model, members.x, nonmembers.x,
                                            attacks=["mia_text_zlib", "mia_text_loss"])
    assert results.attacks["mia_text_loss"].metrics.auc > 0.9
    assert "mia_text_zlib" in results.attacks


@pytest.mark.parametrize(("change", "message"), [
    ({"pad_id": None}, r"`pad_id`: `model` is a model of its own tokenizer"),
    ({"pad_id": VOCAB}, r"`pad_id`: pad_id must be a token id in \[0, 500\)"),
    ({"attacks": ["mia_threshold"]}, r"`attacks`: mia_threshold cannot attack a language model"),
    ({"attacks": ["mia_text_zlib"]}, r"`attacks`: mia_text_zlib compresses"),
    ({"attacks": ["mia_text_reference"]}, r"`base_model`: mia_text_reference"),
    ({"attacks": ["nope"]}, r"`attacks`: unknown attack 'nope'"),
    ({"members": np.full((3, WIDTH), VOCAB)}, r"`members` holds ids outside"),
    ({"members": np.zeros((3, WIDTH + 4), np.int64) + 5}, r"more than the model's 16 positions"),
    ({"members": np.full((2, WIDTH), PAD)}, r"`members` has a row with no token"),
    ({"members": np.ones((3, 8), np.float32)}, r"`members` must hold integer token ids"),
    ({"nonmembers": np.zeros((1, WIDTH), np.int64) + 5}, r"`nonmembers` has 1 example; a "
                                                         r"membership attack needs at least 2"),
    # Left padding moves every token and has it attend to the pads: every score changes.
    ({"members": np.array([[5, 6, 7, PAD, PAD, 8]] * 2)},
     r"`members` row 0 has a token after padding \(position 5 follows pad_id 0\): right-pad "
     r"every row"),
    ({"nonmembers": np.array([[5, 6, 7, 8, 9, 10], [5, PAD, PAD, PAD, 6, 7]])},
     r"`nonmembers` row 1 has a token after padding \(position 4 follows pad_id 0\)"),
    ({"nonmembers": np.ones((3, 8), np.int64)},
     r"`nonmembers` rows have 8 tokens, `members` 16: pad every row to one width"),
    ({"attacks": ["mia_text_lira"]}, r"`reference_factory`: mia_text_lira needs "
                                     r"reference_factory: give it"),
    ({"attacks": ["mia_text_rmia"]}, r"`population`: mia_text_rmia needs population and "
                                     r"reference_factory: give them"),
    ({"reference_models": 0}, r"`reference_models` must be an integer in \[1, "),
    ({"reference_factory": "train"}, r"`reference_factory` must be a function"),
    ({"population": np.ones((3, 8), np.int64)}, r"`population` rows have 8 tokens, `members` "
                                                r"16"),
    ({"attacks": ["mia_text_lira"], "reference_factory": lambda data, seed: "a model"},
     r"`reference_factory` must return causal language models like `model`"),
    ({"claimed_epsilon": 8.0}, r"give its `delta` too"),
    ({"model": "gpt2"}, r"`model` must be auditml's CausalLM or a Hugging Face causal LM"),
    ({"device": "meta"}, r"`device` must be cpu, cuda or mps"),
])
def test_every_bad_argument_is_one_error_naming_it(
    own: dict[str, Any], change: dict[str, Any], message: str,
) -> None:
    arguments: dict[str, Any] = {"model": own["model"], "members": own["members"],
                                 "nonmembers": own["nonmembers"], "pad_id": PAD}
    arguments.update(change)
    model, members, nonmembers = (arguments.pop(key) for key in
                                  ("model", "members", "nonmembers"))
    with pytest.raises(ArgumentError, match=message) as error:
        auditml.audit_language_model(model, members, nonmembers, **arguments)
    assert "\n" not in str(error.value)


def test_the_classifier_front_door_sends_text_attacks_here() -> None:
    model = torch.nn.Sequential(torch.nn.Linear(4, 3))
    data = (np.zeros((5, 4), np.float32), np.zeros(5, np.int64))
    with pytest.raises(ArgumentError, match="audit_language_model"):
        auditml.audit(model, data, data, attacks=["mia_text_loss"])
