"""Fuzzing every command-line flag in-process: exit 0, or exit 2 and one error line, no traceback.

Hypothesis writes argument vectors for every subcommand the parser itself lists (a new command is
fuzzed without editing this file), with each of its flags given a plausible value, a hostile one
(huge, negative, NaN, inf, 1e400, empty, unicode, a missing path, a file where a directory is
wanted, an unwritable place) or left out, plus unknown and repeated flags. ``auditml`` runs in
this process on each. A vector that passes every check would start real work (training, attack
runs, report rendering); the function that starts it is replaced by one that raises
:class:`ReachedWork`, so every check runs and nothing trains. Derandomized: every run tries the
same vectors.
"""

from __future__ import annotations

import argparse
import io
import random
import re
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from auditml import cli
from auditml.attacks import ATTACKS
from auditml.audit.canaries import CANARY_AUDITS
from auditml.audit.inference import INFERENCE_AUDITS
from time_limit import finishes_within

EXAMPLES = 1_900  # draws; about two thirds are distinct vectors, and at least 1,000 must be
HANG_SECONDS = 30  # no command's checks take seconds; a case still running after 30 s hangs
MAX_ERROR_LINE = 2_100  # the CLI cuts a message at 2,000 characters
# argparse's own refusals: usage lines, then "auditml[ COMMAND]: error: ..."
ARGPARSE_ERROR = re.compile(r"^auditml( \S+)?: error: ")
PASSED: set[tuple[str, ...]] = set()


class ReachedWork(Exception):
    """Every check passed: the command was about to start its real work."""


def _commands() -> dict[str, argparse.ArgumentParser]:
    """The subcommands, read from the parser (argparse keeps them in a private action)."""
    parser = cli._parser()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    raise AssertionError("auditml's parser has no subcommands")


COMMANDS = _commands()

# Values any flag may get: numbers out of every range, texts argparse and YAML read oddly, paths
# (relative to the fuzz directory) that do not exist, are files, are not writable.
HOSTILE = [
    "", " ", "-1", "0", "1", "7", "8", "2", "1.5", "-0", "1e400", "-1e400", "1e-400", "nan",
    "NaN", "inf", "-inf", "Infinity", "99999999999999999999999999", str(2**63), "0x10", "1_000",
    "true", "null", "~", "💥", "é", "a\x00b", "\u2028", "x" * 300, "--", "-", "-x", "=", ",",
    "a=b", "learning_rate=", "=1", ":", "geometric:", "geometric:nan", "missing.yaml",
    "missing/dir/x", "file.txt", "file.txt/sub", "adir", "emptydir", "/dev/null", "/proc/fuzz",
    "/proc/fuzz/out", ".", "all", "mia_threshold", "MIA_THRESHOLD", "dp_audit",
]
CONFIG_FILES = [  # the usable ones twice, so the checks behind the config's are reached often
    "plain.yaml", "dp.yaml", "trained.yaml", "plain.yaml", "dp.yaml", "trained.yaml", "bad.yaml",
    "unknown_key.yaml", "empty.yaml", "not_mapping.yaml", "bad_attack.yaml", "mnist.yaml",
]
ATTACK_NAMES = [*ATTACKS.available(), *CANARY_AUDITS.available(), *INFERENCE_AUDITS.available(),
                "all"]
# What a real user would type for each flag, by its dest; a flag not named here (a new one)
# gets the hostile values only.
PLAUSIBLE: dict[str, list[str]] = {
    "config": CONFIG_FILES,
    "run_dirs": ["results/trained", "results/trained", "results/plain", "adir"],
    "run_dir": ["results/trained", "results/plain", "adir"],
    "out": ["out/a", "out/b", "report", "result.json", "emptydir", "adir", "results/trained/x"],
    "output_dir": ["demo_out", "demo_out/nested", "emptydir", "adir"],
    "attack": ATTACK_NAMES,
    "metric": ["loss", "confidence", "entropy", "modified_entropy", "logit_confidence"],
    "runs": ["8", "8", "16", "100000", "100001"],
    "workers": ["1", "2", "4"],
    "epsilons": ["1", "8", "inf", "0.5", "1e-3"],
    "tune": ["learning_rate=0.1,0.01", "max_grad_norm=1,2", "momentum=0.9", "weight_decay=0"],
    "tune_stopping": ["geometric:0.2", "logarithmic:0.5", "negative_binomial:1:0.5"],
    "dp_audit": ["result.json", "junk.json", "missing.json", "adir"],
    "path": ["auditml.yaml", "new/starter.yaml", "plain.yaml", "adir"],
}


def _text(rng: random.Random) -> str:
    """A short random text: letters, digits, punctuation, control characters, any plane."""
    alphabet = [(0x20, 0x7E), (0x0, 0x1F), (0xA0, 0x2FFF), (0x10000, 0x10FFFF)]
    low, high = alphabet[min(rng.randrange(6), 3)]
    return "".join(chr(rng.randint(low, high)) for _ in range(rng.randrange(13)))


def _value(rng: random.Random, dest: str) -> str:
    """Mostly a plausible value (when the flag has one), else a hostile one."""
    plausible = PLAUSIBLE.get(dest)
    roll = rng.random()
    if plausible and roll < 0.7:
        return rng.choice(plausible)
    return _text(rng) if roll > 0.95 else rng.choice(HOSTILE)


def _values(rng: random.Random, action: argparse.Action) -> list[str]:
    if action.nargs == 0:  # a switch
        return []
    count = {None: 1, "?": rng.randint(0, 1), "*": rng.randint(0, 3),
             "+": rng.randint(1, 3)}.get(action.nargs, action.nargs)  # type: ignore[arg-type]
    return [_value(rng, action.dest) for _ in range(int(count))]


EXTRAS = [["--bogus"], ["--bogus", "1"], ["-h"], ["--help"], ["--config"], ["extra"], ["--=x"],
          ["--out=out/c"], ["-"], ["--attack"], ["--version"]]


@st.composite
def argvs(draw: st.DrawFn) -> list[str]:
    """One command line: mostly a subcommand with its flags, sometimes anything at all.

    The choices come from a ``Random`` seeded by Hypothesis: the odds stay as written (a
    plausible value 70 % of the time), and vectors rarely repeat, which Hypothesis's own
    choices of many small values did (a third of the vectors were distinct).
    """
    rng = random.Random(draw(st.integers(0, 2**64 - 1)))
    roll = rng.random()
    if roll < 0.05:
        return rng.choice([[], ["--version"], ["-h"], ["bogus"], ["--bogus"], ["TRAIN"],
                           ["--version", "train"], ["--help", "bogus"]])
    if roll < 0.1:
        return [rng.choice(HOSTILE) if rng.random() < 0.7 else _text(rng)
                for _ in range(rng.randint(1, 4))]
    name = rng.choice(sorted(COMMANDS))
    positional: list[str] = []
    options: list[list[str]] = []
    for action in COMMANDS[name]._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        if not action.option_strings:
            positional += _values(rng, action)
        # Required flags are mostly given, so the checks behind argparse's are reached.
        elif rng.random() < (0.93 if action.required else 0.3):
            options.append([action.option_strings[-1], *_values(rng, action)])
    if options and rng.random() < 0.1:
        options.append(rng.choice(options))  # a repeated flag
    if rng.random() < 0.1:
        options.append(rng.choice(EXTRAS))
    rng.shuffle(options)
    return [name, *positional, *(token for option in options for token in option)]


def _run(argv: list[str]) -> tuple[int | str, str, str]:
    """The exit code (or the command that reached its work), stdout and stderr."""
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        try:
            code: int | str = cli.main(argv)
        except SystemExit as exit_:  # argparse: --help, --version, usage errors
            code = exit_.code if isinstance(exit_.code, int) else repr(exit_.code)
        except ReachedWork as reached:
            code = f"work:{reached}"
    return code, out.getvalue(), err.getvalue()


def _check(argv: list[str], tally: Counter[str]) -> None:
    """Run ``argv`` once (Hypothesis draws some vectors more than once; a failing one reruns)."""
    if tuple(argv) in PASSED:
        return
    with finishes_within(HANG_SECONDS):
        code, out, err = _run(argv)
    _verify(argv, code, out, err, tally)
    PASSED.add(tuple(argv))
    tally["cases"] += 1


def _verify(argv: list[str], code: int | str, out: str, err: str, tally: Counter[str]) -> None:
    shown = f"argv={argv!r}\nexit={code!r}\nstderr:\n{err[-3000:]}"
    assert "Traceback" not in err + out, shown
    if isinstance(code, str):
        assert code.startswith("work:"), shown
        tally[code] += 1
        assert not err.lstrip().startswith("error"), shown
        return
    assert code in (cli.EXIT_OK, cli.EXIT_BAD_INPUT), shown
    lines = [line for line in err.splitlines() if line.strip()]
    if code == cli.EXIT_OK:
        tally["exit 0"] += 1
        assert not any(line.startswith("error") for line in lines), shown
        assert out.strip(), shown
        return
    assert lines, shown
    if ARGPARSE_ERROR.match(lines[-1]):
        tally["usage error"] += 1
        assert lines[0].startswith("usage: "), shown
        return
    tally["error line"] += 1
    assert lines[-1].startswith("error: "), shown
    # One error line; anything before it is a warning about the config.
    assert all(line.startswith("warning: ") for line in lines[:-1]), shown
    assert len(lines[-1]) <= MAX_ERROR_LINE, shown


def _stop(command: str) -> Callable[..., Any]:
    def reached(*args: Any, **kwargs: Any) -> Any:
        raise ReachedWork(command)

    return reached


def _checked_then_stop(command: str, real: Callable[..., Any]) -> Callable[..., Any]:
    """Run ``real`` (a last check, e.g. the executor's name), then stop."""

    def reached(*args: Any, **kwargs: Any) -> Any:
        real(*args, **kwargs)
        raise ReachedWork(command)

    return reached


def _config(root: Path, name: str, **changes: Any) -> dict[str, Any]:
    raw: dict[str, Any] = {
        "experiment_name": name,
        "output_dir": str(root / "results"),
        "data": {"dataset": "digits", "train_size": 60, "batch_size": 30},
        "training": {"epochs": 1, "device": "cpu"},
    }
    raw.update(changes)
    return raw


@pytest.fixture(scope="module")
def fuzz_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The directory every case runs in: configs, a trained and audited run, files in the way."""
    root = tmp_path_factory.mktemp("cli_fuzz")
    dump = yaml.safe_dump
    (root / "plain.yaml").write_text(dump(_config(root, "plain")))
    (root / "trained.yaml").write_text(dump(_config(root, "trained")))
    (root / "dp.yaml").write_text(dump(_config(root, "dp", training={
        "epochs": 1, "device": "cpu",
        "dp": {"enabled": True, "noise_multiplier": 1.0, "delta": 1e-3}})))
    (root / "mnist.yaml").write_text(dump(_config(root, "mnist", data={"dataset": "mnist",
                                                                        "download": False})))
    (root / "bad_attack.yaml").write_text(dump(_config(root, "x", audit={"attacks": ["nope"]})))
    (root / "unknown_key.yaml").write_text(dump(_config(root, "u", trainig={"epochs": 1})))
    (root / "bad.yaml").write_text("experiment_name: [unclosed\n")
    (root / "empty.yaml").write_text("")
    (root / "not_mapping.yaml").write_text("- 1\n- 2\n")
    (root / "file.txt").write_text("a file of the user's\n")
    (root / "junk.json").write_text('{"not": "an audit-dp result"}\n')
    (root / "adir").mkdir()
    (root / "adir" / "keep.txt").write_text("the user's\n")
    (root / "emptydir").mkdir()
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)
        for argv in (["train", "--config", "trained.yaml"],
                     ["audit", "--config", "trained.yaml", "--attack", "mia_threshold"]):
            code, _, err = _run(argv)
            assert code == 0, err
        yield root


@pytest.mark.slow
def test_fuzzed_command_lines_end_in_exit_0_or_one_error_line(
    fuzz_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import auditml.demo
    import auditml.reporting.comparison
    import auditml.reporting.run_report
    import auditml.sweep.runner
    import auditml.training.trainer
    from auditml.audit import many_runs, runner  # auditml.audit is the function

    # Where each command's real work starts: everything before it (the checks) runs.
    monkeypatch.setattr(auditml.training.trainer, "fit_model", _stop("train"))
    monkeypatch.setattr(runner, "load_dataset", _stop("audit"))
    monkeypatch.setattr(many_runs, "make_executor", _checked_then_stop(
        "audit-dp", many_runs.make_executor))
    monkeypatch.setattr(auditml.sweep.runner, "make_executor", _checked_then_stop(
        "sweep", auditml.sweep.runner.make_executor))
    monkeypatch.setattr(auditml.demo, "train", _stop("demo"))
    monkeypatch.setattr(auditml.reporting.run_report, "report_directory", _stop("report"))
    monkeypatch.setattr(auditml.reporting.comparison, "report_directory", _stop("compare"))
    monkeypatch.chdir(fuzz_dir)
    before = sorted(path for path in fuzz_dir.rglob("*") if path.is_file())
    tally: Counter[str] = Counter()
    start = time.perf_counter()

    @settings(
        max_examples=EXAMPLES, derandomize=True, database=None, deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(argvs())
    def fuzz(argv: list[str]) -> None:
        _check(argv, tally)

    fuzz()
    print(dict(tally), f"{time.perf_counter() - start:.1f} s")
    assert tally["cases"] >= 1_000, tally  # distinct vectors run
    # Every outcome is exercised, and every command gets past all its checks at least once.
    assert tally["usage error"] >= 100 and tally["error line"] >= 200, tally
    assert tally["exit 0"] >= 20, tally
    for name in COMMANDS:
        # show-config and mode-cache print, init writes one new file: their work is their
        # checks, and runs.
        if name not in ("show-config", "init", "mode-cache"):
            assert tally[f"work:{name}"] >= 1, (name, tally)
    # Nothing the fuzz did touched a file that was there before.
    assert all(path.exists() for path in before)
    assert (fuzz_dir / "adir" / "keep.txt").read_text() == "the user's\n"
