"""The run directory: the contract between ``train``, ``audit``, ``report`` and ``compare``.

``train`` writes ``<output_dir>/<experiment_name>/``::

    config.yaml           the resolved config (every default filled in)
    model.safetensors     the trained weights (safetensors: never unpickled); metadata: arch
    split.npz             members, nonmembers, validation, canaries (indices into the dataset's
                          pool), canary_labels, canary_included, pool_size, seed
    metrics.json          a TrainingRecord (auditml.records)
    gradient_canaries.npz only with gradient canaries: a GradientCanaryRecord
                          (auditml.gradient_canary_record)
    target_outputs.npz    the model's logits on the audited examples (not a language model's)
    manifest.json         a RunManifest: the SHA-256 of each file above, written last

``audit`` adds (under a lock, so two audits never interleave)::

    audit/<attack>.json          an AttackRecord; names its scores file and that file's SHA-256
    audit/<attack>_scores.npz    scores (float64) and is_member (bool), one row per example
    audit/<attack>_roc.png       the attack's ROC curve on log-log axes
    audit/<attack>_exposed.png   the most exposed members (image datasets)
    audit/roc_overlay.png        every attack of the last audit on one plot
    audit/canaries/<name>.json   a CanaryRecord (one-run canary audits)
    audit/<name>.json, _<x>.png  an inference audit's record and figures (attribute_inference,
                                 model_inversion)
    reference/<set>/             reference models (auditml.training.reference), set ``audit`` or
                                 ``population``: manifest.json, keep.npy, model_<k:03d>.safetensors

These are auditml's files; nothing else is. ``train`` replaces a run directory whole, so it
replaces only an empty one or one whose ``manifest.json`` is auditml's own record and that holds
nothing but the files above (:meth:`RunDirectory.check_replaceable`); a report never lies
inside a run (auditml.reporting.output refuses it).

A Python-API audit saved with ``AuditResults.save`` or ``CanaryAuditResult.save`` is a run
directory without train's files: ``model.json`` (an AuditedModelRecord: what the caller gave and
the audit measured, None for the unknown) and, for a canary audit, ``gradient_canaries.npz``,
fingerprinted in a manifest whose ``source`` is ``api``, beside the same ``audit/`` records.
Reports read it like a trained run (:meth:`RunDirectory.require_audited`); ``auditml audit``
refuses it (there is no config or weights to audit again).

This class builds every path and is the only reader and writer of these files. A run directory
on disk is untrusted: every record is validated, every trained file is checked against the
manifest, and each audit result against its scores file, so a file edited, truncated or mixed
from two audits is refused with a message that names the command to run again.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import numpy as np
import yaml
from pydantic import ValidationError

from auditml.config import RECIPE_PARTS_ADDED, AuditMLConfig, parse_config
from auditml.data.split import MembershipSplit
from auditml.errors import ConfigError, RunDirectoryError
from auditml.fileio import atomic_path, check_writable, read_npz, sha256_of_file, write_json
from auditml.gradient_canary_record import GradientCanaryRecord
from auditml.records import (
    INFERENCE_RECORDS,
    SCHEMA_VERSION,
    AttackRecord,
    AuditedModelRecord,
    CanaryRecord,
    InferenceRecord,
    ManyRunsRecord,
    Record,
    RunManifest,
    TrainingRecord,
)
from auditml.version import __version__

if TYPE_CHECKING:
    import torch

CONFIG_FILE = "config.yaml"
MODEL_FILE = "model.safetensors"
SPLIT_FILE = "split.npz"
METRICS_FILE = "metrics.json"
MANIFEST_FILE = "manifest.json"
AUDIT_DIR = "audit"
CANARY_DIR = "canaries"
REFERENCE_DIR = "reference"
# The model sets under reference/: for the audited examples, and for the population data.
REFERENCE_SETS = ("audit", "population")
OVERLAY_FILE = "roc_overlay.png"
GRADIENT_CANARY_FILE = "gradient_canaries.npz"
TARGET_OUTPUTS_FILE = "target_outputs.npz"
AUDITED_MODEL_FILE = "model.json"
TRAINED_FILES = (CONFIG_FILE, MODEL_FILE, SPLIT_FILE, METRICS_FILE)
# Written by some trainings only (runs of older versions lack the outputs); fingerprinted in the
# manifest when they are.
OPTIONAL_TRAINED_FILES = (GRADIENT_CANARY_FILE, TARGET_OUTPUTS_FILE)
# What a save of a Python-API audit holds in their place (source "api" in its manifest).
SAVED_FILES = (AUDITED_MODEL_FILE,)
OPTIONAL_SAVED_FILES = (GRADIENT_CANARY_FILE,)
SAVE_COMMAND = "audit the model in Python again and save the results (results.save(path))"

R = TypeVar("R", bound=Record)


class RunDirectory:
    """Reads and writes one run directory; knows every file name and nothing about training."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"RunDirectory({str(self.path)!r})"

    # -- paths ----------------------------------------------------------------------------------

    @property
    def audit_dir(self) -> Path:
        return self.path / AUDIT_DIR

    @property
    def canary_dir(self) -> Path:
        return self.audit_dir / CANARY_DIR

    def reference_dir(self, name: str) -> Path:
        if name not in REFERENCE_SETS:  # check_audit_dir checks only these
            raise ValueError(f"unknown reference model set {name!r}; add it to REFERENCE_SETS")
        return self.path / REFERENCE_DIR / name

    def attack_path(self, attack: str) -> Path:
        return self.audit_dir / f"{attack}.json"

    def scores_path(self, attack: str) -> Path:
        return self.audit_dir / f"{attack}_scores.npz"

    def roc_plot_path(self, attack: str) -> Path:
        return self.audit_dir / f"{attack}_roc.png"

    def gallery_path(self, attack: str) -> Path:
        return self.audit_dir / f"{attack}_exposed.png"

    def overlay_path(self) -> Path:
        return self.audit_dir / OVERLAY_FILE

    def canary_path(self, name: str) -> Path:
        return self.canary_dir / f"{name}.json"

    def inference_path(self, name: str) -> Path:
        return self.audit_dir / f"{name}.json"

    def inference_figure_path(self, name: str, suffix: str) -> Path:
        return self.audit_dir / f"{name}_{suffix}.png"

    # -- checks ---------------------------------------------------------------------------------

    def check_can_train(self) -> None:
        """Raise unless ``train`` may write (or replace) this directory. Called before training.

        ``train`` replaces a run directory whole, so anything that is not an auditml run
        (a folder holding the user's own files, a symlink, a file) is refused, never deleted.
        """
        parent = self.path.parent
        if parent.exists() and not parent.is_dir():
            raise RunDirectoryError(
                f"output_dir {parent} exists and is not a directory; choose another output_dir"
            )
        check_writable(self.path, "run directory")
        check_real_directory(self.path, "run directory", "auditml replaces a run directory "
                             "whole, so give a real directory (another experiment_name or "
                             "output_dir)")
        if not self.path.exists():
            return
        self.check_replaceable()

    def check_replaceable(self, shown_as: Path | None = None) -> None:
        """Raise unless this existing directory may be replaced whole: it is empty, or it is an
        earlier run auditml wrote (its ``manifest.json`` is auditml's own record) holding
        nothing but files auditml writes there (:meth:`foreign_files`). Also called on the old
        directory after it is moved aside, just before it is deleted (``shown_as``: the name
        to report)."""
        where = shown_as or self.path
        try:
            entries = sorted(entry.name for entry in self.path.iterdir())
        except OSError as error:
            raise RunDirectoryError(
                f"{where} cannot be read ({error.strerror or error}); train replaces a run "
                "directory whole, so choose another experiment_name or output_dir"
            ) from None
        if not entries:
            return
        manifest = self.own_manifest()
        if manifest is None:
            raise RunDirectoryError(
                f"{where} exists and is not an auditml run directory (it holds "
                f"{_shown(entries)}); it has no {MANIFEST_FILE} written by auditml, and train "
                "replaces a run directory whole, so move that folder away, or choose another "
                "experiment_name or output_dir"
            )
        foreign = self.foreign_files(manifest)
        if foreign:
            raise RunDirectoryError(
                f"run directory {where} holds files auditml did not write ({_shown(foreign)}); "
                "train replaces a run directory whole, so move them out of it, or choose "
                "another experiment_name or output_dir"
            )

    def own_manifest(self) -> RunManifest | None:
        """The manifest, when it is auditml's own record listing only files of its kind of
        run (a trained run's or a saved audit's); None otherwise (missing, a symbolic link,
        unreadable, corrupt, or naming other files)."""
        path = self.path / MANIFEST_FILE
        if path.is_symlink() or not path.is_file():
            return None
        try:
            manifest = _read_typed(path, RunManifest, "")
        except RunDirectoryError:
            return None
        known = ({*TRAINED_FILES, *OPTIONAL_TRAINED_FILES} if manifest.source == "train"
                 else {*SAVED_FILES, *OPTIONAL_SAVED_FILES})
        return manifest if set(manifest.files) <= known else None

    def foreign_files(self, manifest: RunManifest) -> list[str]:
        """The entries under the directory that auditml did not write (paths relative to it;
        a folder not of auditml's is named once, with a trailing ``/``): auditml's files are
        the manifest and the files it lists, and what ``audit`` writes after training
        (``audit/``, ``audit/canaries/``, ``reference/<set>/``; module docstring), with the
        temporary files of an interrupted write of one of them. Symbolic links and
        unreadable folders are never auditml's."""
        top = {MANIFEST_FILE, *manifest.files}
        references = manifest.source == "train"  # a saved audit has no reference models
        foreign: list[str] = []

        def walk(directory: Path, parts: tuple[str, ...]) -> None:
            try:
                entries = sorted(os.scandir(directory), key=lambda entry: entry.name)
            except OSError:
                foreign.append("/".join(parts) + "/")
                return
            for entry in entries:
                here = (*parts, entry.name)
                if entry.is_symlink():
                    foreign.append("/".join(here))
                elif entry.is_dir():
                    if _auditml_folder(here, references):
                        walk(Path(entry.path), here)
                    else:
                        foreign.append("/".join(here) + "/")
                elif not (entry.is_file() and _auditml_file(here, top, references)):
                    foreign.append("/".join(here))

        walk(self.path, ())
        return foreign

    def require_trained(self, config_hint: str | None = None) -> RunManifest:
        """Raise unless ``train`` finished here and nothing it wrote was changed since.

        Returns the manifest. The message says which command makes or remakes the run.
        """
        command = f"auditml train --config {config_hint or 'CONFIG'}"
        if not self.path.is_dir():
            what = "is not a directory" if self.path.exists() else "does not exist"
            raise RunDirectoryError(
                f"no trained run at {self.path} (it {what}): run `{command}` first"
            )
        if self.saved_manifest() is not None:
            raise RunDirectoryError(
                f"{self.path} holds a Python-API audit saved with .save(), not a run trained by "
                "auditml: it has no config or weights to audit again; report it with `auditml "
                f"report {self.path} --out DIR`, or {SAVE_COMMAND}"
            )
        missing = [name for name in TRAINED_FILES if not (self.path / name).is_file()]
        if missing:
            raise RunDirectoryError(
                f"run at {self.path} is incomplete (missing {', '.join(missing)}): "
                f"run `{command}` again"
            )
        manifest_path = self.path / MANIFEST_FILE
        if not manifest_path.is_file():
            raise RunDirectoryError(
                f"run at {self.path} was written by an older version of auditml (it has no "
                f"{MANIFEST_FILE}, so train cannot tell it from your own files): move it away and "
                f"retrain it with this version: `{command}`"
            )
        manifest = self._read_record(manifest_path, RunManifest, f"run `{command}` again")
        unknown = set(manifest.files) - {*TRAINED_FILES, *OPTIONAL_TRAINED_FILES}
        if unknown:
            raise RunDirectoryError(
                f"{manifest_path} is corrupt (it names {sorted(unknown)[0]!r}, no file of a "
                f"run): run `{command}` again"
            )
        self._check_fingerprints(manifest, TRAINED_FILES, OPTIONAL_TRAINED_FILES,
                                 "training", f"run `{command}` again")
        return manifest

    def require_audited(self, config_hint: str | None = None) -> RunManifest:
        """What a reader of audits (a report) checks: a run as :meth:`require_trained` wants it,
        or a Python-API audit saved here whose files are as it saved them. Returns the
        manifest (``source`` says which)."""
        manifest = self.saved_manifest()
        if manifest is None:
            return self.require_trained(config_hint)
        unknown = set(manifest.files) - {*SAVED_FILES, *OPTIONAL_SAVED_FILES}
        if unknown or not set(SAVED_FILES) <= set(manifest.files):
            raise RunDirectoryError(
                f"{self.path / MANIFEST_FILE} is corrupt (it does not list the files of a saved "
                f"audit): {SAVE_COMMAND}"
            )
        self._check_fingerprints(manifest, SAVED_FILES, OPTIONAL_SAVED_FILES, "the save",
                                 SAVE_COMMAND)
        return manifest

    def _check_fingerprints(self, manifest: RunManifest, required: tuple[str, ...],
                            optional: tuple[str, ...], since: str, fix: str) -> None:
        present = [name for name in optional
                   if name in manifest.files or (self.path / name).exists()]
        for name in [*required, *present]:
            path = self.path / name
            if manifest.files.get(name) != (sha256_of_file(path) if path.is_file() else None):
                raise RunDirectoryError(
                    f"{self.path / name} was changed after {since} (it no longer matches "
                    f"{MANIFEST_FILE}); the audit would describe another model: {fix}"
                )

    def saved_manifest(self) -> RunManifest | None:
        """The manifest of a Python-API audit saved here; None when there is none (a trained
        run, or no manifest at all). A manifest that says it is one but is corrupt raises."""
        if not self._says_saved():
            return None
        return self._read_record(self.path / MANIFEST_FILE, RunManifest, SAVE_COMMAND)

    def _says_saved(self) -> bool:
        """Whether the manifest says this is a saved Python-API audit (source "api"), without
        validating it."""
        path = self.path / MANIFEST_FILE
        if not path.is_file():
            return False
        try:
            source = json.loads(path.read_bytes()).get("source")
        except (OSError, ValueError, AttributeError, RecursionError):
            return False  # not readable as a saved audit's; require_trained says what is wrong
        return source == "api"

    def audit_hint(self, name: str | None, *, first: bool = False) -> str:
        """What makes (``first``: there is none yet) or remakes the result of audit ``name``
        (None: of any audit) here, for the end of a message: the ``auditml audit`` command of a
        trained run. A Python-API audit saved here has no config and ``auditml audit`` refuses
        it, so the hint says what works instead: audit the model in Python again with that
        attack beside those the save holds (a save replaces its directory whole) and save
        again, or use only the audits it holds."""
        if not self._says_saved():
            attack = "" if name is None else f" --attack {name}"
            return (f"run `auditml audit --config {self.path / CONFIG_FILE}{attack}` "
                    f"{'first' if first else 'again'}")
        # The others (with None, every audit is what is wrong: none to offer instead).
        held = [] if name is None else sorted(
            {*self.attack_names(), *self.inference_names(), *self.canary_names()} - {name})
        try:
            source = self.read_audited_model().source
        except RunDirectoryError:
            source = "api.audit"  # unreadable: the common case; reading it says what is wrong
        if source == "CanaryAudit":
            again = ("run the CanaryAudit of your training loop again and save its result "
                     "(result.save(path))")
        else:
            function = "audit_language_model" if source == "api.audit_language_model" else "audit"
            attacks = sorted({*self.attack_names(), *self.inference_names(),
                              *([] if name is None else [name])})
            arguments = f"..., attacks={attacks!r}" if attacks else "..."
            again = (f"audit the model in Python again with auditml.{function}({arguments}) "
                     "and save the results (results.save(path))")
        return (f"{self.path} is a Python-API audit saved with .save(), which `auditml audit` "
                f"cannot audit (it has no {CONFIG_FILE}): {again}"
                + (f"; or compare or report only the audits it holds ({', '.join(held)})"
                   if held else ""))

    def check_can_save(self) -> None:
        """Raise unless a Python-API audit may be saved here: a new or empty directory, or an
        earlier save holding nothing but what a save writes (it is replaced whole). A run
        trained by ``auditml train``, or a directory holding anything else, is refused and
        left as it is."""
        check_writable(self.path, "`path`")
        if self.path.is_symlink() or (self.path.exists() and not self.path.is_dir()):
            raise RunDirectoryError(
                f"`path` {self.path} exists and is not a directory (or is a symbolic link); "
                "save into a new or empty directory"
            )
        if not self.path.exists() or not any(self.path.iterdir()):
            return
        manifest = self.saved_manifest()
        foreign = [] if manifest is None else self.foreign_files(manifest)
        if manifest is None or foreign:
            held = foreign or sorted(entry.name for entry in self.path.iterdir())
            raise RunDirectoryError(
                f"`path` {self.path} is not empty and is not an earlier save of an auditml "
                f"audit (it holds {_shown(held)}); a save replaces its directory whole, so "
                "choose a new or empty directory"
            )

    def check_audit_dir(self) -> None:
        """Raise if a directory ``audit`` writes into (``audit/``, ``audit/canaries/``,
        ``reference/`` and its model sets) is a symbolic link or exists but is not a
        directory: the run directory is untrusted, and writing through a link would replace
        the files of the folder it points to (a user's own). Called before any work."""
        reference = self.path / REFERENCE_DIR
        for path in (self.audit_dir, self.canary_dir, reference,
                     *(reference / name for name in REFERENCE_SETS)):
            check_real_directory(path, "audit output", "auditml writes into the run's own "
                                 "directories only, never through a link: replace it with a "
                                 "real directory (or remove it) and audit again")

    @contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the run's write lock: a second ``train`` or ``audit`` of it fails clearly.

        The lock file sits beside the run directory (``.<name>.lock``), because ``train``
        swaps the directory itself; the OS releases the lock when the process dies.
        """
        import fcntl

        self.path.parent.mkdir(parents=True, exist_ok=True)
        lock_path = self.path.parent / f".{self.path.name}.lock"
        handle = lock_path.open("a+")
        try:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise RunDirectoryError(
                    f"run {self.path} is being written by another auditml process (train or "
                    "audit); wait for it to finish and try again"
                ) from None
            yield
        finally:
            handle.close()

    # -- training outputs -----------------------------------------------------------------------

    def write_config(self, config: AuditMLConfig) -> None:
        with atomic_path(self.path / CONFIG_FILE) as tmp:
            tmp.write_text(config.resolved().to_yaml(), encoding="utf-8")

    def read_config(self) -> AuditMLConfig:
        path = self.path / CONFIG_FILE
        try:
            raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
            reason = " ".join(str(error).split())[:200]
            raise RunDirectoryError(f"cannot read {path} ({reason}); retrain the run") from None
        _trained_before_recipes(raw)
        try:
            return parse_config(raw, str(path))
        except ConfigError as error:
            raise RunDirectoryError(f"run config is invalid: {error}") from None

    def write_model(self, model: torch.nn.Module, arch: str) -> None:
        from safetensors.torch import save_file

        tensors = {name: t.detach().cpu().contiguous() for name, t in model.state_dict().items()}
        with atomic_path(self.path / MODEL_FILE) as tmp:
            save_file(tensors, str(tmp), metadata={"arch": arch})

    def read_model_state(self) -> dict[str, torch.Tensor]:
        """The saved weights. safetensors holds raw tensors only, so loading runs no code."""
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        path = self.path / MODEL_FILE
        try:
            return load_file(str(path))
        except (SafetensorError, OSError, ValueError, RuntimeError) as error:
            reason = str(error).splitlines()[0] if str(error) else type(error).__name__
            raise RunDirectoryError(
                f"model file {path} is corrupt or unreadable ({reason}); "
                "retrain with `auditml train --config F`"
            ) from None

    def write_split(self, split: MembershipSplit) -> None:
        split.save(self.path / SPLIT_FILE)

    def read_split(self) -> MembershipSplit:
        return MembershipSplit.load(self.path / SPLIT_FILE)

    def write_training(self, record: TrainingRecord) -> None:
        write_json(self.path / METRICS_FILE, record.model_dump(mode="json"))

    def read_training(self) -> TrainingRecord:
        return self._read_record(
            self.path / METRICS_FILE, TrainingRecord, "retrain with `auditml train --config F`"
        )

    def read_metrics(self) -> dict[str, Any]:
        """``metrics.json`` as a plain mapping, validated as a :class:`TrainingRecord`."""
        return self.read_training().model_dump(mode="json")

    def write_gradient_canaries(self, record: GradientCanaryRecord) -> None:
        record.save(self.path / GRADIENT_CANARY_FILE)

    def has_gradient_canaries(self) -> bool:
        return (self.path / GRADIENT_CANARY_FILE).exists()

    def read_gradient_canaries(self) -> GradientCanaryRecord:
        """What DP-SGD recorded about the gradient canaries (validated: shapes, dtypes)."""
        path = self.path / GRADIENT_CANARY_FILE
        if not path.is_file():
            raise RunDirectoryError(
                f"run {self.path} has no gradient canaries ({GRADIENT_CANARY_FILE}): train it "
                "with training.canaries.kind: gradient and DP-SGD"
            )
        return GradientCanaryRecord.load(path)

    def write_target_outputs(self, logits: np.ndarray) -> None:
        """The trained model's logits on the audited examples (members, then non-members, each
        in split order), float64: an audit that needs only the model's outputs reads them
        instead of loading the model (and torch). Written before the manifest fingerprints it."""
        with atomic_path(self.path / TARGET_OUTPUTS_FILE) as tmp, tmp.open("wb") as handle:
            np.savez(handle, logits=np.ascontiguousarray(logits, dtype=np.float64))

    def has_target_outputs(self) -> bool:
        return (self.path / TARGET_OUTPUTS_FILE).is_file()

    def read_target_outputs(self, examples: int, classes: int) -> np.ndarray:
        """The logits :meth:`write_target_outputs` saved, checked to be ``(examples, classes)``
        float64 (never unpickled); call after :meth:`require_trained` has checked the hash."""

        def build(data: Any) -> np.ndarray:
            logits = data["logits"]
            if logits.dtype != np.float64 or logits.shape != (examples, classes):
                raise ValueError(
                    f"it holds {logits.dtype} logits of shape {logits.shape}, not float64 of "
                    f"shape {(examples, classes)} for the run's audited examples"
                )
            if not np.isfinite(logits).all():  # train refuses a diverged model: written so
                raise ValueError("it holds NaN or infinite logits")
            return logits

        return read_npz(self.path / TARGET_OUTPUTS_FILE, "target outputs", build)

    def write_audited_model(self, record: AuditedModelRecord) -> None:
        write_json(self.path / AUDITED_MODEL_FILE, record.model_dump(mode="json"))

    def read_audited_model(self) -> AuditedModelRecord:
        return self._read_record(self.path / AUDITED_MODEL_FILE, AuditedModelRecord,
                                 SAVE_COMMAND)

    def write_manifest(self, source: Literal["train", "api"] = "train") -> RunManifest:
        """Fingerprint the trained files (a saved audit's for ``source="api"``); written last, so
        a run with a manifest is complete. A save is written in a staging directory, and its
        manifest before its audit records, which carry the manifest's ``training_id``."""
        required, optional = ((TRAINED_FILES, OPTIONAL_TRAINED_FILES) if source == "train"
                              else (SAVED_FILES, OPTIONAL_SAVED_FILES))
        present = [name for name in optional if (self.path / name).is_file()]
        files = {name: sha256_of_file(self.path / name) for name in [*required, *present]}
        training_id = hashlib.sha256(json.dumps(files, sort_keys=True).encode()).hexdigest()
        manifest = RunManifest(auditml=__version__, files=files, training_id=training_id[:16],
                               source=source)
        write_json(self.path / MANIFEST_FILE, manifest.model_dump(mode="json"))
        return manifest

    # -- audit outputs --------------------------------------------------------------------------

    def write_attack(
        self, record: AttackRecord, scores: np.ndarray, is_member: np.ndarray
    ) -> AttackRecord:
        """Write an attack's scores, then its record naming the scores' SHA-256.

        Each file is replaced atomically, and the record last: if the process dies between the
        two, the old record no longer matches the new scores and readers refuse the pair.
        """
        self.check_audit_dir()
        path = self.scores_path(record.attack)
        with atomic_path(path) as tmp, tmp.open("wb") as handle:
            np.savez(handle, scores=scores.astype(np.float64), is_member=is_member.astype(bool))
        record = record.model_copy(
            update={"scores_file": path.name, "scores_sha256": sha256_of_file(path)}
        )
        write_json(self.attack_path(record.attack), record.model_dump(mode="json"))
        return record

    def attack_names(self) -> list[str]:
        """The attacks with a saved result, sorted."""
        if not self.audit_dir.is_dir():
            return []
        return sorted(
            path.stem for path in self.audit_dir.glob("*.json")
            if path.stem not in INFERENCE_RECORDS
        )

    def read_attack(self, attack: str, *, training_id: str | None = None) -> AttackRecord:
        """One attack's validated result. With ``training_id`` (the manifest's), a result made
        for an earlier training of this run is refused as stale."""
        path = self.attack_path(attack)
        if not path.is_file():
            raise RunDirectoryError(
                f"run {self.path} has no {attack} audit: {self.audit_hint(attack, first=True)}"
            )
        rerun = self.audit_hint(attack)
        record = self._read_record(path, AttackRecord, rerun)
        if record.attack != attack:
            raise RunDirectoryError(f"{path} holds the result of {record.attack!r}: {rerun}")
        if training_id is not None and record.run.training_id != training_id:
            raise RunDirectoryError(
                f"the {attack} audit of run {self.path} is stale (made before the run was "
                f"retrained): {rerun}"
            )
        return record

    def read_scores(self, record: AttackRecord | str) -> tuple[np.ndarray, np.ndarray]:
        """The scores ``record`` (or the saved result of the attack so named) was computed
        from, checked against the record's SHA-256."""
        if isinstance(record, str):
            record = self.read_attack(record)
        rerun = self.audit_hint(record.attack)
        path = self.scores_path(record.attack)
        if not path.is_file() or record.scores_sha256 != sha256_of_file(path):
            raise RunDirectoryError(
                f"{path} does not match {self.attack_path(record.attack).name} (missing, or "
                f"written by an interrupted or concurrent audit): {rerun}"
            )
        scores, is_member = read_npz(
            path, "scores file",
            lambda data: (data["scores"], data["is_member"].astype(bool)), fix=rerun,
        )
        expected = record.counts.members + record.counts.nonmembers
        if scores.shape != (expected,) or is_member.shape != (expected,):
            raise RunDirectoryError(f"scores file {path} has the wrong shape: {rerun}")
        try:
            record.check_scores(scores, is_member)
        except ValueError as error:  # MetricsInputError too
            raise RunDirectoryError(
                f"{self.attack_path(record.attack)} does not match its scores ({error}): {rerun}"
            ) from None
        return scores, is_member

    def audit_results(self) -> dict[str, dict[str, Any]]:
        """Every saved attack result, validated, as plain mappings by attack name."""
        return {
            name: self.read_attack(name).model_dump(mode="json") for name in self.attack_names()
        }

    def write_canary(self, name: str, record: CanaryRecord) -> Path:
        self.check_audit_dir()
        path = self.canary_path(name)
        write_json(path, record.model_dump(mode="json"))
        return path

    def read_canary(self, name: str) -> CanaryRecord:
        path = self.canary_path(name)
        if not path.is_file():
            raise RunDirectoryError(
                f"run {self.path} has no {name} audit: {self.audit_hint(name, first=True)}"
            )
        return self._read_record(path, CanaryRecord, self.audit_hint(name))

    def canary_names(self) -> list[str]:
        if not self.canary_dir.is_dir():
            return []
        return sorted(path.stem for path in self.canary_dir.glob("*.json"))

    def write_inference(self, record: InferenceRecord) -> Path:
        self.check_audit_dir()
        path = self.inference_path(record.attack)
        write_json(path, record.model_dump(mode="json"))
        return path

    def read_inference(self, name: str) -> InferenceRecord:
        """The saved result of inference audit ``name`` (attribute_inference, model_inversion)."""
        path = self.inference_path(name)
        if name not in INFERENCE_RECORDS or not path.is_file():
            raise RunDirectoryError(
                f"run {self.path} has no {name} audit: {self.audit_hint(name, first=True)}"
            )
        return self._read_record(path, INFERENCE_RECORDS[name], self.audit_hint(name))

    def inference_names(self) -> list[str]:
        return [name for name in INFERENCE_RECORDS if self.inference_path(name).is_file()]

    # -- reading --------------------------------------------------------------------------------

    def _read_record(self, path: Path, kind: type[R], fix: str) -> R:
        return _read_typed(path, kind, fix)


def check_real_directory(path: Path, what: str, fix: str) -> None:
    """Refuse, before any work, a directory auditml writes into that is a symbolic link (it
    would write through the link into the folder it points to, which may be the user's own)
    or that exists and is not a directory; ``what`` names it, ``fix`` says what to do."""
    if path.is_symlink():
        raise RunDirectoryError(f"{what} {path} is a symbolic link; {fix}")
    if path.exists() and not path.is_dir():
        raise RunDirectoryError(f"{what} {path} exists and is not a directory; {fix}")


def read_many_runs(path: Path) -> ManyRunsRecord:
    """An ``auditml audit-dp`` result file (it lives beside run directories, not in one)."""
    return _read_typed(Path(path), ManyRunsRecord,
                       "run `auditml audit-dp --config <the recipe> --runs K` to write it again")


def check_many_runs_destination(path: Path) -> None:
    """Refuse, before the runs, an ``audit-dp --out`` that exists and is not an earlier
    ``audit-dp`` result (a file of the user's is never replaced)."""
    path = Path(path)
    check_writable(path, "--out")
    if not path.exists() and not path.is_symlink():
        return
    if path.is_symlink() or not path.is_file():
        raise RunDirectoryError(f"--out {path} exists and is not a file; choose a new file path")
    try:
        read_many_runs(path)
    except RunDirectoryError:
        raise RunDirectoryError(
            f"--out {path} exists and is not an earlier auditml audit-dp result; auditml "
            "replaces only its own results: choose a new file path"
        ) from None


def write_many_runs(path: Path, record: ManyRunsRecord) -> None:
    """Write an ``auditml audit-dp`` result atomically (over an earlier result only: see
    :func:`check_many_runs_destination`)."""
    check_many_runs_destination(path)
    write_json(path, record.model_dump(mode="json"))


def _read_typed(path: Path, kind: type[R], fix: str) -> R:
    """``path`` as record ``kind``; any fault is one :class:`RunDirectoryError` with ``fix``."""
    payload = _read_json(path, fix)
    version = payload.get("schema_version")
    if version != SCHEMA_VERSION:
        raise RunDirectoryError(
            f"{path} has schema version {version!r}, this auditml reads version "
            f"{SCHEMA_VERSION} (it was written by another version of auditml): {fix}"
        )
    try:
        return kind.model_validate(payload)
    except ValidationError as error:
        first = error.errors()[0]
        key = ".".join(str(part) for part in first["loc"]) or "(top level)"
        message = " ".join(str(first["msg"]).split())[:200]
        raise RunDirectoryError(f"{path} is corrupt ({key}: {message}): {fix}") from None


def _read_json(path: Path, fix: str) -> dict[str, Any]:
    try:
        with path.open(encoding="utf-8") as handle:
            payload = json.load(handle)
    except FileNotFoundError:
        raise RunDirectoryError(f"missing file {path}: {fix}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as error:
        reason = " ".join(str(error).split())[:200]
        raise RunDirectoryError(f"{path} is corrupt ({reason}): {fix}") from None
    if not isinstance(payload, dict):
        raise RunDirectoryError(f"{path} is corrupt (expected a JSON object): {fix}")
    return payload


# -- what auditml writes in a run directory (see the module docstring) ----------------------------

# The files of a reference-model set (auditml.training.reference.ReferenceStore; the sets are
# REFERENCE_SETS).
REFERENCE_MANIFEST_FILE = "manifest.json"
REFERENCE_KEEP_FILE = "keep.npy"
_REFERENCE_MODEL = re.compile(r"model_[0-9]{3,}\.safetensors")
# The temporary file of an interrupted atomic write (auditml.fileio.atomic_path):
# ``.<name>.<8 random characters>.tmp`` beside ``<name>``.
_INTERRUPTED_WRITE = re.compile(r"\.(?P<name>.+)\.[a-z0-9_]{8}\.tmp")


def _auditml_folder(parts: tuple[str, ...], references: bool) -> bool:
    """Whether the folder at ``parts`` (inside a run) is one auditml creates there."""
    if parts in ((AUDIT_DIR,), (AUDIT_DIR, CANARY_DIR)):
        return True
    return references and (parts == (REFERENCE_DIR,) or (
        len(parts) == 2 and parts[0] == REFERENCE_DIR and parts[1] in REFERENCE_SETS))


def _auditml_file(parts: tuple[str, ...], top: set[str], references: bool) -> bool:
    """Whether a file at ``parts`` (inside a run) is one auditml writes there: one of ``top``
    (the manifest and what it lists), an audit output, a reference model set's file, or the
    leftover of an interrupted write of one of these."""
    *folder, name = parts
    leftover = _INTERRUPTED_WRITE.fullmatch(name)
    if leftover is not None:
        return _auditml_file((*folder, leftover["name"]), top, references)
    if not folder:
        return name in top
    if folder == [AUDIT_DIR]:
        return name.endswith((".json", ".png", "_scores.npz"))
    if folder == [AUDIT_DIR, CANARY_DIR]:
        return name.endswith(".json")
    if references and len(folder) == 2 and folder[0] == REFERENCE_DIR:
        return (name in (REFERENCE_MANIFEST_FILE, REFERENCE_KEEP_FILE)
                or _REFERENCE_MODEL.fullmatch(name) is not None)
    return False


def _shown(names: list[str]) -> str:
    """The first few of ``names``, for a one-line message."""
    return ", ".join(names[:3]) + (f", ... ({len(names)} in all)" if len(names) > 3 else "")


class SweepDirectory:
    """``auditml sweep``'s directory, ``<output_dir>/<experiment_name>_sweep/`` by default::

        runs/<experiment_name>_eps<ε>/   one run directory per ε (``_nodp`` for ε = ∞)
        sweep.json                       the table (auditml.sweep.report), one row per ε and attack
        sweep.md                         the same table for people, with the tuning statement
        accuracy_vs_epsilon.png          validation accuracy against claimed ε
        tpr_vs_epsilon.png               TPR at 1% FPR against claimed ε
        bound_vs_epsilon.png             the audit's ε lower bound against claimed ε
        tuning.json                      only with ``--tune``: the random-stopping tuner's trials
        tuning/<trial>/                  its trials' run directories
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    @staticmethod
    def default_path(config: AuditMLConfig) -> Path:
        return config.output_dir / f"{config.experiment_name}_sweep"

    @staticmethod
    def run_name(experiment_name: str, epsilon: float) -> str:
        return f"{experiment_name}_nodp" if epsilon == float("inf") else (
            f"{experiment_name}_eps{epsilon:g}"
        )

    @property
    def runs_dir(self) -> Path:
        return self.path / "runs"

    @property
    def tuning_dir(self) -> Path:
        return self.path / "tuning"

    def table_path(self, suffix: str) -> Path:
        return self.path / f"sweep.{suffix}"

    def figure_path(self, name: str) -> Path:
        return self.path / f"{name}.png"

    @property
    def tuning_path(self) -> Path:
        return self.path / "tuning.json"


def _trained_before_recipes(raw: Any) -> None:
    """A run written before DP recipes existed has no ``training.dp.recipe``: it was trained
    plain, and its reference models must be too (the default recipe would change their learning
    rate). Every run written since records its recipe in full; one written before a part of it
    existed trained without that part (:data:`auditml.config.RECIPE_PARTS_ADDED`)."""
    training = raw.get("training") if isinstance(raw, dict) else None
    dp = training.get("dp") if isinstance(training, dict) else None
    if isinstance(dp, dict) and "recipe" not in dp:
        dp["recipe"] = "plain"
    recipe = dp.get("recipe") if isinstance(dp, dict) else None
    if isinstance(recipe, dict):
        for part, before in RECIPE_PARTS_ADDED.items():
            recipe.setdefault(part, before)
