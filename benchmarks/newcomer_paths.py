"""Issue 25's three newcomers, timed: the tutorial, their own CSV, their own model and loop.

Each path runs as a newcomer would, from the README, each step its own process in a fresh
folder: the README's Python blocks with ``python -c`` and its shell commands with
``python -m auditml``. Times are wall-clock seconds on this machine (say its load when you
quote them).

- tutorial: ``auditml init``, then ``auditml demo`` (three digits runs, audits, the report);
- own CSV: "Your own data in the CLI" (write the CSV, train, audit), then ``auditml report``;
- own model and loop: "Audit your own Opacus loop" (CanaryAudit in a plain Opacus loop), then
  "API results in the report" (audit in Python, save) and ``auditml report`` of the save.

    python benchmarks/newcomer_paths.py
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def block_after(heading: str, language: str) -> str:
    text = README.read_text(encoding="utf-8")
    match = re.search(rf"```{language}\n(.*?)```", text[text.index(heading):], flags=re.DOTALL)
    if match is None:
        raise SystemExit(f"README has no {language} block after {heading!r}")
    return match.group(1)


def timed(command: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    subprocess.run(command, cwd=cwd, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def auditml(*args: str) -> list[str]:
    return [sys.executable, "-m", "auditml", *args]


def shell_commands(heading: str) -> list[list[str]]:
    lines = [line for line in block_after(heading, "bash").splitlines() if line.strip()]
    return [auditml(*shlex.split(line.split("#")[0])[1:]) for line in lines]


def paths() -> dict[str, list[tuple[str, list[str]]]]:
    python = [sys.executable, "-c"]
    return {
        "tutorial": [
            ("auditml init", auditml("init", "starter.yaml")),
            ("auditml demo", auditml("demo", "--output-dir", "demo")),
        ],
        "own CSV": [
            ("write the CSV and config", [*python, block_after("### Your own data in the CLI",
                                                               "python")]),
            *[(f"auditml {command[3]}", command)
              for command in shell_commands("### Your own data in the CLI")],
            ("auditml report", auditml("report", "results/breast_cancer", "--out", "report")),
        ],
        "own model and loop": [
            ("CanaryAudit in an Opacus loop",
             [*python, block_after("### Audit your own Opacus loop", "python")]),
            ("auditml.audit + save", [*python, block_after("### API results in the report",
                                                           "python")]),
            ("auditml report", auditml("report", "results/my_model", "--out", "report")),
        ],
    }


def main() -> None:
    totals = {}
    for name, steps in paths().items():
        with tempfile.TemporaryDirectory() as scratch:
            print(name, flush=True)
            total = 0.0
            for label, command in steps:
                seconds = timed(command, Path(scratch))
                total += seconds
                print(f"  {label:<34} {seconds:6.1f}s", flush=True)
            totals[name] = total
            print(f"  {'total':<34} {total:6.1f}s", flush=True)
    print("| path | seconds |\n| --- | --- |")
    for name, total in totals.items():
        print(f"| {name} | {total:.0f} |")


if __name__ == "__main__":
    main()
