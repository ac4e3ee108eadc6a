"""Summary tables for the terminal (rich).

Every text here is data, never rich markup: the tables hold :class:`~rich.text.Text` (rich would
take "[low, high]", or a "[...]" in a run name or a setting, for a markup tag and drop it), and
the summaries are plain strings, to be printed with ``markup=False``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.table import Table
from rich.text import Text

from auditml.formatting import (
    format_auc,
    format_confidence,
    format_delta,
    format_epsilon,
    format_fpr_target,
    format_rate,
    format_rate_interval,
    gaussian_bound_words,
)
from auditml.metrics.dp.trials_epsilon import epsilon_bound_tail
from auditml.reporting.verdict import (
    CHECK_STATUS_WORDS,
    TAIL_WORDS,
    bound_cell,
    canary_verdict,
    claim_word,
    threshold_words,
)


def audit_table(results: Sequence[dict[str, Any]]) -> Table:
    """One row per attack, from the ``audit/<attack>.json`` payloads of one run."""
    run = results[0]["run"]
    if run.get("dp_enabled"):
        privacy = f" (ε={format_epsilon(run['epsilon'])}, δ={format_delta(run['delta'])})"
    else:
        privacy = " (no DP)" if run.get("dp_enabled") is False else ""
    counts = results[0]["counts"]
    table = Table(
        title=Text(f"{run['experiment_name']}{privacy}: {counts['members']} members, "
                   f"{counts['nonmembers']} non-members")
    )
    for header in ("attack", "settings", "AUC"):
        table.add_column(header, justify="right" if header == "AUC" else "left")
    fprs = list(results[0]["metrics"]["tpr_at_fpr"])
    for fpr in fprs:
        table.add_column(f"TPR@{format_fpr_target(float(fpr))}FPR", justify="right")
    table.add_column("advantage", justify="right")
    table.add_column("accuracy*", justify="right")
    table.add_column("ε lower bound†", justify="right")
    table.add_column("ε GDP estimate‡", justify="right")
    for result in results:
        metrics = result["metrics"]
        intervals = result.get("intervals") or {}
        tpr_intervals = intervals.get("tpr_at_fpr", {})
        settings = ", ".join(f"{key}={value}" for key, value in result["settings"].items())
        table.add_row(*(Text(cell) for cell in (
            result["attack"],
            settings,
            format_auc(metrics["auc"], _pair(intervals.get("auc"))),
            *(format_rate_interval(metrics["tpr_at_fpr"][fpr], _pair(tpr_intervals.get(fpr)))
              for fpr in fprs),
            format_rate(metrics["advantage"]),
            format_rate(metrics["calibrated_accuracy"]["accuracy"]),
            _bound(result.get("epsilon_lower_bound", {})),
            _gdp(result.get("gdp_estimate", {})),
        )))
    table.caption = Text(
        "* balanced accuracy of a threshold chosen on the other half of the examples\n"
        "† holds with 95% confidence (Clopper-Pearson at a threshold chosen by the recorded "
        "strategy; by default the level is divided among the ROC hull's corners); "
        f"{TAIL_WORDS['member']}; {TAIL_WORDS['nonmember']} (valid too, even with an ROC curve "
        "on the diagonal)\n"
        "‡ an estimate, not a bound: assumes a Gaussian privacy curve\n"
        "[low, high]: 95% bootstrap (BCa) interval of the AUC or TPR (sampling noise)"
        + _thresholds_line(results)
    )
    return table


def _thresholds_line(results: list[dict[str, Any]]) -> str:
    """How each ε lower bound chose its threshold (one clause when all share it), from the
    strategy recorded beside it; empty when no record says (written before 2026-12)."""
    chosen = {result["attack"]: threshold_words(result.get("epsilon_lower_bound") or {})
              for result in results}
    said = {attack: words for attack, words in chosen.items() if words}
    if not said:
        return ""
    if len(set(said.values())) == 1 and len(said) == len(chosen):
        return f"\n† threshold of every ε lower bound: {next(iter(said.values()))}"
    return "\n† threshold of each ε lower bound: " + "; ".join(
        f"{attack}: {words or 'not recorded'}" for attack, words in chosen.items())


def _bound(bound: dict[str, Any]) -> str:
    """The attack's ε lower bound with the tail it comes from."""
    epsilon = bound.get("epsilon")
    if not isinstance(epsilon, int | float):
        return "—"
    tail = epsilon_bound_tail(bound) if epsilon > 0 else None
    return bound_cell(float(epsilon), tail, violation=False)


def _pair(value: Any) -> tuple[float, float] | None:
    """An interval ``[low, high]`` as recorded, or None when absent (older audits)."""
    if isinstance(value, list | tuple) and len(value) == 2:
        return float(value[0]), float(value[1])
    return None


def _number(value: Any) -> str:
    return f"{value:.2f}" if isinstance(value, int | float) else "—"


def _gdp(estimate: dict[str, Any]) -> str:
    """The GDP ε estimate with the interval its AUC's implies, when recorded."""
    interval = _pair(estimate.get("interval"))
    shown = _number(estimate.get("epsilon"))
    return shown if interval is None else f"{shown} [{interval[0]:.2f}, {interval[1]:.2f}]"


def canary_summary(result: dict[str, Any]) -> str:
    """A one-run canary audit in a few lines (``audit/canaries/<name>.json``); plain text."""
    best = result["by_score"][result["best_score"]]
    claimed = result["run"].get("epsilon")
    threat_model = str(result.get("threat_model", "black_box")).replace("_", " ")
    lines = [
        f"{result['attack']} (one run, threat model: {threat_model}, {result['canaries']} "
        f"canaries, {result['included']} trained on): ε lower bound "
        f"{result['epsilon_lower_bound']:.2f} at {format_confidence(result['confidence'])} "
        "confidence, "
        f"δ={result['delta']:g} (score: {result['best_score']}; "
        f"{best['correct']} of {best['guesses']} guesses correct)",
        f"  the most these canaries could show: ε={result['max_epsilon']:.2f}",
    ]
    test = result.get("claim_test")
    if test:
        lines.append(
            f"  the accountant's claimed privacy curve: "
            f"{'REJECTED' if test['violation'] else 'not rejected'} (p={test['p_value']:.2g}, "
            f"{format_confidence(test['confidence'])} confidence{_counts(test)})"
        )
        if test.get("family_epsilon_lower_bound") is not None:
            lines.append(
                f"  ε lower bound {test['family_epsilon_lower_bound']:.2f} if the run's privacy "
                f"curve is that of {test['family']} (an assumption: a bound within that family)"
            )
    if result.get("gaussian_bound"):
        lines.append(f"  {gaussian_bound_words(result['gaussian_bound'])}, not in the verdict")
    lines.extend(_mechanism_lines(result.get("mechanism_check")))
    checks = result.get("assumptions") or []
    lines.extend(_assumption_lines(checks))
    lines.extend(_secret_lines(result.get("secrets")))
    dp_enabled = result["run"].get("dp_enabled") is True
    repeats = (result.get("secrets") or {}).get("repeats", 1)
    if dp_enabled and claimed is not None and repeats > 1:
        lines.append(f"  accountant's ε={claimed:.2f}: not compared (each secret was trained on "
                     f"{repeats} times; DP-SGD protects it only as a group of rows)")
    elif dp_enabled and claimed is not None:
        violated = canary_verdict(
            result.get("violation"), dp_enabled=dp_enabled, claimed_epsilon=claimed,
            epsilon_lower_bound=result["epsilon_lower_bound"],
        )
        failed = [check["check"] for check in checks if check["status"] == "failed"]
        why = f" — the claim does not apply ({', '.join(failed)})" if failed and violated else ""
        unchecked = [check["check"] for check in checks if check["status"] == "not_checked"]
        lines.append(f"  accountant's ε={claimed:.2f}: "
                     f"{claim_word(violated=violated, unchecked=unchecked)}{why}")
    return "\n".join(lines)


def _secret_lines(secrets: dict[str, Any] | None) -> list[str]:
    """A language model's secret canaries: exposure and extraction, trained on and not."""
    if not secrets:
        return []
    ranked = (f"exact, every one of the {secrets['candidates']} possible secrets ranked"
              if secrets.get("enumerated") else
              f"from {secrets['candidates']} sampled candidates, resolved up to "
              f"{secrets['exposure_cap']:.1f} bits")
    lines = [f"  secrets ({secrets['design']}, {secrets['secret_length']} tokens, "
             f"{secrets['space_bits']:.1f} bits; exposure {ranked}):"]
    for label, key in (("trained on", "included"), ("not trained on", "excluded")):
        group = secrets[key]
        if not group["canaries"]:
            continue
        low, high = group["extraction_interval"]
        lines.append(
            f"    {label}: {group['canaries']}, mean exposure {group['mean_exposure']:.1f} bits "
            f"(max {group['max_exposure']:.1f}), extracted {group['extracted']} "
            f"({group['extraction_rate']:.0%} [{low:.0%}, {high:.0%}])"
        )
    return lines


def _assumption_lines(checks: list[dict[str, Any]]) -> list[str]:
    """Each assumption of the accountant that did not simply pass, one line each, after a count;
    the passed ones by name."""
    if not checks:
        return []
    passed = [check["check"] for check in checks if check["status"] == "passed"]
    def count(status: str) -> int:
        return sum(check["status"] == status for check in checks)

    warnings = count("warning")
    counts = (f"{count('passed')} passed, {count('failed')} FAILED, {warnings} "
              f"warning{'' if warnings == 1 else 's'}, {count('not_checked')} not checked")
    lines = [f"  the accountant's assumptions ({counts})"
             + (f"; passed: {', '.join(passed)}" if passed else "")]
    for check in checks:
        if check["status"] == "passed":
            continue
        status = CHECK_STATUS_WORDS[check["status"]]
        lines.append(f"    {status} {check['check']}: {check['detail']}")
    return lines


def _mechanism_lines(check: dict[str, Any] | None) -> list[str]:
    """The all-iterates mechanism check: what the run really did against what was accounted."""
    if not check:
        return []
    noise, rate = check["noise"], check.get("sample_rate")
    lines = [
        f"  mechanism check ({format_confidence(check['confidence'])} confidence): noise "
        "multiplier ≤ "
        f"{noise['upper']:.3f} (estimate {noise['estimate']:.3f} from {noise['observations']} "
        f"observations; the accountant assumed {noise['claimed']:.3f})"
        + ("" if rate is None else
           f"; sampling rate ≥ {rate['lower']:.4g} (estimate {rate['estimate']:.4g} from "
           f"{rate['batches']} batches; the accountant assumed {rate['claimed']:.4g})")
        + _sensitivity_words(check.get("sensitivity"))
        + f": {'VIOLATION' if check['violation'] else 'consistent'}",
        f"  ε lower bound {check['family_epsilon_lower_bound']:.2f} if the run is "
        f"{check['family']} (an assumption: a bound within that family)",
    ]
    return lines


def _sensitivity_words(sensitivity: dict[str, Any] | None) -> str:
    """"; a sampled canary moves the sum by ≥ 0.94 C (estimate 1.01, 2055 sampled pairs)"."""
    if not sensitivity:
        return ""
    if sensitivity.get("probe"):
        return (f"; the clipping probe moves the sum by ≥ {sensitivity['lower']:.3g} × the "
                f"clipping norm (estimate {sensitivity['estimate']:.3g} from "
                f"{sensitivity['sampled']} probed steps; per-example clipping allows 1, "
                "clipping the summed gradient allows 2)")
    where = ("" if sensitivity.get("tensor") is None else
             f", trainable tensor {sensitivity['tensor']} of {sensitivity['tensors']}")
    return (f"; a sampled canary moves the sum by ≥ {sensitivity['lower']:.3g} × the clipping "
            f"norm (estimate {sensitivity['estimate']:.3g} from {sensitivity['sampled']} "
            f"sampled pairs{where}; clipping allows 1)")


def _counts(test: dict[str, Any]) -> str:
    """"; 172 of 200 guesses correct, the claim allows 171" when the record has the counts."""
    if not all(key in test for key in ("correct", "guesses", "allowed_correct")):
        return ""  # written by an older auditml
    return (f"; {test['correct']} of {test['guesses']} guesses correct, the claim allows "
            f"{test['allowed_correct']}")


def attribute_table(result: dict[str, Any]) -> Table:
    """An attribute-inference audit (``audit/attribute_inference.json``) as one table."""
    level = f"{format_confidence(result['confidence'])}"
    table = Table(
        title=Text(f"attribute_inference of {result['attribute']!r} "
                   f"({len(result['categories'])} categories; {result['auxiliary_records']} "
                   "auxiliary records; estimates, not bounds)")
    )
    for header in ("attack", f"members: accuracy [{level} CI]", "AUC", "non-members: accuracy",
                   "advantage over imputation (members)", "members − non-members"):
        table.add_column(Text(header), justify="left" if header == "attack" else "right")
    for name, found in result["attacks"].items():
        members, advantage = found["members"], found.get("advantage_members")
        low, high = members["accuracy_interval"]
        gap = found["member_gap"]
        table.add_row(*(Text(cell) for cell in (
            name + (" (baseline)" if name == result["baseline"] else ""),
            f"{members['accuracy']:.1%} [{low:.1%}, {high:.1%}]",
            _number(members.get("auc")),
            f"{found['nonmembers']['accuracy']:.1%}",
            "—" if advantage is None else (
                f"{advantage['advantage']:+.1%} [{advantage['interval'][0]:+.1%}, "
                f"{advantage['interval'][1]:+.1%}] p={advantage['p_value']:.2g}"
            ),
            f"{gap['gap']:+.1%} p={gap['p_value']:.2g}",
        )))
    beyond = "YES" if result["beyond_imputation"] else "no"
    specific = "YES" if result["member_specific"] else "no"
    table.caption = Text(
        f"an attack beats imputation on members: {beyond}; the members' attribute is inferred "
        f"more often than non-members': {specific} (each at {level}, Bonferroni over the attacks)"
    )
    return table


def inference_summary(result: dict[str, Any]) -> Table | str:
    """An audit beyond membership, by its ``attack`` name (a string is plain text)."""
    if result["attack"] == "attribute_inference":
        return attribute_table(result)
    return inversion_summary(result)


def inversion_summary(result: dict[str, Any]) -> str:
    """A model-inversion audit (``audit/model_inversion.json``) in a few lines; plain text."""
    classes = result["classes"]
    settings = result["settings"]
    lines = [
        f"model_inversion ({settings['method']}, estimates, not bounds): {len(classes)} classes "
        "reconstructed (gallery: model_inversion_gallery.png)",
        f"  an independent classifier recognises {result['evaluation_accuracy']:.0%} of them "
        f"(its accuracy on held-out real data: {result['evaluator_held_out_accuracy']:.0%})",
        f"  nearer a member than a non-member of its class: {result['member_closer']} of "
        f"{len(classes) - result['ties']} (sign test p={result['p_value']:.2g}; "
        "a small p: they depend on which examples were trained on, not only on the class; "
        "not necessarily a copy of one member)",
        *(f"  note: {note}" for note in result["notes"]),
    ]
    return "\n".join(lines)
