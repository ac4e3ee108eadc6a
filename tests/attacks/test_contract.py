"""The contract every registered membership attack keeps (the ``check_estimator`` of auditml).

Parametrised over ``ATTACKS.available()``, so a newly registered attack runs this battery with
no change here. What :mod:`auditml.attacks.base` promises: ``score`` before ``fit`` raises
``NotFittedError``; ``fit`` returns ``self``; ``score`` gives one finite float per audited
example; the same seed gives the same scores whatever the global random state; an unknown
setting is a ``ConfigError`` naming it; each missing entry of ``requires`` is a
``MissingResourceError`` naming it, and nothing outside ``requires`` is needed; ``settings()``
round-trips through the ``Settings`` model and JSON. Finally, on a planted leak (a target that
memorised mislabelled members) every attack must rank members clearly above non-members, which
an attack returning constant, random or reversed scores fails. An attack of language models
(``tasks`` = causal_lm) runs the same battery on a small GPT-2 that memorised its members.
"""

from __future__ import annotations

import dataclasses
import json
import random
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score
from torch import nn

from auditml.attacks import (
    ATTACKS,
    AuditTarget,
    MembershipAttack,
    MissingResourceError,
    NotFittedError,
)
from auditml.data import ArrayDataset
from auditml.errors import AuditMLError, ConfigError
from auditml.training.reference import ReferenceModels, paired_keep
from toy_models import CLASSES, draw, draw_texts, join, train_language_model, train_planted

CPU = torch.device("cpu")
NAMES = ATTACKS.available()
NEEDS = [(name, need) for name in NAMES for need in sorted(ATTACKS.get(name).requires)]
NEEDY = [name for name in NAMES if ATTACKS.get(name).requires]
# The resources an attack may declare: the optional fields of AuditTarget.
RESOURCES = frozenset(
    field.name for field in dataclasses.fields(AuditTarget) if field.default is None
)
PLANTED = 25  # members, and as many non-members
# AUC a working attack must beat on the planted leak. Scores unrelated to membership give
# 0.5 ± 0.08 (one standard error at 25 vs 25), so 0.8 is 3.6 standard errors above chance;
# the attacks reach 0.95-1.0 here.
LEAK_AUC = 0.8

pytestmark = pytest.mark.usefixtures("one_thread")


@dataclasses.dataclass(frozen=True)
class World:
    """A target that memorised planted members, with every resource an attack may ask for."""

    model: nn.Module
    examples: ArrayDataset  # PLANTED members, then PLANTED non-members
    population: ArrayDataset | None
    reference: ReferenceModels | None  # trained on halves of ``examples``
    shadow: ReferenceModels | None  # trained on halves of ``population``
    base: nn.Module | None = None  # what the model was fine-tuned from (language models)

    @property
    def is_member(self) -> np.ndarray:
        return np.r_[np.ones(PLANTED, bool), np.zeros(PLANTED, bool)]

    def audit(self, needs: frozenset[str], *, seed: int = 0) -> AuditTarget:
        """A target holding only the resources in ``needs`` (the others are None)."""
        resources = {"population": self.population, "reference": self.reference,
                     "shadow": self.shadow, "base": self.base}
        return AuditTarget(
            model=self.model, examples=self.examples, num_classes=CLASSES, device=CPU, seed=seed,
            **{key: value if key in needs else None for key, value in resources.items()},
        )


def _trained_on_halves(data: ArrayDataset, bulk: ArrayDataset | None, seed: int) -> ReferenceModels:
    """Four tiny models of the target's recipe, each on a paired half of ``data`` (plus bulk)."""
    keep = paired_keep(4, len(data), seed=seed)
    models = []
    for k, row in enumerate(keep):
        half = data.subset(np.flatnonzero(row))
        models.append(train_planted(half if bulk is None else join(bulk, half), seed=seed + k))
    return ReferenceModels(models, keep, CPU)


@pytest.fixture
def world(classifier_world: World, text_world: World, request: pytest.FixtureRequest) -> World:
    """The world of the test's attack (its ``name`` parameter): a classifier's, or a language
    model's for the text attacks."""
    return text_world if _is_text(request.node.callspec.params["name"]) else classifier_world


def _is_text(name: str) -> bool:
    return "causal_lm" in ATTACKS.get(name).tasks


@pytest.fixture(scope="module")
def text_world() -> World:
    """A small GPT-2 that memorised its members (random letters), its untrained self, population
    texts, and four such models on halves of the audited texts."""
    rng = np.random.default_rng(0)
    members, nonmembers = draw_texts(PLANTED, rng), draw_texts(PLANTED, rng)
    examples = join(members, nonmembers)
    keep = paired_keep(4, len(examples), seed=10)
    reference = ReferenceModels(
        [train_language_model(examples.subset(np.flatnonzero(row)), seed=10 + k)
         for k, row in enumerate(keep)], keep, CPU,
    )
    return World(model=train_language_model(members, seed=1), examples=examples,
                 population=draw_texts(2 * PLANTED, rng), reference=reference, shadow=None,
                 base=train_language_model(None, seed=1))


@pytest.fixture(scope="module")
def classifier_world() -> World:
    rng = np.random.default_rng(0)
    bulk = draw(300, rng, planted=False)
    members = draw(PLANTED, rng, planted=True)
    nonmembers = draw(PLANTED, rng, planted=True)
    examples = join(members, nonmembers)
    population = join(draw(300, rng, planted=False), draw(2 * PLANTED, rng, planted=True))
    return World(
        model=train_planted(join(bulk, members), seed=1),
        examples=examples,
        population=population,
        reference=_trained_on_halves(examples, bulk, seed=10),
        shadow=_trained_on_halves(population, None, seed=20),
    )


@dataclasses.dataclass(frozen=True)
class Fitted:
    attack: MembershipAttack
    fit_returned: object
    scores: np.ndarray


@pytest.fixture(scope="module")
def fitted(classifier_world: World, text_world: World) -> Callable[[str], Fitted]:
    """Each attack with default settings, fitted once on a target holding only what it requires."""
    cache: dict[str, Fitted] = {}

    def get(name: str) -> Fitted:
        if name not in cache:
            attack = ATTACKS.get(name)()
            world = text_world if _is_text(name) else classifier_world
            returned = attack.fit(world.audit(attack.requires))
            cache[name] = Fitted(attack, returned, attack.score())
        return cache[name]

    return get


@contextmanager
def _global_rngs_seeded(seed: int) -> Iterator[None]:
    """Seed torch's, numpy's and Python's global generators for the block, then restore them."""
    numpy_state, python_state = np.random.get_state(), random.getstate()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        np.random.seed(seed)
        random.seed(seed)
        try:
            yield
        finally:
            np.random.set_state(numpy_state)
            random.setstate(python_state)


# ---------------------------------------------------------------------------------------------
# Declarations


@pytest.mark.parametrize("name", NAMES)
def test_registered_under_its_own_name_with_known_resources(name: str) -> None:
    attack_class = ATTACKS.get(name)
    assert issubclass(attack_class, MembershipAttack)
    # The name in error messages and in audit/<name>.json is the registered one.
    assert attack_class.name == name
    assert attack_class.requires <= RESOURCES, attack_class.requires - RESOURCES


# ---------------------------------------------------------------------------------------------
# The estimator pattern


@pytest.mark.parametrize("name", NAMES)
def test_score_before_fit_raises(name: str) -> None:
    with pytest.raises(NotFittedError, match="call fit") as error:
        ATTACKS.get(name)().score()
    assert name in str(error.value)


@pytest.mark.parametrize("name", NAMES)
def test_fit_returns_self_and_score_gives_one_finite_float_per_example(
    name: str, world: World, fitted: Callable[[str], Fitted]
) -> None:
    result = fitted(name)
    assert result.fit_returned is result.attack
    scores = result.scores
    assert isinstance(scores, np.ndarray)
    assert np.issubdtype(scores.dtype, np.floating), scores.dtype
    assert scores.shape == (len(world.examples),)
    assert np.isfinite(scores).all()
    # What fit chose is recorded in audit/<name>.json beside the settings: strict JSON.
    values = result.attack.fitted_values()
    assert isinstance(values, dict)
    json.dumps(values, allow_nan=False)


@pytest.mark.parametrize("name", NAMES)
def test_a_failed_fit_leaves_the_attack_unfitted(
    name: str, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Otherwise score() after a refused fit reads half-set state: an AttributeError traceback
    # instead of "not fitted yet" (e.g. mia_lira with augmentations on non-image inputs).
    attack_class = ATTACKS.get(name)

    def refuse(self: MembershipAttack, target: AuditTarget) -> None:
        raise AuditMLError("refused")

    monkeypatch.setattr(attack_class, "_fit", refuse)
    attack = attack_class()
    with pytest.raises(AuditMLError, match="refused"):
        attack.fit(world.audit(attack.requires))
    with pytest.raises(NotFittedError, match="call fit"):
        attack.score()


@pytest.mark.parametrize("name", NAMES)
def test_same_seed_same_scores_whatever_the_global_random_state(
    name: str, world: World, fitted: Callable[[str], Fitted]
) -> None:
    # Seeds are passed explicitly (target.seed): an attack drawing from a global generator
    # gives other scores after the global generators are reseeded.
    runs = []
    for global_seed in (1, 2):
        with _global_rngs_seeded(global_seed):
            attack = ATTACKS.get(name)()
            runs.append(attack.fit(world.audit(attack.requires)).score())
    np.testing.assert_array_equal(runs[0], runs[1])
    np.testing.assert_array_equal(runs[0], fitted(name).scores)


# ---------------------------------------------------------------------------------------------
# Settings


@pytest.mark.parametrize("name", NAMES)
def test_unknown_setting_is_a_config_error_naming_it(name: str) -> None:
    with pytest.raises(ConfigError) as error:
        ATTACKS.get(name)(no_such_setting=1)
    message = str(error.value)
    assert name in message and "no_such_setting" in message
    assert "\n" not in message


@pytest.mark.parametrize("name", NAMES)
def test_settings_round_trip_through_the_model_and_json(name: str) -> None:
    attack_class = ATTACKS.get(name)
    attack = attack_class()
    settings = attack.settings()
    assert set(settings) == set(attack_class.Settings.model_fields)
    recorded = json.loads(json.dumps(settings, allow_nan=False))
    assert attack_class.Settings(**recorded) == attack.params
    assert attack_class(**recorded).settings() == settings


# ---------------------------------------------------------------------------------------------
# Resources


@pytest.mark.parametrize(("name", "need"), NEEDS)
def test_each_missing_requirement_is_named(name: str, need: str, world: World) -> None:
    attack = ATTACKS.get(name)()
    with pytest.raises(MissingResourceError) as error:
        attack.fit(world.audit(attack.requires - {need}))
    message = str(error.value)
    assert name in message and need in message
    assert "\n" not in message
    # Refused before anything was learned: the attack is still not fitted.
    with pytest.raises(NotFittedError):
        attack.score()


@pytest.mark.parametrize("name", NEEDY)
def test_every_missing_requirement_is_named_at_once(name: str, world: World) -> None:
    attack_class = ATTACKS.get(name)
    with pytest.raises(MissingResourceError) as error:
        attack_class().fit(world.audit(frozenset()))
    assert all(need in str(error.value) for need in attack_class.requires)


# ---------------------------------------------------------------------------------------------
# Soundness


@pytest.mark.parametrize("name", NAMES)
def test_planted_leak_is_found(
    name: str, world: World, fitted: Callable[[str], Fitted]
) -> None:
    # scikit-learn's AUC, not auditml's, so a fault in auditml.metrics cannot hide one here.
    auc = roc_auc_score(world.is_member, fitted(name).scores)
    assert auc > LEAK_AUC, f"{name}: AUC {auc:.3f} on a planted leak"


def test_the_text_attacks_share_one_pass_of_the_target(
    text_world: World, monkeypatch: pytest.MonkeyPatch,
) -> None:
    import auditml.models.causal_lm as causal_lm

    passes = []
    original = causal_lm.token_statistics

    def counted(*args: object, **kwargs: object) -> causal_lm.TokenStatistics:
        passes.append(1)
        return original(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(causal_lm, "token_statistics", counted)
    target = text_world.audit(frozenset())
    one_pass = [name for name in NAMES if _is_text(name) and not ATTACKS.get(name).requires]
    assert len(one_pass) == 4
    for name in one_pass:
        assert np.isfinite(ATTACKS.get(name)().fit(target).score()).all()
    assert len(passes) == 1
    # A copy of the target with another model computes its own.
    dataclasses.replace(target, model=text_world.base).token_statistics()
    assert len(passes) == 2
