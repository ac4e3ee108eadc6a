"""Issue 25's hostile user, re-run: every listed fault, as a user would trigger it, tallied.

Each case runs one ``auditml`` command in its own process (or one Python API call in this one)
against a small trained and audited run on the embedded digits data, and is classified as:

- ``clean``: refused with one ``error:`` line and exit 2 (or, for a case that should work,
  exit 0 with every file of the user's intact);
- ``traceback``: a Python traceback, or an exit code other than 0 or 2;
- ``accepted``: a refusal was expected and the command exited 0;
- ``lost``: a file the user made was deleted or changed;
- ``hang``: still running after the time limit.

For the API, ``clean`` means an exception of the auditml/ValueError/TypeError family whose
message names the offending argument.

    python benchmarks/hostile_user.py [--timeout 120] [--only SUBSTRING]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import yaml

AUDITML = [sys.executable, "-m", "auditml"]
TINY = {
    "experiment_name": "base",
    "data": {"dataset": "digits", "train_size": 200, "batch_size": 64},
    "training": {"epochs": 1},
}


@dataclass
class Outcome:
    kind: str  # clean, traceback, accepted, lost, hang
    detail: str


@dataclass
class Case:
    group: str
    name: str
    run: Callable[[Path], Outcome]


def write_config(path: Path, **changes: object) -> Path:
    """TINY with dotted-key ``changes`` (``training__learning_rate=1e300``)."""
    raw = json.loads(json.dumps(TINY))
    for dotted, value in changes.items():
        node = raw
        *parents, leaf = dotted.split("__")
        for key in parents:
            node = node.setdefault(key, {})
        node[leaf] = value
    path.write_text(yaml.safe_dump(raw))
    return path


def cli(work: Path, *args: str, timeout: float) -> tuple[int | None, str, float]:
    start = time.perf_counter()
    try:
        done = subprocess.run([*AUDITML, *args], cwd=work, capture_output=True, text=True,
                              timeout=timeout)
    except subprocess.TimeoutExpired:
        return None, "", time.perf_counter() - start
    return done.returncode, done.stderr, time.perf_counter() - start


def judge(returncode: int | None, stderr: str, *, refuse: bool) -> Outcome:
    lines = [line for line in stderr.strip().splitlines() if line.strip()]
    last = lines[-1] if lines else ""
    if returncode is None:
        return Outcome("hang", "no exit within the time limit")
    if "Traceback (most recent call last)" in stderr or returncode not in (0, 2):
        return Outcome("traceback", f"exit {returncode}: {last[:120]}")
    if refuse and returncode == 0:
        return Outcome("accepted", "exit 0")
    if not refuse and returncode != 0:
        return Outcome("traceback" if not last.startswith("error:") else "accepted",
                       f"refused a valid command: {last[:120]}")
    if returncode == 2 and not (last.startswith("error:") or "usage:" in stderr):
        return Outcome("traceback", f"exit 2 without an error line: {last[:120]}")
    return Outcome("clean", last[:120] if returncode else "exit 0")


def refused(*args: str) -> Callable[[Path], Outcome]:
    def run(work: Path) -> Outcome:
        code, err, _ = cli(work, *[a.format(work=work) for a in args], timeout=TIMEOUT)
        return judge(code, err, refuse=True)
    return run


def refused_config(command: list[str], **changes: object) -> Callable[[Path], Outcome]:
    def run(work: Path) -> Outcome:
        config = write_config(work / "hostile.yaml", **{"experiment_name": "hostile", **changes})
        code, err, _ = cli(work, *command, "--config", str(config), timeout=TIMEOUT)
        return judge(code, err, refuse=True)
    return run


def said_config(command: list[str], words: str, **changes: object) -> Callable[[Path], Outcome]:
    """A value auditml accepts by design, which its output must mention (``words``)."""
    def run(work: Path) -> Outcome:
        config = write_config(work / "hostile.yaml", **{"experiment_name": "hostile", **changes})
        try:
            done = subprocess.run([*AUDITML, *command, "--config", str(config)], cwd=work,
                                  capture_output=True, text=True, timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            return Outcome("hang", "no exit within the time limit")
        if done.returncode == 0 and words in done.stdout + done.stderr:
            return Outcome("clean", f"exit 0, says {words!r}")
        outcome = judge(done.returncode, done.stderr, refuse=False)
        return outcome if outcome.kind != "clean" else Outcome("accepted", "silently")
    return run


def keeps_user_files(setup: Callable[[Path], dict[Path, bytes]], *args: str,
                     refuse: bool | None = None) -> Callable[[Path], Outcome]:
    """Run ``args`` after ``setup`` made the user's files; they must survive unchanged.
    ``refuse``: None when either a refusal or success is right, as long as nothing is lost."""
    def run(work: Path) -> Outcome:
        files = setup(work)
        code, err, _ = cli(work, *[a.format(work=work) for a in args], timeout=TIMEOUT)
        for path, content in files.items():
            if not path.exists() or path.read_bytes() != content:
                return Outcome("lost", f"{path.relative_to(work)} deleted or changed")
        if refuse is None:
            return judge(code, err, refuse=code != 0)
        return judge(code, err, refuse=refuse)
    return run


def user_files(*relative: str, content: bytes = b"thesis\n") -> Callable[[Path], dict[Path, bytes]]:
    def setup(work: Path) -> dict[Path, bytes]:
        made = {}
        for name in relative:
            path = work / name.format(n=len(list(work.iterdir())))
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content)
            made[path] = content
        return made
    return setup


def corrupt(relative: str, content: bytes | None, *, directory: bool = False,
            reference: bool = False) -> Callable[[Path], Outcome]:
    """The audited run with one file replaced: ``report`` must refuse it, or, for a file of
    the reference models (``reference=True``), ``audit --attack mia_lira``, which reuses them."""
    def run(work: Path) -> Outcome:
        import shutil
        name = "ref" if reference else "base"
        pristine = work / f"pristine_{name}"
        if not pristine.exists():
            shutil.copytree(work / "results" / name, pristine)
        copy = work / "results" / name if reference else work / "corrupt"
        shutil.rmtree(copy, ignore_errors=True)
        shutil.copytree(pristine, copy)
        target = copy / relative
        if target.is_dir():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()
        if directory:
            target.mkdir(parents=True)
        elif content is not None:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(content)
        if reference:
            code, err, _ = cli(work, "audit", "--config", "ref.yaml", "--attack", "mia_lira",
                               timeout=TIMEOUT)
            shutil.rmtree(copy)
            shutil.copytree(pristine, copy)  # the next cases audit the intact run
        else:
            code, err, _ = cli(work, "report", str(copy), "--out", str(work / "r_corrupt"),
                               timeout=TIMEOUT)
            shutil.rmtree(work / "r_corrupt", ignore_errors=True)
        return judge(code, err, refuse=True)
    return run


def tampered_audit(key: str, value: object) -> Callable[[Path], Outcome]:
    """compare must refuse an audit record whose ``key`` (anywhere in it) is set to ``value``."""
    def run(work: Path) -> Outcome:
        import shutil
        copy = work / f"tampered_{key}_{value}"
        shutil.rmtree(copy, ignore_errors=True)
        shutil.copytree(work / "results" / "base", copy)
        changed = 0
        for record in (copy / "audit").rglob("*.json"):
            data = json.loads(record.read_text())

            def visit(node: object) -> None:
                nonlocal changed
                if isinstance(node, dict):
                    for name in list(node):
                        if name == key:
                            node[name] = value
                            changed += 1
                        else:
                            visit(node[name])
                elif isinstance(node, list):
                    for item in node:
                        visit(item)
            visit(data)
            record.write_text(json.dumps(data))
        if not changed:
            return Outcome("traceback", f"no {key!r} in the audit records: case out of date")
        code, err, _ = cli(work, "compare", str(copy), str(work / "results" / "base"), "--out",
                           str(work / f"c_{copy.name}"), timeout=TIMEOUT)
        return judge(code, err, refuse=True)
    return run


def api_case(call: str, argument: str) -> Callable[[Path], Outcome]:
    """Run ``call`` (Python, with ``np``, ``torch``, ``nn``, ``api``, ``model``, ``x``, ``y``
    defined); it must raise an error naming ``argument``."""
    def run(work: Path) -> Outcome:
        import numpy as np
        import torch
        from torch import nn

        from auditml import api
        from auditml.errors import AuditMLError

        torch.manual_seed(0)
        model = nn.Linear(4, 3)
        x = np.random.default_rng(0).normal(size=(16, 4)).astype("float32")
        y = np.arange(16) % 3
        scope = {"np": np, "torch": torch, "nn": nn, "api": api, "model": model, "x": x, "y": y}
        try:
            exec(call, scope)
        except (AuditMLError, ValueError, TypeError) as err:
            if argument in str(err):
                return Outcome("clean", f"{type(err).__name__}: {str(err)[:100]}")
            return Outcome("traceback", f"{type(err).__name__} not naming {argument}: {err}")
        except Exception as err:
            return Outcome("traceback", f"{type(err).__name__}: {str(err)[:100]}")
        return Outcome("accepted", "no error")
    return run


NESTED = ("[" * 100_000 + "]" * 100_000).encode()

CASES: list[Case] = [
    # -- files lost: report/compare --out over user folders
    Case("files", "report --out over a folder with the user's thesis and a fake run_report.json",
         keeps_user_files(user_files("u1/thesis.tex", "u1/run_report.json", content=b"x"),
                          "report", "results/base", "--out", "u1")),
    Case("files", "report --out rerun over own report + user file",
         keeps_user_files(user_files("u2/notes.txt"), "report", "results/base", "--out", "u2")),
    Case("files", "compare --out over a folder with a fake comparison.json",
         keeps_user_files(user_files("u3/thesis.tex", "u3/comparison.json", content=b"x"),
                          "compare", "results/base", "results/base2", "--out", "u3")),
    Case("files", "audit-dp --out an existing file of the user's",
         keeps_user_files(user_files("u4.json"), "audit-dp", "--config", "dp.yaml", "--runs", "8",
                          "--out", "u4.json", refuse=True)),
    Case("files", "sweep --out over a folder with the user's sweep.md",
         keeps_user_files(user_files("u5/sweep.md"), "sweep", "--config", "tiny.yaml",
                          "--epsilons", "inf", "--out", "u5", refuse=True)),
    Case("files", "demo --output-dir over the user's own tutorial config",
         keeps_user_files(user_files("u6/configs/dp_tutorial_eps5.yaml"), "demo",
                          "--output-dir", "u6", refuse=True)),
    # -- unwritable destinations
    *[Case("unwritable", f"{name} into {where}", refused(*args))
      for where in ("/proc/auditml", "{work}/tiny.yaml/sub")
      for name, args in (
          ("report --out", ("report", "results/base", "--out", where)),
          ("compare --out", ("compare", "results/base", "results/base2", "--out", where)),
          ("audit-dp --out", ("audit-dp", "--config", "dp.yaml", "--runs", "8", "--out",
                              f"{where}/x.json")),
          ("sweep --out", ("sweep", "--config", "tiny.yaml", "--epsilons", "inf", "--out",
                           where)),
          ("demo --output-dir", ("demo", "--output-dir", where)),
      )],
    Case("unwritable", "train with output_dir in /proc",
         refused_config(["train"], output_dir="/proc/auditml")),
    Case("unwritable", "train with output_dir under a file",
         refused_config(["train"], output_dir="tiny.yaml/results")),
    # -- corrupt run directories
    Case("corrupt", "deeply nested reference/audit/manifest.json",
         corrupt("reference/audit/manifest.json", NESTED, reference=True)),
    Case("corrupt", "reference/audit is a file",
         corrupt("reference/audit", b"not a dir", reference=True)),
    Case("corrupt", "0-byte target_outputs.npz", corrupt("target_outputs.npz", b"")),
    Case("corrupt", "audit/ missing", corrupt("audit", None)),
    Case("corrupt", "metrics.json is a directory", corrupt("metrics.json", None, directory=True)),
    Case("corrupt", "config.yaml with a YAML bomb",
         corrupt("config.yaml", b"a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a,*a,*a,*a,*a,*a,"
                 b"*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,"
                 b"*c,*c]\ne: [*d,*d,*d,*d,*d,*d,*d,*d,*d]\n")),
    Case("corrupt", "audit record with an AUC of 7", tampered_audit("auc", 7)),
    Case("corrupt", "audit record with a NaN AUC", tampered_audit("auc", float("nan"))),
    # -- values wrongly accepted
    Case("values", "learning_rate: 1e300",
         refused_config(["train"], training__learning_rate=1e300)),
    Case("values", "learning_rate: .nan", refused_config(["train"],
                                                          training__learning_rate=float("nan"))),
    Case("values", "dp.epsilon without dp.enabled",
         refused_config(["train"], training__dp={"epsilon": 5})),
    Case("values", "dp.noise_multiplier without dp.enabled",
         refused_config(["train"], training__dp={"noise_multiplier": 1.0})),
    Case("values", "population_size beyond the data (an upper limit: said, not silently cut)",
         said_config(["audit", "--attack", "mia_rmia"], "note: audit.population_size",
                     experiment_name="ref", audit__population_size=10**6,
                     audit__reference_models=2)),
    Case("values", "train_size beyond the data", refused_config(["train"], data__train_size=10**6)),
    Case("values", "batch_size 0", refused_config(["train"], data__batch_size=0)),
    Case("values", "unknown dataset file name",
         refused_config(["train"], data__dataset="breast_cancer.csv")),
    Case("values", "seed 2**70", refused_config(["train"], seed=2**70)),
    Case("values", "epochs as a string", refused_config(["train"], training__epochs="ten")),
    Case("values", "sweep --tune-stopping geometric:1e-300",
         refused("sweep", "--config", "tiny.yaml", "--tune", "learning_rate=0.1,0.01",
                 "--tune-stopping", "geometric:1e-300")),
    Case("values", "sweep --epsilons 1e400", refused("sweep", "--config", "tiny.yaml",
                                                      "--epsilons", "1e400")),
    Case("values", "sweep --epsilons -1", refused("sweep", "--config", "tiny.yaml",
                                                   "--epsilons", "-1")),
    Case("values", "sweep --epsilons nan", refused("sweep", "--config", "tiny.yaml",
                                                    "--epsilons", "nan")),
    Case("values", "sweep --workers 0", refused("sweep", "--config", "tiny.yaml",
                                                 "--epsilons", "inf", "--workers", "0")),
    Case("values", "audit-dp --runs 10**23", refused("audit-dp", "--config", "dp.yaml",
                                                      "--runs", "100000000000000000000000")),
    Case("values", "audit-dp --runs 3", refused("audit-dp", "--config", "dp.yaml", "--runs", "3")),
    Case("values", "audit-dp --workers 0", refused("audit-dp", "--config", "dp.yaml", "--runs",
                                                    "8", "--workers", "0")),
    Case("values", "audit-dp --workers -1", refused("audit-dp", "--config", "dp.yaml", "--runs",
                                                     "8", "--workers", "-1")),
    Case("values", "audit-dp with DP off", refused("audit-dp", "--config", "tiny.yaml",
                                                    "--runs", "8")),
    Case("values", "audit --attack nonsense", refused("audit", "--config", "tiny.yaml",
                                                       "--attack", "nonsense")),
    Case("values", "audit a run never trained", refused_config(["audit"])),
    Case("values", "report of a folder that is no run", refused("report", "{work}/empty",
                                                                 "--out", "r_none")),
    Case("values", "config that is a directory", refused("train", "--config", "results")),
    Case("values", "config that is binary", refused("train", "--config",
                                                     sys.executable)),
    Case("values", "config with a YAML bomb", refused("train", "--config", "bomb.yaml")),
    # -- the user's own data and model
    *[Case("own data", name, refused_config(["train"], **changes)) for name, changes in (
        ("csv file missing", {"data__dataset": "csv", "data__path": "missing.csv",
                              "data__label_column": "label"}),
        ("csv without its label column", {"data__dataset": "csv", "data__path": "good.csv",
                                          "data__label_column": "target"}),
        ("csv with a NaN cell", {"data__dataset": "csv", "data__path": "nan.csv",
                                 "data__label_column": "label"}),
        ("csv too short for the split", {"data__dataset": "csv", "data__path": "few.csv",
                                         "data__label_column": "label"}),
        ("csv with a fractional label", {"data__dataset": "csv", "data__path": "textlabel.csv",
                                         "data__label_column": "label"}),
        ("csv without label_column", {"data__dataset": "csv", "data__path": "good.csv"}),
        ("npz that needs pickle", {"data__dataset": "npz", "data__path": "objects.npz"}),
        ("npz without y", {"data__dataset": "npz", "data__path": "noy.npz"}),
        ("npz with x and y of different lengths", {"data__dataset": "npz",
                                                   "data__path": "mismatch.npz"}),
        ("npz that is a CSV", {"data__dataset": "npz", "data__path": "good.csv"}),
        ("path with a built-in dataset", {"data__path": "good.csv"}),
        ("sensitive column missing", {"data__dataset": "csv", "data__path": "good.csv",
                                      "data__label_column": "label",
                                      "data__sensitive_column": "sex"}),
        ("model module missing", {"model__arch": "no_such_module:factory"}),
        ("model factory missing", {"model__arch": "json:no_such_factory"}),
        ("model factory not a module", {"model__arch": "json:dumps"}),
        ("model arch malformed", {"model__arch": "a:b:c"}),
    )],
    Case("own data", "csv trains (accepted)", lambda work: Outcome(
        "clean", "exit 0") if cli(work, "train", "--config", str(write_config(
            work / "csv.yaml", experiment_name="csv", data__dataset="csv", data__path="good.csv",
            data__label_column="label", data__train_size=100)), timeout=TIMEOUT)[0] == 0
        else Outcome(
        "accepted", "a good CSV was refused")),
    # -- the Python API: errors name the argument
    Case("api", "negative labels", api_case("api.audit(model, (x, -y - 1), (x, y))", "members")),
    Case("api", "float labels", api_case("api.audit(model, (x, y + 0.5), (x, y))", "members")),
    Case("api", "labels beyond the model's classes",
         api_case("api.audit(model, (x, y), (x, y + 3))", "nonmembers")),
    Case("api", "NaN inputs", api_case("x[0, 0] = np.nan\napi.audit(model, (x, y), (x, y))",
                                       "members")),
    Case("api", "lengths differ", api_case("api.audit(model, (x, y[:-1]), (x, y))", "members")),
    Case("api", "empty members", api_case("api.audit(model, (x[:0], y[:0]), (x, y))",
                                          "members")),
    Case("api", "wrong feature count", api_case("api.audit(model, (x[:, :3], y), (x[:, :3], y))",
                                                "model")),
    Case("api", "one attack as a string (accepted)",
         lambda work: Outcome("clean", "accepted") if api_case(
             "api.audit(model, (x, y), (x, y), attacks='mia_threshold')", "attacks")(work).kind
         == "accepted" else Outcome("traceback", "a string attack name was refused")),
    Case("api", "unknown attack", api_case("api.audit(model, (x, y), (x, y), attacks=['nope'])",
                                           "nope")),
    Case("api", "not a model", api_case("api.audit('model', (x, y), (x, y))", "model")),
    Case("api", "reference_models 0",
         api_case("api.audit(model, (x, y), (x, y), attacks=['mia_lira'], reference_models=0, "
                  "reference_factory=lambda data, seed: nn.Linear(4, 3), population=(x, y))",
                  "reference_models")),
    Case("api", "reference model with the wrong number of classes",
         api_case("api.audit(model, (x, y), (x, y), attacks=['mia_lira'], reference_models=2, "
                  "reference_factory=lambda data, seed: nn.Linear(4, 5), population=(x, y))",
                  "reference")),
    Case("api", "CanaryAudit.result(delta=0)", api_case(
        "from auditml.audit.own_loop import CanaryAudit\n"
        "from opacus import PrivacyEngine\n"
        "import torch.utils.data as tud\n"
        "m = nn.Linear(4, 3); opt = torch.optim.SGD(m.parameters(), lr=0.1)\n"
        "loader = tud.DataLoader(tud.TensorDataset(torch.tensor(x), torch.tensor(y)), "
        "batch_size=4)\n"
        "engine = PrivacyEngine()\n"
        "m, opt, loader = engine.make_private(module=m, optimizer=opt, data_loader=loader, "
        "noise_multiplier=1.0, max_grad_norm=1.0)\n"
        "audit = CanaryAudit(opt, 8, model=m, data_loader=loader, privacy_engine=engine)\n"
        "for bx, by in loader:\n"
        "    opt.zero_grad(); nn.functional.cross_entropy(m(bx), by).backward(); opt.step()\n"
        "audit.result(delta=0)", "delta")),
]


def prepare(work: Path) -> None:
    """The trained and audited runs the cases attack, and the configs they name."""
    write_config(work / "tiny.yaml")
    write_config(work / "tiny2.yaml", experiment_name="base2")
    write_config(work / "dp.yaml", experiment_name="dp", training__dp={"enabled": True,
                                                                       "epsilon": 5.0})
    (work / "bomb.yaml").write_bytes(b"a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a,*a,*a,*a,*a,"
                                     b"*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d "
                                     b"[*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: [*d,*d,*d,*d,*d,*d,*d,"
                                     b"*d,*d]\n")
    write_config(work / "ref.yaml", experiment_name="ref", audit__reference_models=2)
    for config, attack in (("tiny.yaml", "mia_threshold"), ("tiny2.yaml", "mia_threshold"),
                           ("ref.yaml", "mia_lira")):
        for command in (["train"], ["audit", "--attack", attack]):
            subprocess.run([*AUDITML, *command, "--config", config], cwd=work, check=True,
                           capture_output=True)
    (work / "empty").mkdir()
    rows = "\n".join(f"{i % 7},{i * 0.5},{'ab'[i % 2]},{i % 2}" for i in range(300))
    (work / "good.csv").write_text("a,b,c,label\n" + rows + "\n")
    (work / "nan.csv").write_text("a,b,c,label\n" + rows.replace("3,1.5,", "3,nan,") + "\n")
    (work / "few.csv").write_text("a,b,c,label\n" + "\n".join(rows.splitlines()[:20]) + "\n")
    (work / "textlabel.csv").write_text("a,b,c,label\n1,2,a,0\n1,2,a,0.5\n")
    import numpy as np
    np.savez(work / "objects.npz", x=np.array([{"a": 1}] * 300, dtype=object),
             y=np.zeros(300, int))
    np.savez(work / "noy.npz", x=np.zeros((300, 4)))
    np.savez(work / "mismatch.npz", x=np.zeros((300, 4)), y=np.zeros(200, int))


TIMEOUT = 120.0


def main() -> None:
    global TIMEOUT
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timeout", type=float, default=TIMEOUT)
    parser.add_argument("--only", default="")
    args = parser.parse_args()
    TIMEOUT = args.timeout
    tally: Counter[tuple[str, str]] = Counter()
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        start = time.perf_counter()
        prepare(work)
        print(f"prepared two audited digits runs in {time.perf_counter() - start:.0f}s")
        for case in CASES:
            if args.only not in case.name:
                continue
            outcome = case.run(work)
            tally[(case.group, outcome.kind)] += 1
            mark = "ok " if outcome.kind == "clean" else "BAD"
            print(f"{mark} [{case.group:10}] {case.name}: {outcome.kind} - {outcome.detail}",
                  flush=True)
    kinds = ["clean", "traceback", "accepted", "lost", "hang"]
    groups = sorted({group for group, _ in tally})
    print("\n| group | cases | " + " | ".join(kinds) + " |")
    print("| --- | --- | " + " | ".join("---" for _ in kinds) + " |")
    for group in [*groups, "all"]:
        counts = [sum(n for (g, k), n in tally.items() if k == kind and group in (g, "all"))
                  for kind in kinds]
        print(f"| {group} | {sum(counts)} | " + " | ".join(str(n) for n in counts) + " |")


if __name__ == "__main__":
    main()
