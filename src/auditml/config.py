"""The experiment configuration: one YAML file, validated by pydantic.

Every setting has a default, so ``auditml show-config`` can print the whole resolved config.
Validation errors become one line naming the key, the value and what is allowed
(:func:`load_config` raises :class:`~auditml.errors.ConfigError`); the CLI prints it and exits 2.
"""

from __future__ import annotations

import re
import types
import typing
import unicodedata
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from auditml.config_errors import KeyError_, cut, describe, one_line, yaml_problem
from auditml.data import DATASETS, DatasetSpec, DataSource, dataset_spec
from auditml.data.base import MIN_VALIDATION_SIZE
from auditml.data.files import FileFormat
from auditml.data.secrets import MAX_CANARIES as MAX_SECRET_CANARIES
from auditml.errors import AuditMLError, ConfigError
from auditml.models import MODELS
from auditml.models.user import is_reference, parse_reference
from auditml.safe_yaml import load_yaml

_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")

# The seed reaches numpy (any non-negative int), torch.manual_seed (< 2**64) and split.npz, which
# stores it as int64: the common range is [0, 2**63 - 1].
MAX_SEED = 2**63 - 1
# δ is the probability that the guarantee fails. Above 0.1 the accountants report ε < 0 (at
# σ=1, q=0.1, 20 steps: ε=-0.67 at δ=0.5); below 1e-12 the PRV accountant's floating point
# error exceeds δ (Opacus refuses δ=1e-16 there), and 1e-12 is already 1/n² for n = 10^6.
MIN_DELTA, MAX_DELTA = 1e-12, 0.1
# More noise buys nothing: at σ = 1e3 ε is within 0.1% of the accountants' floor (≈0.01 for
# PRV, ≈0.1 for RDP at δ=1e-5), while Opacus's RDP takes 1 s per ε there and 5 s at σ = 1e6 with
# two batches per epoch (q = 0.5 exactly makes its series converge slowly); σ = 1e300 overflows.
MAX_NOISE_MULTIPLIER = 1e3
# Reference models trained for one audit: beyond this the keep matrix alone (models x examples)
# and the training time are out of any audit's reach.
MAX_REFERENCE_MODELS = 4096
# A clipping bound beyond any gradient's norm: the noise σC then overflows float32 before it
# trains anything (1e30 failed mid-training with a misleading message).
MAX_GRAD_NORM = 1e6


class _Section(BaseModel):
    # allow_inf_nan=False: .inf and .nan are refused in every float (learning_rate: .inf trains a
    # NaN model; epsilon: .inf printed "ε=0.18").
    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)

    @field_validator("*", mode="before")
    @classmethod
    def _booleans_are_not_numbers(cls, value: Any, info: ValidationInfo) -> Any:
        """Keep true/false and numbers apart: pydantic would read ``epsilon: yes`` as 1.0 and
        ``enabled: 1`` as true. Numeric strings (YAML reads ``2e-4`` as one) stay accepted."""
        kinds = _scalar_kinds(cls.model_fields[info.field_name].annotation)
        if value is None or not kinds:
            return value
        if bool in kinds and not isinstance(value, bool):
            raise ValueError("expected true or false")
        if bool not in kinds and isinstance(value, bool):
            raise ValueError("expected a number, not true/false")
        return value


class DPRecipeConfig(_Section):
    """What training does differently when DP-SGD is on (:mod:`auditml.training.recipe`).

    ``name: default`` is the recipe measured to train better DP models at the same ε
    (``benchmarks/dp_recipe_probe.py``); ``plain`` trains exactly as without DP. Each part can be
    set on its own; null means "what the named recipe does". The accountant's ε is the same in
    every recipe: ``schedule`` changes the batch size (sampling rate), epochs (steps) and
    clipping norm, and σ is calibrated for the schedule that runs.
    """

    name: Literal["default", "plain"] = "default"
    architecture: bool | None = Field(
        default=None, description="use the dataset's DP architecture (GroupNorm, or a smaller "
        "net) when model.arch is null; default: true, plain: false",
    )
    min_learning_rate: float | None = Field(
        default=None, ge=0, description="Adam/AdamW learning rate at least this under DP "
        "(0 = as configured); default: 0.003, plain: 0",
    )
    ema_decay: float | None = Field(
        default=None, ge=0, lt=1, description="release an exponential moving average of the "
        "weights with this decay (0 = the last weights); default and plain: 0",
    )
    lr_schedule: Literal["constant", "cosine"] | None = Field(
        default=None, description="the learning rate over the run's steps: constant, or cosine "
        "decay to 0 at the last step; default: constant, plain: constant",
    )
    augmentation_multiplicity: int | None = Field(
        default=None, ge=1, le=64, description="average each example's gradient over this many "
        "randomly shifted copies before clipping (1 = off; images only, Opacus hooks); "
        "default and plain: 1",
    )
    schedule: bool | None = Field(
        default=None, description="train the architecture the recipe chose with the batch size, "
        "epochs, optimiser, learning rate and clipping norm measured for it (σ is calibrated "
        "for that schedule: same ε); default: true, plain: false",
    )

    def resolved(self) -> DPRecipeConfig:
        """Every part written out as the named recipe sets it."""
        parts = RECIPE_PARTS[self.name]
        return DPRecipeConfig(
            name=self.name,
            architecture=parts["architecture"] if self.architecture is None else self.architecture,
            min_learning_rate=(
                parts["min_learning_rate"] if self.min_learning_rate is None
                else self.min_learning_rate
            ),
            ema_decay=parts["ema_decay"] if self.ema_decay is None else self.ema_decay,
            lr_schedule=parts["lr_schedule"] if self.lr_schedule is None else self.lr_schedule,
            augmentation_multiplicity=(
                parts["augmentation_multiplicity"] if self.augmentation_multiplicity is None
                else self.augmentation_multiplicity
            ),
            schedule=parts["schedule"] if self.schedule is None else self.schedule,
        )


# What each named recipe sets (measured in benchmarks/dp_recipe_probe.py; the reasons are in
# auditml.training.recipe). EMA is off in both: at a few hundred steps it gained nothing.
RECIPE_PARTS: dict[str, dict[str, Any]] = {
    "default": {"architecture": True, "min_learning_rate": 0.003, "ema_decay": 0.0,
                "lr_schedule": "constant", "augmentation_multiplicity": 1, "schedule": True},
    "plain": {"architecture": False, "min_learning_rate": 0.0, "ema_decay": 0.0,
              "lr_schedule": "constant", "augmentation_multiplicity": 1, "schedule": False},
}

# Recipe parts added after recipes were first recorded, set as the runs written before them
# trained (a run directory's config and a reference store's fingerprint lack them).
RECIPE_PARTS_ADDED: dict[str, Any] = {
    "lr_schedule": "constant", "augmentation_multiplicity": 1, "schedule": False,
}


class DPConfig(_Section):
    """DP-SGD settings (Opacus, Poisson sampling)."""

    enabled: bool = False
    epsilon: float | None = Field(
        default=None, gt=0, description="target ε; the noise is calibrated to reach it"
    )
    delta: float = Field(
        default=1e-5, description=f"δ in [{MIN_DELTA:g}, {MAX_DELTA:g}]; below 1/train_size"
    )
    max_grad_norm: float = Field(default=1.0, gt=0, le=MAX_GRAD_NORM,
                                 description="per-example clipping bound C")
    noise_multiplier: float | None = Field(
        default=None,
        description=f"σ in (0, {MAX_NOISE_MULTIPLIER:g}]; null = calibrated from epsilon, delta "
        "and epochs; set it or epsilon, not both",
    )
    accountant: Literal["prv", "rdp"] = "prv"
    grad_sample_mode: Literal["auto", "fast", "hooks", "ghost"] = Field(
        default="auto",
        description=(
            "how per-example gradients are clipped: fast (auditml's), hooks or ghost (Opacus's); "
            "auto = the one measured fastest on this device (timed once, then cached). The "
            "privacy guarantee is the same in all"
        ),
    )
    fix_model: bool = Field(
        default=False, description="replace layers DP-SGD cannot handle (BatchNorm -> GroupNorm)"
    )
    recipe: DPRecipeConfig = Field(
        default_factory=DPRecipeConfig,
        description="default or plain, or a mapping of the recipe's parts (training.recipe)",
    )

    @field_validator("recipe", mode="before")
    @classmethod
    def _recipe_by_name(cls, value: Any) -> Any:
        """``recipe: plain`` is short for ``recipe: {name: plain}``."""
        return {"name": value} if isinstance(value, str) else value

    @field_validator("delta")
    @classmethod
    def _usable_delta(cls, delta: float) -> float:
        if not MIN_DELTA <= delta <= MAX_DELTA:
            raise ValueError(
                f"must be in [{MIN_DELTA:g}, {MAX_DELTA:g}] (δ is the probability that the "
                "guarantee fails; use less than 1/train_size)"
            )
        return delta

    @field_validator("noise_multiplier")
    @classmethod
    def _usable_noise(cls, sigma: float | None) -> float | None:
        if sigma is not None and sigma <= 0:
            raise ValueError(
                "must be greater than 0 (σ=0 adds no noise and has no finite ε); to train "
                "without noise set training.dp.enabled: false"
            )
        if sigma is not None and sigma > MAX_NOISE_MULTIPLIER:
            raise ValueError(
                f"must be at most {MAX_NOISE_MULTIPLIER:g}: more noise does not lower ε any "
                "further (the accountants' floor) and overflows them"
            )
        return sigma

    @model_validator(mode="after")
    def _epsilon_or_noise(self) -> DPConfig:
        if not self.enabled and (self.epsilon is not None or self.noise_multiplier is not None):
            given = (f"epsilon: {self.epsilon:g}" if self.epsilon is not None else
                     f"noise_multiplier: {self.noise_multiplier:g}")
            raise ValueError(
                f"{given} is set but DP is off, so the run would train without DP: set "
                "training.dp.enabled: true to train with DP-SGD, or remove it"
            )
        if self.enabled and self.epsilon is not None and self.noise_multiplier is not None:
            raise ValueError(
                f"both epsilon ({self.epsilon:g}) and noise_multiplier "
                f"({self.noise_multiplier:g}) are set, and they contradict each other: set "
                "epsilon (a target: the noise is calibrated to reach it) or noise_multiplier "
                "(σ set directly: ε follows from it), not both"
            )
        if self.enabled and self.epsilon is None and self.noise_multiplier is None:
            raise ValueError(
                "DP is enabled but neither epsilon nor noise_multiplier is set: "
                "set training.dp.epsilon (target) or training.dp.noise_multiplier"
            )
        copies = self.recipe.augmentation_multiplicity or 1  # 1 in every named recipe
        if self.enabled and copies > 1 and self.grad_sample_mode not in ("auto", "hooks"):
            raise ValueError(
                f"recipe.augmentation_multiplicity {copies} averages Opacus's per-sample "
                f"gradients, which grad_sample_mode {self.grad_sample_mode} does not form: set "
                "training.dp.grad_sample_mode: hooks (or auto)"
            )
        return self


class DataConfig(_Section):
    dataset: str = Field(
        default="digits", description="a built-in dataset, or csv / npz to read data.path; "
        "text: the embedded text records, or your .txt / .jsonl in data.path (language models)"
    )
    train_size: int = Field(
        default=500, gt=0,
        description="members (the training set); as many non-members, or data.audit_size",
    )
    audit_size: int | None = Field(
        default=None, gt=0, description="members the audit judges, drawn at random from the "
        "train_size, and as many non-members; default: every member",
    )
    batch_size: int = Field(default=64, gt=0, description="expected batch size (Poisson with DP)")
    data_dir: Path = Path("data")
    download: bool = Field(
        default=True,
        description="fetch missing dataset files from the official mirrors (MD5-checked); "
        "false forbids any download",
    )
    path: Path | None = Field(
        default=None, description="dataset csv, npz or text: your file (relative to the "
        "working directory, as output_dir)",
    )
    label_column: str | None = Field(default=None, description="dataset csv: the label's column")
    sensitive_column: str | None = Field(
        default=None, description="dataset csv: the column attribute inference guesses",
    )

    @property
    def audited_size(self) -> int:
        """How many members the audit judges (and how many non-members it holds out)."""
        return self.train_size if self.audit_size is None else self.audit_size

    def source(self) -> DataSource:
        """The file options, as the dataset registry's entries read them."""
        return DataSource(
            path=self.path, label_column=self.label_column, sensitive_column=self.sensitive_column
        )

    @field_validator("dataset")
    @classmethod
    def _known_dataset(cls, name: str) -> str:
        if name not in DATASETS:
            # `dataset: breast_cancer.csv`: a file where a format's name belongs.
            suffix = Path(name).suffix.lower().removeprefix(".")
            is_format = suffix in DATASETS and isinstance(DATASETS.get(suffix), FileFormat)
            hint = (f"; to read your own file set data.dataset: {suffix} and data.path: "
                    f"{cut(name)}" if is_format else "")
            if suffix in ("txt", "jsonl"):
                hint = (f"; to read your own text set data.dataset: text and data.path: "
                        f"{cut(name)}")
            raise ValueError(DATASETS.unknown_message(cut(name)) + hint)
        return name

    @field_validator("data_dir", "path")
    @classmethod
    def _printable_data_dir(cls, path: Path | None) -> Path | None:
        return None if path is None else _printable_path(path)


class ModelConfig(_Section):
    """The architecture, and for language models how it is fine-tuned.

    ``base``: a run directory ``auditml train`` wrote (e.g. a model pretrained on public text)
    whose weights this run starts from instead of a fresh initialisation; the architecture must
    be the same. The text attack ``mia_text_reference`` compares the fine-tuned model with it.
    ``lora_rank``: fine-tune low-rank adapters of that rank (LoRA, on the attention's ``c_attn``)
    instead of every weight; language models only.
    """

    arch: str | None = Field(
        default=None, description="a registered name, or module.path:factory for a model of "
        "your own (auditml imports and runs that module); null = the dataset's default model",
    )
    base: Path | None = Field(
        default=None, description="a run directory whose trained weights this run starts from",
    )
    lora_rank: int | None = Field(
        default=None, ge=1, le=256, description="language models: train LoRA adapters of this "
        "rank instead of every weight; null = every weight",
    )

    @field_validator("arch")
    @classmethod
    def _known_arch(cls, arch: str | None) -> str | None:
        # A factory of the user's own is only parsed here: importing it (running its code) waits
        # until a command builds the model (auditml.models.user).
        if arch is not None and is_reference(arch):
            parse_reference(arch)
        elif arch is not None and arch not in MODELS:
            raise ValueError(MODELS.unknown_message(cut(arch)))
        return arch


class CanaryConfig(_Section):
    """Canaries for the one-run audit (Steinke, Nasr, Jagielski 2023).

    ``count`` examples from outside the audit sets are each added to the training set with
    probability 1/2 (a recorded coin). They are ordinary training examples: DP accounting is
    unchanged. ``mislabeled`` canaries carry a wrong label, so only memorisation fits them.
    ``gradient`` canaries (DP-SGD only) are no examples but fixed gradients of norm
    ``max_grad_norm`` added to the clipped sum before the noise, along one coordinate
    (``direction: dirac``) or a random unit vector (``random_direction``), for the white-box
    audits (:mod:`auditml.training.gradient_canaries`). ``secret`` canaries (text data) are
    generated texts, each a random secret in a template (:mod:`auditml.data.secrets`: ``design``
    ``digits`` is the secret sharer's k-digit number, ``rare`` a string of tokens the data never
    holds), trained on ``repeats`` times when included, for exposure, extraction and the one-run
    audit of a language model.
    """

    count: int = Field(default=0, ge=0)
    kind: Literal["mislabeled", "natural", "gradient", "secret"] = "mislabeled"
    direction: Literal["dirac", "random_direction"] = Field(
        default="dirac", description="gradient canaries only"
    )
    design: Literal["digits", "rare"] = Field(default="digits", description="secret canaries only")
    secret_length: int = Field(
        default=6, ge=1, le=32, description="secret canaries only: tokens in each secret"
    )
    repeats: int = Field(
        default=1, ge=1, le=1000,
        description="secret canaries only: times an included secret is trained on",
    )


# The largest float32: the optimisers step in the weights' precision, and a learning rate or
# weight decay above it cannot even be converted (learning_rate: 1e300 was a traceback mid-epoch).
MAX_STEP_SETTING = 3.4e38


class TrainingConfig(_Section):
    epochs: int = Field(default=20, gt=0)
    learning_rate: float = Field(default=0.001, gt=0)
    optimizer: Literal["adam", "sgd", "adamw"] = "adam"
    momentum: float = Field(default=0.9, ge=0, lt=1, description="SGD only")
    weight_decay: float = Field(default=0.0, ge=0)
    device: str = Field(default="auto", description="auto, cpu, cuda, cuda:N or mps")
    # Independent trainings on the same members (the sweep's tuner needs independent trials).
    seed: int | None = Field(
        default=None, ge=0, le=MAX_SEED, description="seed of initialisation, batches and noise; "
        "null = the experiment's seed (which alone draws the membership split)",
    )
    dp: DPConfig = DPConfig()
    canaries: CanaryConfig = CanaryConfig()

    @field_validator("learning_rate", "weight_decay")
    @classmethod
    def _fits_float32(cls, value: float) -> float:
        if value > MAX_STEP_SETTING:
            raise ValueError(f"must be at most {MAX_STEP_SETTING:g} (the largest float32: the "
                             "optimiser steps in the weights' precision)")
        return value

    @field_validator("device")
    @classmethod
    def _known_device(cls, device: str) -> str:
        if not re.fullmatch(r"auto|cpu|mps|cuda(:\d+)?", device):
            raise ValueError("must be one of auto, cpu, cuda, cuda:N, mps")
        return device


class AuditConfig(_Section):
    """What ``auditml audit`` runs when ``--attack`` is not given, and the attacks' settings.

    Each attack's settings go under its own name (``mia_lira: {mode: offline}``) and are checked
    against that attack's ``Settings``.
    """

    model_config = ConfigDict(extra="allow", validate_assignment=True, allow_inf_nan=False)

    attacks: list[str] = Field(default_factory=lambda: ["mia_threshold"])
    # The name is checked where it is resolved (training.executors.make_executor), before any
    # model trains, so this lower module never imports the executors (or Ray).
    executor: str = Field(
        default="local", description="where reference, shadow and audit-dp models train: "
        "local (a process pool), serial, or ray (docs/ray.md)"
    )
    ray_address: str | None = Field(
        default=None, description="the Ray cluster (auto, host:6379, ray://host:10001); "
        "null = the Ray already started in this process, else a new local one"
    )
    reference_models: int = Field(
        default=8, ge=1, le=MAX_REFERENCE_MODELS,
        description=f"models trained like the target, for LiRA, RMIA, shadow (at most "
        f"{MAX_REFERENCE_MODELS:,}; LiRA's paper uses 256)",
    )
    population_size: int = Field(
        default=1000, ge=1, description="at most this many population examples (RMIA's z)"
    )
    workers: int | None = Field(
        default=None, ge=1, description="processes training reference models; null = CPU cores"
    )
    batched: bool = Field(
        default=True, description="train reference models K at a time as one computation"
    )
    batch_models: int | None = Field(
        default=None, ge=1, description="K per batched computation; null = 8 on CPU, 64 on GPU"
    )

    @field_validator("attacks")
    @classmethod
    def _some_attack(cls, names: list[str]) -> list[str]:
        if not names:  # an empty list would audit nothing and still exit 0
            raise ValueError("name at least one attack, or omit the key")
        return names

    @model_validator(mode="after")
    def _attack_sections(self) -> AuditConfig:
        # Which names are attacks, and what their settings mean, is checked where attacks are
        # resolved (auditml.audit.plan), so this lower module never imports the attacks.
        for name, value in (self.model_extra or {}).items():
            if value is not None and not isinstance(value, dict):
                raise KeyError_(
                    f"audit.{name}", value,
                    "must be a mapping of that attack's settings (e.g. {metric: loss})",
                )
        return self

    def attack_settings(self, name: str) -> dict[str, Any]:
        """The settings given for attack ``name`` (empty when none)."""
        return dict((self.model_extra or {}).get(name) or {})

    def attack_sections(self) -> dict[str, dict[str, Any]]:
        """Every per-attack settings section given, by name."""
        return {name: dict(value or {}) for name, value in (self.model_extra or {}).items()}


class AuditMLConfig(_Section):
    """The whole experiment: what to train, how, and where the run directory goes."""

    experiment_name: str
    seed: int = Field(default=0, description="in [0, 2**63 - 1]")
    output_dir: Path = Path("results")
    data: DataConfig = DataConfig()
    model: ModelConfig = ModelConfig()
    training: TrainingConfig = TrainingConfig()
    audit: AuditConfig = AuditConfig()

    @field_validator("experiment_name")
    @classmethod
    def _safe_name(cls, name: str) -> str:
        # fullmatch: re's $ would also match before a trailing newline ("fz\n").
        if not _SAFE_NAME.fullmatch(name) or name in {".", ".."}:
            raise ValueError(
                "must be one path component of letters, digits, '.', '_' or '-' "
                "(no '/', no leading '.' or '-')"
            )
        return name

    @field_validator("seed")
    @classmethod
    def _seed_in_range(cls, seed: int) -> int:
        if not 0 <= seed <= MAX_SEED:
            raise ValueError("must be an integer in [0, 2**63 - 1]")
        return seed

    @field_validator("output_dir")
    @classmethod
    def _printable_output_dir(cls, path: Path) -> Path:
        return _printable_path(path)

    @model_validator(mode="after")
    def _sizes(self) -> AuditMLConfig:
        spec = self.dataset_spec  # a file format reads data.path here: bad files fail first
        audited = self.data.audited_size
        if audited > self.data.train_size:
            raise KeyError_(
                "data.audit_size",
                audited,
                f"the audit judges members drawn from the {self.data.train_size} of "
                "data.train_size: lower it to at most that, or remove it to audit every member",
            )
        validation = 0 if spec.has_test_split else MIN_VALIDATION_SIZE
        needed = self.data.train_size + audited + validation
        if needed > spec.pool_size:
            if self.data.audit_size is None:
                raise KeyError_(
                    "data.train_size",
                    self.data.train_size,
                    f"{spec.name} has {spec.pool_size} training examples, enough for at most "
                    f"{spec.max_train_size} members plus as many non-members ({needed} are "
                    "needed for this train_size); lower it, or set data.audit_size to audit "
                    "only part of the members (each audited member needs a held-out non-member)",
                )
            raise KeyError_(
                "data.audit_size",
                audited,
                f"{spec.name} has {spec.pool_size} training examples, and {needed} are needed "
                f"for {self.data.train_size} members plus {audited} non-members"
                + (f" and {validation} for validation" if validation else "")
                + ": lower data.audit_size or data.train_size",
            )
        spare = spec.pool_size - self.data.train_size - audited
        if not spec.has_test_split:
            spare -= MIN_VALIDATION_SIZE
        # Gradient canaries (added gradients) and secret canaries (generated texts) take no
        # examples from the pool.
        canaries = self.training.canaries
        if canaries.kind == "secret" and canaries.count > MAX_SECRET_CANARIES:
            raise KeyError_(
                "training.canaries.count",
                canaries.count,
                f"at most {MAX_SECRET_CANARIES:,} secret canaries (the audit ranks each against "
                "its candidates): lower it",
            )
        if canaries.kind not in ("gradient", "secret") and canaries.count > spare:
            raise KeyError_(
                "training.canaries.count",
                self.training.canaries.count,
                f"{spec.name} has {max(spare, 0)} examples left for canaries after "
                f"{self.data.train_size} members and {audited} non-members",
            )
        dp = self.training.dp
        copies = dp.recipe.resolved().augmentation_multiplicity or 1
        if dp.enabled and copies > 1 and len(spec.input_shape) != 3:
            raise KeyError_(
                "training.dp.recipe.augmentation_multiplicity",
                copies,
                f"{spec.name}'s inputs are not images (shape {spec.input_shape}): shifted copies "
                "need (channels, height, width) inputs; set it to 1",
            )
        if self.data.batch_size > self.data.train_size:
            raise KeyError_(
                "data.batch_size",
                self.data.batch_size,
                f"must be at most data.train_size ({self.data.train_size})",
            )
        return self

    @property
    def dataset_spec(self) -> DatasetSpec:
        """The configured dataset's spec (for ``csv`` and ``npz``: of the file data.path names,
        read once per process while it is unchanged)."""
        return dataset_spec(self.data.dataset, self.data.source())

    @property
    def arch(self) -> str:
        """The model architecture, with the dataset's default filled in: its DP architecture
        when DP-SGD is on and the recipe uses it (``training.dp.recipe.architecture``)."""
        if self.model.arch is not None:
            return self.model.arch
        spec = self.dataset_spec
        dp = self.training.dp
        if dp.enabled and dp.recipe.resolved().architecture and spec.dp_arch is not None:
            return spec.dp_arch
        return spec.default_arch

    @property
    def run_dir(self) -> Path:
        return self.output_dir / self.experiment_name

    def resolved(self) -> AuditMLConfig:
        """A copy with the derived model arch and DP recipe written out, and data.path and
        model.base made absolute (the settings of each
        attack are filled in by :func:`auditml.audit.plan.resolved_config`, which knows the
        attacks)."""
        model = self.model.model_copy(update={
            "arch": self.arch,
            # Read again by audit, possibly from another directory (as data.path below).
            "base": None if self.model.base is None else self.model.base.absolute(),
        })
        resolved = self.model_copy(update={"model": model}, deep=True)
        resolved.training.dp.recipe = self.training.dp.recipe.resolved()
        if self.data.path is not None:
            # The run's config is read again by audit, possibly from another directory.
            resolved.data.path = self.data.path.absolute()
        return resolved

    def warnings(self) -> list[str]:
        """Settings that are valid but probably not what the user wants."""
        found = []
        dp = self.training.dp
        if dp.enabled and dp.delta > 1 / self.data.train_size:
            found.append(
                f"training.dp.delta={dp.delta:g} is larger than 1/train_size="
                f"{1 / self.data.train_size:.1e}: a mechanism that publishes one random member "
                "outright satisfies this δ, so the guarantee is weak; use δ < 1/train_size"
            )
        return found

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False)


def _scalar_kinds(annotation: Any) -> set[type]:
    """The scalar types a field accepts (``float | None`` -> ``{float}``); empty for others."""
    origin = typing.get_origin(annotation)
    members = typing.get_args(annotation) if origin in (typing.Union, types.UnionType) else (
        annotation,
    )
    return {member for member in members if member in (bool, int, float)}


def _printable_path(path: Path) -> Path:
    """Refuse control characters: a NUL byte made the run fail only after training, and a
    newline or escape sequence in a path garbles every message that shows it."""
    bad = next((char for char in str(path) if unicodedata.category(char) == "Cc"), None)
    if bad is not None:
        raise ValueError(f"contains the control character {bad!r}; use a plain path")
    return path


def parse_config(raw: Any, source: str = "config") -> AuditMLConfig:
    """Validate a mapping (already parsed from YAML) into a config, or raise ConfigError."""
    if not isinstance(raw, dict):
        raise ConfigError(
            one_line(f"{source}: expected a mapping of settings, got {type(raw).__name__}")
        )
    try:
        return AuditMLConfig.model_validate(raw)
    except ValidationError as error:
        raise ConfigError(one_line(describe(error, source, AuditMLConfig))) from None
    except AuditMLError as error:
        raise ConfigError(one_line(f"{source}: {error}")) from None


def load_config(path: str | Path) -> AuditMLConfig:
    """Read and validate a YAML config file (read with the limits of :mod:`auditml.safe_yaml`)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(one_line(f"config file not found: {path}")) from None
    except IsADirectoryError:
        raise ConfigError(one_line(f"config path is a directory, not a file: {path}")) from None
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(one_line(f"cannot read config file {path}: {error}")) from None
    try:
        raw = load_yaml(text)
    except yaml.YAMLError as error:
        raise ConfigError(one_line(f"{path}: {yaml_problem(error, text)}")) from None
    if raw is None:
        raise ConfigError(f"{one_line(str(path))}: the file is empty; it needs experiment_name")
    return parse_config(raw, str(path))
