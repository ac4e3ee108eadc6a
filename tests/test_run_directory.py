"""The run directory as a contract: typed records round-trip, and a directory on disk is
untrusted (edited, torn, foreign, locked, symlinked or malformed files end in one clear error)."""

from __future__ import annotations

import copy
import json
import os
import shutil
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from pydantic import ValidationError

from auditml.cli import main
from auditml.errors import RunDirectoryError
from auditml.records import (
    AttackRecord,
    CanaryRecord,
    ClassMetricsRecord,
    ComputeRecord,
    MembershipMetricsRecord,
    RunFacts,
    TrainingRecord,
)
from auditml.run_directory import RunDirectory

pytestmark = pytest.mark.slow


def _raw(output_dir: Path, **overrides: Any) -> dict[str, Any]:
    raw = {
        "experiment_name": "run",
        "output_dir": str(output_dir),
        "data": {"dataset": "digits", "train_size": 60, "batch_size": 30},
        "training": {"epochs": 1, "device": "cpu"},
        "audit": {"attacks": ["mia_threshold"]},
    }
    raw.update(overrides)
    return raw


def _write(path: Path, raw: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    return path


def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _error(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One tiny trained and audited run, copied by each test that changes it."""
    root = tmp_path_factory.mktemp("trained")
    config = _write(root / "config.yaml", _raw(root / "results"))
    assert main(["train", "--config", str(config)]) == 0
    assert main(["audit", "--config", str(config)]) == 0
    return root / "results" / "run"


@pytest.fixture
def run(trained: Path, tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    """(config path, run directory): a private copy of the trained run."""
    run_dir = tmp_path / "results" / "run"
    shutil.copytree(trained, run_dir)
    yield _write(tmp_path / "config.yaml", _raw(tmp_path / "results")), run_dir


# -- records --------------------------------------------------------------------------------------


def test_records_round_trip_through_the_directory(trained: Path, tmp_path: Path) -> None:
    source = RunDirectory(trained)
    training = source.read_training()
    attack = source.read_attack("mia_threshold")
    copy = RunDirectory(tmp_path / "copy")
    copy.path.mkdir()
    copy.write_training(training)
    assert copy.read_training() == training
    scores, is_member = source.read_scores(attack)
    written = copy.write_attack(attack, scores, is_member)
    assert copy.read_attack("mia_threshold") == written
    assert written.model_copy(update={"scores_sha256": attack.scores_sha256}) == attack
    np.testing.assert_array_equal(copy.read_scores(written)[0], scores)
    canary = CanaryRecord(
        attack="dp_audit", canaries=10, included=4, delta=1e-5, confidence=0.95,
        epsilon_lower_bound=0.3, best_score="loss", max_epsilon=1.2,
        by_score={"loss": {"epsilon": 0.3, "max_epsilon": 1.2, "correct": 3, "guesses": 4}},
        run=RunFacts(experiment_name="x", dp_enabled=True),
    )
    copy.write_canary("dp_audit", canary)
    assert copy.read_canary("dp_audit") == canary and copy.canary_names() == ["dp_audit"]


def test_every_key_written_is_in_the_record(trained: Path) -> None:
    # extra="forbid": a key the code writes but the record does not declare fails validation,
    # so the records are the complete schema (no key lives only in a docstring).
    metrics = json.loads((trained / "metrics.json").read_text())
    assert set(metrics) == set(TrainingRecord.model_fields)
    result = json.loads((trained / "audit" / "mia_threshold.json").read_text())
    assert set(result) == set(AttackRecord.model_fields)


def test_an_attack_record_is_typed_all_the_way_down(trained: Path) -> None:
    # Its parts are records too, not free-form dicts checked by hand, and the JSON on disk is
    # read and written back key for key (run directories written before stay readable).
    raw = json.loads((trained / "audit" / "mia_threshold.json").read_text())
    record = AttackRecord.model_validate(raw)
    assert isinstance(record.metrics, MembershipMetricsRecord)
    assert isinstance(record.compute, ComputeRecord)
    assert record.per_class and all(
        isinstance(entry, ClassMetricsRecord) for entry in record.per_class.values())
    assert json.loads(record.model_dump_json()) == raw
    label = next(iter(raw["per_class"]))
    for path in (["metrics", "calibrated_accuracy", "threshold"], ["compute", "seconds"],
                 ["per_class", label, "auc"]):
        broken = copy.deepcopy(raw)
        part = broken
        for key in path[:-1]:
            part = part[key]
        del part[path[-1]]
        with pytest.raises(ValidationError, match=path[-1]):
            AttackRecord.model_validate(broken)
        part[path[-1]] = 0.5
        part["unknown"] = 1
        with pytest.raises(ValidationError, match="unknown"):
            AttackRecord.model_validate(broken)


def test_a_record_of_another_version_says_what_to_rerun(trained: Path, tmp_path: Path) -> None:
    run = RunDirectory(tmp_path / "old")
    shutil.copytree(trained, run.path)
    path = run.attack_path("mia_threshold")
    payload = json.loads(path.read_text())
    del payload["schema_version"]
    path.write_text(json.dumps(payload))
    with pytest.raises(RunDirectoryError, match=r"schema version None.*auditml audit"):
        run.read_attack("mia_threshold")
    (run.path / "manifest.json").unlink()  # as in a run trained before manifests existed
    with pytest.raises(RunDirectoryError, match=r"older version of auditml.*retrain"):
        run.require_trained()


# -- untrusted files ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["config.yaml", "split.npz", "metrics.json", "model.safetensors"])
def test_a_trained_file_edited_after_training_is_refused(
    run: tuple[Path, Path], name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    config, run_dir = run
    with (run_dir / name).open("ab") as handle:
        handle.write(b"\n")
    code, _, err = _cli(capsys, "audit", "--config", str(config))
    assert code == 2 and f"{name} was changed after training" in _error(err)


def test_scores_replaced_without_their_record_are_refused(
    run: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # What a re-audit killed between its two writes (or a concurrent one) leaves behind.
    _, run_dir = run
    scores_path = run_dir / "audit" / "mia_threshold_scores.npz"
    with np.load(scores_path) as data:
        scores, is_member = data["scores"], data["is_member"]
    np.savez(scores_path, scores=scores[::-1], is_member=is_member)
    code, _, err = _cli(capsys, "compare", str(run_dir), "--out", str(tmp_path / "cmp"))
    assert code == 2 and "does not match mia_threshold.json" in _error(err)
    with pytest.raises(RunDirectoryError, match="interrupted or concurrent audit"):
        RunDirectory(run_dir).read_scores("mia_threshold")


@pytest.mark.parametrize("auc", [7, float("nan"), -0.1])
def test_an_impossible_metric_in_an_audit_record_is_refused_not_shown(
    run: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str], auc: float,
) -> None:
    """An AUC of 7 or NaN in audit/<attack>.json was shown by compare as a measurement."""
    _, run_dir = run
    path = run_dir / "audit" / "mia_threshold.json"
    record = json.loads(path.read_text(encoding="utf-8"))
    record["metrics"]["auc"] = auc
    path.write_text(json.dumps(record), encoding="utf-8")  # json writes NaN as NaN
    code, _, err = _cli(capsys, "compare", str(run_dir), "--out", str(tmp_path / "cmp"))
    assert code == 2 and "auc must be in [0, 1]" in _error(err)
    assert not (tmp_path / "cmp").exists()


def test_a_second_writer_fails_clearly(
    run: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    config, run_dir = run
    with RunDirectory(run_dir).lock():
        for command in ("audit", "train"):
            code, _, err = _cli(capsys, command, "--config", str(config))
            assert code == 2 and "being written by another auditml process" in _error(err)
    assert _cli(capsys, "audit", "--config", str(config))[0] == 0  # released with the block


def test_malformed_split_and_unreadable_text_are_one_line(trained: Path, tmp_path: Path) -> None:
    run = RunDirectory(tmp_path / "bad")
    shutil.copytree(trained, run.path)
    with np.load(run.path / "split.npz") as data:
        arrays = dict(data)
    arrays["members"] = arrays["members"].reshape(-1, 2)
    np.savez(run.path / "split.npz", **arrays)
    with pytest.raises(RunDirectoryError, match=r"members has shape \(30, 2\)"):
        run.read_split()
    for name, reader in (("config.yaml", run.read_config), ("metrics.json", run.read_training)):
        (run.path / name).write_bytes(b"\xff\xfe not utf-8 \x80")
        with pytest.raises(RunDirectoryError) as error:
            reader()
        assert "\n" not in str(error.value) and name in str(error.value)


def test_audit_dir_that_is_a_file_is_refused(
    run: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    config, run_dir = run
    shutil.rmtree(run_dir / "audit")
    (run_dir / "audit").write_text("not a directory")
    code, _, err = _cli(capsys, "audit", "--config", str(config))
    assert code == 2 and "audit exists and is not a directory" in _error(err)


def _folder(path: Path, files: dict[str, str]) -> dict[str, str]:
    path.mkdir(parents=True)
    for name, text in files.items():
        (path / name).write_text(text, encoding="utf-8")
    return files


def _held(path: Path) -> dict[str, str]:
    return {p.name: p.read_text(encoding="utf-8") for p in path.iterdir()}


@pytest.mark.parametrize("linked", ["audit", "audit/canaries"])
def test_audit_never_writes_through_a_symlinked_audit_dir(
    run: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str], linked: str,
) -> None:
    # QA A4: audit/ linked to the user's folder; the audit replaced the user's files there.
    config, run_dir = run
    shared = _folder(tmp_path / "shared_figs", {"mia_threshold_roc.png": "my own figure",
                                                "mia_threshold.json": "my notes"})
    shutil.rmtree(run_dir / linked, ignore_errors=True)
    (run_dir / linked).parent.mkdir(exist_ok=True)
    (run_dir / linked).symlink_to(tmp_path / "shared_figs")
    code, _, err = _cli(capsys, "audit", "--config", str(config), "--attack", "mia_threshold")
    line = _error(err)
    assert code == 2 and f"{linked} is a symbolic link" in line and "audit again" in line
    assert _held(tmp_path / "shared_figs") == shared


@pytest.mark.parametrize("linked", ["reference", "reference/audit"])
def test_audit_never_trains_reference_models_into_a_symlinked_folder(
    run: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str], linked: str,
) -> None:
    # QA A4: reference/ linked to the user's folder; LiRA wrote its models, keep.npy and
    # manifest.json there (replacing a manifest.json of the user's).
    _, run_dir = run
    mine = _folder(tmp_path / "mine", {"manifest.json": "my manifest", "keep.npy": "mine"})
    (run_dir / linked).parent.mkdir(exist_ok=True)
    (run_dir / linked).symlink_to(tmp_path / "mine")
    config = _write(tmp_path / "lira.yaml", _raw(tmp_path / "results", audit={
        "attacks": ["mia_lira"], "reference_models": 2}))
    code, _, err = _cli(capsys, "audit", "--config", str(config), "--attack", "mia_lira")
    assert code == 2 and f"{linked} is a symbolic link" in _error(err)
    assert _held(tmp_path / "mine") == mine
    assert not (run_dir / "audit" / "mia_lira.json").exists()


def test_audit_writes_into_its_real_directories(
    run: tuple[Path, Path], capsys: pytest.CaptureFixture[str],
) -> None:
    config, run_dir = run
    before = (run_dir / "audit" / "mia_threshold.json").read_bytes()
    (run_dir / "audit" / "mia_threshold.json").unlink()
    code, _, _ = _cli(capsys, "audit", "--config", str(config), "--attack", "mia_threshold")
    assert code == 0 and not (run_dir / "audit").is_symlink()
    assert json.loads((run_dir / "audit" / "mia_threshold.json").read_bytes())["attack"] == (
        json.loads(before)["attack"])


# -- what train may replace -----------------------------------------------------------------------


def test_train_never_replaces_a_folder_that_is_not_a_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    precious = tmp_path / "results" / "run"
    precious.mkdir(parents=True)
    (precious / "thesis.txt").write_text("four years of work")
    config = _write(tmp_path / "config.yaml", _raw(tmp_path / "results"))
    code, _, err = _cli(capsys, "train", "--config", str(config))
    assert code == 2 and "is not an auditml run directory (it holds thesis.txt)" in _error(err)
    assert [p.name for p in precious.iterdir()] == ["thesis.txt"]


@pytest.mark.parametrize("files", [
    {"config.yaml": "lr: 3", "metrics.json": '{"acc": 0.9}', "data/thesis.tex": "draft"},
    {"manifest.json": '{"files": {}}', "notes.txt": "mine"},
])
def test_train_never_replaces_a_folder_named_like_a_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], files: dict[str, str]
) -> None:
    """A run's file names prove nothing: without auditml's own manifest the folder is the
    user's, refused before training and left as it was."""
    precious = tmp_path / "results" / "run"
    for name, text in files.items():
        (precious / name).parent.mkdir(parents=True, exist_ok=True)
        (precious / name).write_text(text)
    config = _write(tmp_path / "config.yaml", _raw(tmp_path / "results"))
    code, _, err = _cli(capsys, "train", "--config", str(config))
    assert code == 2 and "is not an auditml run directory" in _error(err)
    assert sorted(p.relative_to(precious).as_posix() for p in precious.rglob("*")
                  if p.is_file()) == sorted(files)
    assert all((precious / name).read_text() == text for name, text in files.items())


def test_train_never_deletes_the_user_s_files_inside_a_run(
    run: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """An auditml run (trained and audited) holding files of the user's is refused before
    training, naming them; nothing in it changes."""
    config, run_dir = run
    (run_dir / "NOTES.md").write_text("notes")
    (run_dir / "analysis").mkdir()
    (run_dir / "analysis" / "plot.py").write_text("x")
    (run_dir / "audit" / "mine.txt").write_text("y")
    before = {p: p.read_bytes() for p in run_dir.rglob("*") if p.is_file()}
    code, _, err = _cli(capsys, "train", "--config", str(config))
    line = _error(err)
    assert code == 2 and f"{run_dir} holds files auditml did not write" in line
    assert "NOTES.md" in line and "analysis" in line and "audit/mine.txt" in line
    assert "move them" in line
    assert {p: p.read_bytes() for p in run_dir.rglob("*") if p.is_file()} == before


def test_retraining_an_audited_run_replaces_it_and_spares_a_user_s_dot_old(
    run: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """A run auditml wrote, audit results included, is replaced by a retrain; the backup
    the swap uses is auditml's own fresh name, never a path of the user's (here the name the
    swap once used, as a folder and as a file)."""
    config, run_dir = run
    results = run_dir.parent
    old_id = json.loads((run_dir / "manifest.json").read_text())["training_id"]
    (results / ".run.old").mkdir()
    (results / ".run.old" / "backup.txt").write_text("keep")
    code, _, err = _cli(capsys, "train", "--config", str(config))
    assert code == 0, err
    assert (results / ".run.old" / "backup.txt").read_text() == "keep"
    assert not (run_dir / "audit").exists()  # replaced whole: the stale audit went with it
    assert RunDirectory(run_dir).require_trained().training_id != old_id
    # nothing of the swap is left beside the run but the lock file
    assert sorted(p.name for p in results.iterdir()) == [".run.lock", ".run.old", "run"]

    shutil.rmtree(results / ".run.old")
    (results / ".run.old").write_text("a file of mine")
    code, _, err = _cli(capsys, "train", "--config", str(config))
    assert code == 0, err
    assert (results / ".run.old").read_text() == "a file of mine"


def test_what_audit_writes_is_auditml_s_and_nothing_else_is(run: tuple[Path, Path]) -> None:
    """The files auditml writes after training (audit records and figures, canary records,
    reference model sets, an interrupted write's temporary file) keep a run replaceable; a
    file elsewhere, of another kind, a folder of the user's or a symbolic link does not."""
    _, run_dir = run
    for name in ["audit/canaries/lira.json", "reference/audit/manifest.json",
                 "reference/audit/keep.npy", "reference/population/model_007.safetensors",
                 "audit/.mia_threshold.json.a1b2_c3d.tmp", ".metrics.json.zz9y8x7w.tmp"]:
        (run_dir / name).parent.mkdir(parents=True, exist_ok=True)
        (run_dir / name).write_text("x")
    RunDirectory(run_dir).check_can_train()
    for name in ["reference/mine/manifest.json", "audit/canaries/notes.txt", "audit/x.csv",
                 "reference/audit/model.pt", ".notes.txt.a1b2c3d4.tmp", "keep.npy"]:
        (run_dir / name).parent.mkdir(parents=True, exist_ok=True)
        (run_dir / name).write_text("mine")
    (run_dir / "link").symlink_to(run_dir / "keep.npy")
    (run_dir / "drafts").mkdir()
    with pytest.raises(RunDirectoryError) as error:
        RunDirectory(run_dir).check_can_train()
    assert RunDirectory(run_dir).foreign_files(RunDirectory(run_dir).require_trained()) == [
        ".notes.txt.a1b2c3d4.tmp", "audit/canaries/notes.txt", "audit/x.csv", "drafts/",
        "keep.npy", "link", "reference/audit/model.pt", "reference/mine/"]
    assert "(.notes.txt.a1b2c3d4.tmp, audit/canaries/notes.txt, audit/x.csv, ... (8 in all))" in (
        str(error.value))


def test_a_manifest_naming_other_files_is_not_auditml_s(run: tuple[Path, Path]) -> None:
    _, run_dir = run
    manifest = json.loads((run_dir / "manifest.json").read_text())
    manifest["files"]["thesis.tex"] = "0" * 64
    (run_dir / "manifest.json").write_text(json.dumps(manifest))
    (run_dir / "thesis.tex").write_text("draft")
    with pytest.raises(RunDirectoryError, match="is not an auditml run directory"):
        RunDirectory(run_dir).check_can_train()


def test_a_file_added_while_training_keeps_the_old_run(run: tuple[Path, Path]) -> None:
    """The swap checks the old run again once it is moved aside: a file the user put there
    after train's checks puts it back untouched, and nothing of the swap is left behind."""
    from auditml.fileio import staged_directory

    _, run_dir = run
    before = sorted(p.relative_to(run_dir) for p in run_dir.rglob("*"))
    def check(old: Path) -> None:
        RunDirectory(old).check_replaceable(shown_as=run_dir)

    with (pytest.raises(RunDirectoryError, match=f"{run_dir} holds files auditml did not"),
          staged_directory(run_dir, check_old=check) as staging):
        (staging / "config.yaml").write_text("new")
        (run_dir / "late.txt").write_text("mine")
    assert sorted(p.relative_to(run_dir) for p in run_dir.rglob("*")) == sorted(
        [*before, Path("late.txt")])
    assert sorted(p.name for p in run_dir.parent.iterdir()) == ["run"]


def test_train_refuses_a_symlinked_run_and_an_output_dir_that_is_a_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "run").symlink_to(elsewhere)
    config = _write(tmp_path / "config.yaml", _raw(tmp_path / "results"))
    code, _, err = _cli(capsys, "train", "--config", str(config))
    assert code == 2 and "is a symbolic link" in _error(err)
    assert sorted(p.name for p in (tmp_path / "results").iterdir()) == ["run"]
    assert elsewhere.is_dir() and not any(elsewhere.iterdir())

    (tmp_path / "afile").write_text("x")
    config = _write(tmp_path / "config2.yaml", _raw(tmp_path / "afile"))
    code, _, err = _cli(capsys, "train", "--config", str(config))
    assert code == 2 and "exists and is not a directory" in _error(err)


def test_run_files_follow_the_umask(tmp_path: Path) -> None:
    from auditml.config import parse_config
    from auditml.training import train

    previous = os.umask(0o022)
    try:
        train(parse_config(_raw(tmp_path / "results")), console=None)
    finally:
        os.umask(previous)
    run_dir = tmp_path / "results" / "run"
    assert stat.S_IMODE(run_dir.stat().st_mode) == 0o755
    assert {stat.S_IMODE(p.stat().st_mode) for p in run_dir.iterdir()} == {0o644}


# -- which audit settings win ---------------------------------------------------------------------


def test_the_audit_config_s_own_audit_section_wins(
    run: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, run_dir = run
    given = _raw(tmp_path / "results", audit={"attacks": ["mia_threshold"],
                                               "mia_threshold": {"metric": "entropy"}})
    config = _write(tmp_path / "audit.yaml", given)
    code, out, err = _cli(capsys, "audit", "--config", str(config))
    assert code == 0, err
    assert RunDirectory(run_dir).read_attack("mia_threshold").settings == {"metric": "entropy"}
    assert "note:" not in out

    given["training"] = {"epochs": 5, "device": "cpu"}
    _write(config, given)
    code, out, _ = _cli(capsys, "audit", "--config", str(config))
    assert code == 0 and "only the audit: section of the given config is used" in out


_BOUND = {"epsilon": 0.3, "max_epsilon": 1.2, "correct": 3, "guesses": 4}
_CHECK = {"violation": True, "confidence": 0.99, "family": "DP-SGD ...",
          "family_epsilon_lower_bound": 3.35,
          "noise": {"claimed": 1.0, "estimate": 1.0, "upper": 1.01, "observations": 500},
          "sample_rate": None,
          "sensitivity": {"tensor": 3, "tensors": 4, "estimate": 9.2, "lower": 7.7,
                          "sampled": 32}}


@pytest.mark.parametrize("broken", [
    {"noise": None}, {"noise": {"upper": 1.0}}, {"violation": "yes"},
    {"family_epsilon_lower_bound": float("nan")}, {"sample_rate": {"lower": "0.05"}},
    {"sensitivity": {**_CHECK["sensitivity"], "tensor": "3"}}, {"sensitivity": []},
    {"sensitivity": {**_CHECK["sensitivity"], "probe": "yes"}},
])
def test_a_tampered_mechanism_check_is_refused_on_reading(tmp_path: Path, broken: dict) -> None:
    # A report formats these keys: a run directory that lacks one must not crash it.
    run = RunDirectory(tmp_path)
    record = CanaryRecord(
        attack="gradient_canaries", canaries=10, included=4, delta=1e-5, confidence=0.95,
        epsilon_lower_bound=0.3, best_score="lr", max_epsilon=1.2, by_score={"lr": _BOUND},
        run=RunFacts(experiment_name="x", dp_enabled=True), mechanism_check=_CHECK,
    )
    run.write_canary("gradient_canaries", record)
    read = run.read_canary("gradient_canaries").mechanism_check
    assert read is not None and read.model_dump(mode="json") == _CHECK
    data = json.loads(run.canary_path("gradient_canaries").read_text())
    data["mechanism_check"] = {**_CHECK, **broken}
    run.canary_path("gradient_canaries").write_text(json.dumps(data))
    with pytest.raises(RunDirectoryError, match="mechanism_check"):
        run.read_canary("gradient_canaries")


@pytest.mark.parametrize(("key", "value"), [
    ("epsilon", float("nan")), ("epsilon", -3.0), ("delta", 2.0), ("delta", 0.0),
    ("noise_multiplier", -1.0), ("sample_rate", 7.0), ("steps", -5), ("max_grad_norm", 0.0),
    ("target_epsilon", float("inf")),
])
def test_a_privacy_number_out_of_its_range_is_refused(
    trained: Path, key: str, value: float
) -> None:
    """A hand-edited metrics.json (its hash re-written in the manifest) showed NaN, a negative
    ε (judged a VIOLATION) or δ = 2 in reports, or failed in them with a traceback."""
    data = json.loads((trained / "metrics.json").read_text())
    TrainingRecord.model_validate(data)
    data[key] = value
    with pytest.raises(ValueError, match=key):
        TrainingRecord.model_validate(data)
