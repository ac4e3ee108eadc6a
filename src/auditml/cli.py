"""The ``auditml`` command: parse, call the library, print; all of it is reachable from Python.

Bad input of any kind ends in one line on stderr (``error: ...``) and exit code 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console

from auditml import __version__
from auditml.errors import AuditMLError

if TYPE_CHECKING:
    from auditml.config import AuditMLConfig

EXIT_OK, EXIT_BAD_INPUT, EXIT_INTERRUPTED = 0, 2, 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="auditml",
        description="Train PyTorch models with and without DP-SGD, attack them, report leakage.",
    )
    parser.add_argument("--version", action="version", version=f"auditml {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    train = commands.add_parser("train", help="train the configured model; write its run dir")
    train.add_argument("--config", required=True, help="YAML experiment config")

    audit = commands.add_parser("audit", help="attack a trained run; write <run>/audit/")
    audit.add_argument("--config", required=True, help="the YAML config the run was trained with")
    audit.add_argument(
        "--attack", nargs="+", default=None, metavar="NAME", help=_attack_help(),
    )
    audit.add_argument(
        "--metric", default=None,
        help="mia_threshold's score: loss (default), confidence, entropy, modified_entropy, "
        "logit_confidence",
    )

    audit_dp = commands.add_parser(
        "audit-dp", help="many-runs audit: train the DP recipe K times, one canary each, and "
        "test the accountant's claim",
    )
    audit_dp.add_argument("--config", required=True, help="a YAML config with DP enabled")
    audit_dp.add_argument("--runs", type=int, required=True, help="how many runs (K)")
    audit_dp.add_argument("--workers", type=int, default=None,
                          help="processes (default: the config's audit.workers, else cores)")
    audit_dp.add_argument(
        "--out", default=None,
        help="result file (default: <output_dir>/<experiment_name>_audit_dp.json)",
    )

    compare = commands.add_parser("compare", help="compare audited runs in one report")
    compare.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="trained, audited runs")
    compare.add_argument("--out", required=True, help="directory for the report")
    compare.add_argument("--attack", default=None, help="which audit to compare (default "
                         "mia_threshold; mia_text_min_k_pp when every run is a language model)")
    compare.add_argument("--dp-audit", nargs="+", default=[], metavar="FILE",
                         help="auditml audit-dp results (or run directories with white-box "
                         "canary audits, e.g. a saved CanaryAuditResult) to show beside the runs")

    report = commands.add_parser(
        "report", help="one self-contained HTML report of an audited run"
    )
    report.add_argument("run_dir", metavar="RUN_DIR", help="a trained, audited run")
    report.add_argument("--out", required=True, help="directory for the report")

    sweep = commands.add_parser(
        "sweep", help="train and audit one run per ε; table and figures of accuracy and leakage"
    )
    sweep.add_argument("--config", default=None,
                       help="YAML experiment config (default: a small digits experiment)")
    sweep.add_argument("--epsilons", nargs="*", default=None, metavar="EPS",
                       help="target ε values, inf = no DP (default: 0.5 1 2 4 8 inf)")
    sweep.add_argument("--attack", nargs="+", default=None, metavar="NAME",
                       help="membership attacks (default: the config's audit.attacks if set, "
                       "else mia_lira if it sets audit.reference_models, else mia_threshold)")
    sweep.add_argument("--out", default=None,
                       help="sweep directory (default: <output_dir>/<experiment_name>_sweep)")
    sweep.add_argument("--workers", type=int, default=None,
                       help="runs trained at once (default: audit.workers, else cores)")
    sweep.add_argument("--tune", nargs="+", default=None, metavar="NAME=V1,V2",
                       help="also run Papernot & Steinke's random-stopping tuner over these "
                       "values at each finite ε (learning_rate, max_grad_norm, weight_decay, "
                       "momentum) and report the ε of the whole tuning")
    sweep.add_argument("--tune-stopping", default=None, metavar="RULE",
                       help="number of trials: geometric:GAMMA (default geometric:0.2), "
                       "logarithmic:GAMMA or negative_binomial:ETA:GAMMA")

    show = commands.add_parser("show-config", help="print the config with every default filled in")
    show.add_argument("--config", required=True, help="YAML experiment config")

    init = commands.add_parser(
        "init", help="write a starter config: every setting at its default, with what it means"
    )
    init.add_argument("path", nargs="?", default="auditml.yaml", metavar="PATH",
                      help="the new file (default: auditml.yaml); an existing file is refused")

    modes = commands.add_parser(
        "mode-cache", help="show (or --clear) which per-example clipping mode "
        "grad_sample_mode: auto measured fastest on this machine",
    )
    modes.add_argument("--clear", action="store_true",
                       help="remove the cache: the next DP run measures the modes again")

    demo = commands.add_parser(
        "demo", help="the DP tutorial end to end on the embedded digits data (about 2 minutes)"
    )
    demo.add_argument("--output-dir", default="results/demo", help="where runs and report go")
    return parser


def _attack_help() -> str:
    """Every audit ``--attack`` takes, by kind, read from the registries (no torch import)."""
    from auditml.attacks import ATTACKS
    from auditml.audit.canaries import CANARY_AUDITS
    from auditml.audit.inference import INFERENCE_AUDITS

    return (
        "what to run, or all (default: the config's audit.attacks). Membership attacks: "
        f"{', '.join(ATTACKS.available())}; canary audits (runs trained with "
        f"training.canaries): {', '.join(CANARY_AUDITS.available())}; beyond membership: "
        f"{', '.join(INFERENCE_AUDITS.available())}"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    for before, token in zip(["", *argv], argv, strict=False):
        if isinstance(token, str) and "\0" in token:
            # No path or name holds one; the OS would fail later with a bare ValueError.
            where = f"{before} " if before.startswith("-") else ""
            parser.error(f"argument {where}{token!r} holds a NUL character; remove it")
    args = parser.parse_args(argv)
    # soft_wrap: log lines and paths stay whole when the output is a file or a narrow terminal.
    console = Console(soft_wrap=True)
    if not console.is_terminal:
        console.width = 160  # tables in log files need not fit an 80-column default
    # emoji=False: a message quoting model.arch='a:b:c' must not print ':b:' as an emoji.
    errors = Console(stderr=True, soft_wrap=True, emoji=False)
    try:
        return _dispatch(args, console, errors)
    except AuditMLError as error:
        from auditml.config_errors import one_line

        # Every message is one line by construction; this is the backstop for one that quotes a
        # path or a library's reason holding a newline, or grows without bound.
        errors.print(f"error: {one_line(str(error), limit=2000)}", highlight=False, markup=False)
        return EXIT_BAD_INPUT
    except OSError as error:
        # The destinations are checked before the work; this is the backstop for what happens
        # during it (a disk that fills up, a mount that goes read-only).
        where = f" {error.filename}" if error.filename else ""
        errors.print(f"error: cannot read or write{where}: {error.strerror or error}; check the "
                     "path, its permissions and the free space", highlight=False, markup=False)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        errors.print("interrupted; nothing was written for the unfinished step", highlight=False)
        return EXIT_INTERRUPTED


def _load(path: str, errors: Console) -> AuditMLConfig:
    from auditml.audit.plan import check_audit_config
    from auditml.config import load_config
    from auditml.models.user import import_factory, is_reference

    config = load_config(path)
    arch = config.model.arch
    if arch is not None and is_reference(arch):
        # The user's own factory, imported now (from here or beside the config) so that a
        # missing module is one line before any work; building the model finds it imported.
        try:
            import_factory(arch, Path(path).parent)
        except AuditMLError as error:
            raise type(error)(f"{path}: {error}") from None
    # The audit: section is checked up front for every command, so a typo in it is reported
    # by `train` too, not only hours later by `audit`.
    try:
        check_audit_config(config.audit)
    except AuditMLError as error:
        raise type(error)(f"{path}: {error}") from None
    for warning in config.warnings():
        errors.print(f"warning: {warning}", highlight=False, markup=False)
    return config


def _dispatch(args: argparse.Namespace, console: Console, errors: Console) -> int:
    if args.command == "show-config":
        from auditml.audit.plan import resolved_config

        config = _load(args.config, errors)
        console.print(resolved_config(config).to_yaml().rstrip(), highlight=False, markup=False)
        return EXIT_OK

    if args.command == "mode-cache":
        from auditml.training.mode_cache_command import show_mode_cache

        return show_mode_cache(console, clear=args.clear)

    if args.command == "init":
        from auditml.starter_config import write_starter_config

        path = write_starter_config(args.path)
        console.print(f"wrote {path}; edit it, then: auditml train --config {path}",
                      highlight=False, markup=False)
        return EXIT_OK

    if args.command == "train":
        from auditml.training import train

        config = _load(args.config, errors)
        result = train(config, console=console)
        console.print(
            f"val_acc={result.metrics['val_acc']:.1%}  train_acc={result.metrics['train_acc']:.1%}"
            f"  ({result.metrics['wall_time_s']:.1f}s) -> {result.run_dir}",
            highlight=False, markup=False,
        )
        return EXIT_OK

    if args.command == "audit":
        from auditml.audit.runner import run_audit
        from auditml.figures.audit_figures import draw_figure
        from auditml.reporting.console import audit_table, canary_summary, inference_summary

        config = _load(args.config, errors)
        settings = {"mia_threshold": {"metric": args.metric}} if args.metric is not None else {}
        report = run_audit(
            config.run_dir, args.attack, settings, given_config=config,
            config_hint=args.config, console=console, draw=draw_figure,
        )
        if report.outcomes:
            console.print(audit_table([outcome.result for outcome in report.outcomes]))
        for outcome in report.outcomes:
            fitted = outcome.record.fitted
            if "variance_reason" in fitted:  # mia_lira: which variance, and why
                console.print(f"{outcome.attack}: variance {fitted['variance']} "
                              f"({fitted['variance_reason']})", highlight=False, markup=False)
            if "mode_reason" in fitted:  # mia_rmia: online or offline, and why
                console.print(f"{outcome.attack}: mode {fitted['mode']} "
                              f"({fitted['mode_reason']})", highlight=False, markup=False)
        for record in report.canary_audits.values():
            console.print(canary_summary(record.model_dump(mode="json")), highlight=False,
                          markup=False)
        for record in report.inference_audits.values():
            console.print(inference_summary(record.model_dump(mode="json")), highlight=False,
                          markup=False)
        console.print(f"results: {config.run_dir / 'audit'}", highlight=False, markup=False)
        return EXIT_OK

    if args.command == "audit-dp":
        from auditml.audit.many_runs import check_runs_and_workers, many_runs_audit
        from auditml.formatting import format_confidence
        from auditml.metrics.dp.trials_epsilon import epsilon_bound_tail
        from auditml.reporting.verdict import tail_words
        from auditml.run_directory import check_many_runs_destination, write_many_runs
        from auditml.training.executors import default_workers

        config = _load(args.config, errors)
        out = Path(args.out) if args.out else (
            config.output_dir / f"{config.experiment_name}_audit_dp.json"
        )
        workers = (args.workers if args.workers is not None
                   else config.audit.workers or default_workers())
        check_runs_and_workers(args.runs, workers)
        check_many_runs_destination(out)
        record = many_runs_audit(config, args.runs, workers=workers, console=console)
        write_many_runs(out, record)
        test = record.claim_test
        bound = record.epsilon_lower_bound
        tail = tail_words(epsilon_bound_tail(bound.as_written()) if bound.epsilon > 0 else None)
        console.print(
            f"audit-dp ({record.runs} runs, {record.included} with the canary): ε lower bound "
            f"{bound.epsilon:.2f} at δ={record.delta:g} "
            f"({format_confidence(1 - bound.alpha)} confidence{', ' + tail if tail else ''}); "
            f"claimed curve (ε="
            f"{record.claimed_epsilon:.2f}) {'REJECTED' if test.violation else 'not rejected'}"
            f" ({format_confidence(test.confidence)} confidence)"
            f"; {'VIOLATION' if record.violation else 'consistent'}",
            highlight=False,
        )
        console.print(f"result: {out} (show it beside runs: auditml compare RUN_DIR ... --out "
                      f"DIR --dp-audit {out})", highlight=False, markup=False)
        return EXIT_OK

    if args.command == "sweep":
        from rich.table import Table

        from auditml.sweep import DEFAULT_EPSILONS, default_config, run_sweep
        from auditml.sweep.report import headers, table_rows

        config = _load(args.config, errors) if args.config else default_config()
        epsilons = DEFAULT_EPSILONS if args.epsilons is None else args.epsilons
        result = run_sweep(config, epsilons, args.attack, out=args.out, workers=args.workers,
                           tune=args.tune, tune_stopping=args.tune_stopping, console=console)
        table = Table(*headers(result.record))
        for cells in table_rows(result.record):
            table.add_row(*cells)
        console.print(table)
        for line in (result.record.tuning or {}).get("summary", []):
            console.print(line, highlight=False, markup=False)
        console.print(f"report: {result.directory.table_path('md')}", highlight=False,
                      markup=False)
        return EXIT_OK

    if args.command == "compare":
        from auditml.reporting import compare_runs, comparison_table
        from auditml.reporting.many_runs import many_runs_table

        comparison = compare_runs(args.run_dirs, args.out, attack=args.attack,
                                  dp_audits=args.dp_audit)
        console.print(comparison_table(comparison))
        if comparison.dp_audits:
            console.print(many_runs_table(comparison.dp_audits))
        console.print(f"report: {Path(args.out) / 'report.html'}", highlight=False,
                      markup=False)
        return EXIT_OK

    if args.command == "report":
        from auditml.reporting import write_run_report

        run_report = write_run_report(args.run_dir, args.out)
        console.print(run_report.verdict.headline, highlight=False, markup=False)
        console.print(f"report: {run_report.report_html}", highlight=False, markup=False)
        return EXIT_OK

    if args.command == "demo":
        from auditml.demo import run_demo

        run_demo(Path(args.output_dir), console=console)
        return EXIT_OK

    raise AssertionError(f"unhandled command {args.command}")  # argparse rejects others


if __name__ == "__main__":
    sys.exit(main())
