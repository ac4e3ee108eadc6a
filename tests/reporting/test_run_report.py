"""write_run_report / `auditml report`: one audited run as one self-contained HTML page."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from auditml.cli import main
from auditml.errors import RunDirectoryError
from auditml.reporting import ReportError, write_run_report
from auditml.reporting.verdict import VerdictKind
from auditml.run_directory import RunDirectory

MakeRun = Callable[..., Path]
AddAudit = Callable[..., None]


@pytest.fixture
def audited(tmp_path: Path, make_run: MakeRun, add_audit: AddAudit) -> Path:
    run = make_run(tmp_path / "results", "baseline", val_acc=0.98, shift=1.0)
    add_audit(run, "mia_lira", 2.5, gallery=True)
    return run


def test_the_page_leads_with_the_verdict_and_says_what_each_number_is(
    audited: Path, tmp_path: Path
) -> None:
    report = write_run_report(audited, tmp_path / "report")
    page = report.report_html.read_text(encoding="utf-8")
    assert report.verdict.kind is VerdictKind.LEAKS
    # The summary comes before every table and figure.
    assert page.index('class="summary') < page.index("<table") < page.index("<svg")
    assert report.verdict.headline in page
    assert "strongest attack mia_lira" in report.verdict.headline
    assert "a bound with 95% confidence" in page
    assert "an estimate, not a bound" in page
    assert page.count("<abbr title=") >= 10
    assert "<h2>Glossary</h2>" in page


def test_the_page_is_one_self_contained_file(audited: Path, tmp_path: Path) -> None:
    page = write_run_report(audited, tmp_path / "report").report_html.read_text(encoding="utf-8")
    assert "<script" not in page and "<link" not in page and "@import" not in page
    assert [source[:22] for source in re.findall(r'src="([^"]*)"', page)] == [
        "data:image/png;base64,"
    ]
    assert all(target.startswith("#") for target in re.findall(r'href="([^"]*)"', page))


def test_the_gallery_is_the_strongest_attacks_exposed_png(audited: Path, tmp_path: Path) -> None:
    page = write_run_report(audited, tmp_path / "report").report_html.read_text(encoding="utf-8")
    [source] = re.findall(r'src="data:image/png;base64,([^"]*)"', page)
    assert base64.b64decode(source) == RunDirectory(audited).gallery_path("mia_lira").read_bytes()
    assert "Most exposed training examples (mia_lira)" in page


def test_every_attack_is_a_row_and_the_roc_overlay_has_each(
    audited: Path, tmp_path: Path
) -> None:
    report = write_run_report(audited, tmp_path / "report")
    page = report.report_html.read_text(encoding="utf-8")
    assert [attack.name for attack in report.view.attacks] == ["mia_lira", "mia_threshold"]
    for attack in report.view.attacks:
        assert f'data-label="Attack">{attack.name}</td>' in page
        assert f'data-label="AUC">{attack.auc:.3f}</td>' in page
    assert page.count("<svg") == 1


def test_a_canary_audit_is_shown_and_judged_against_the_claim(
    tmp_path: Path, make_run: MakeRun, add_canary_audit: Callable[..., None]
) -> None:
    run = make_run(tmp_path / "results", "eps1", dp=True, epsilon=1.0, target_epsilon=1.0,
                   delta=1e-5, shift=0.1)
    add_canary_audit(run, 1.4)
    report = write_run_report(run, tmp_path / "report")
    page = report.report_html.read_text(encoding="utf-8")
    assert report.verdict.kind is VerdictKind.VIOLATION
    assert "dp_audit (black box canaries)" in report.verdict.headline
    assert "One-run canary audit (dp_audit, threat model: black box)" in page
    assert "ε ≥ 1.40 with 95% confidence" in page
    assert "VIOLATION: the audit contradicts the accountant" in page


def test_secrets_trained_on_several_times_are_not_judged_against_the_claim(
    tmp_path: Path, make_run: MakeRun, add_canary_audit: Callable[..., None]
) -> None:
    # DP-SGD protects a secret seen 3 times as a group of 3 rows: its bound (up to about 3 ε on
    # a correct run) says nothing against ε, so neither the verdict nor the headline uses it.
    run = make_run(tmp_path / "results", "lm", dp=True, epsilon=8.0, target_epsilon=8.0,
                   delta=1e-5, shift=0.1)
    add_canary_audit(run, 9.0, name="secret_canaries", secret_repeats=3)
    report = write_run_report(run, tmp_path / "report")
    assert report.verdict.kind is not VerdictKind.VIOLATION
    assert "secret_canaries" not in report.verdict.headline
    assert "Not compared with the accountant" in report.report_html.read_text(encoding="utf-8")
    # Trained on once, the same bound is judged: a violation.
    add_canary_audit(run, 9.0, name="secret_canaries", secret_repeats=1)
    report = write_run_report(run, tmp_path / "report")
    assert report.verdict.kind is VerdictKind.VIOLATION
    assert "secret_canaries" in report.verdict.headline


@pytest.mark.parametrize(("edit", "expected"), [
    (lambda r: r["metrics"].update(auc=0.95), "its AUC is 0.95, its scores give"),
    (lambda r: r["metrics"]["tpr_at_fpr"].update({"1e-2": 0.9}), "name the same FPR"),
    (lambda r: r["metrics"]["tpr_at_fpr"].update({"0.01": 0.9}), "its TPR at 0.01 FPR is 0.9"),
    (lambda r: r["epsilon_lower_bound"].update(epsilon=1e308), "its ε lower bound is 1e+308"),
    (lambda r: r["epsilon_lower_bound"].update(alpha=0.9), "`confidence` must be in"),
    (lambda r: r["gdp_lower_bound"].update(mu=3.0), "its μ-GDP lower bound is 3.0"),
    (lambda r: r["metrics"].update(members=20000), "metrics count 20000 members"),
    (lambda r: [r["metrics"].update(members=10**400), r["counts"].update(members=10**400)],
     "wrong shape"),
    (lambda r: [r["metrics"].update(members=150, nonmembers=250),
                r["counts"].update(members=150, nonmembers=250)], "the scores hold"),
])
def test_a_record_that_its_scores_contradict_is_refused(
    audited: Path, tmp_path: Path, add_audit: AddAudit,
    edit: Callable[[dict[str, Any]], object], expected: str,
) -> None:
    # A record edited by hand must not show numbers its scores do not give (the scores file is
    # tied to the record by its hash; the record's numbers are recomputed from it).
    add_audit(audited, "mia_threshold", 0.3, intervals=True)  # with its GDP bound
    path = RunDirectory(audited).attack_path("mia_threshold")
    record = json.loads(path.read_text(encoding="utf-8"))
    edit(record)
    path.write_text(json.dumps(record), encoding="utf-8")
    report = write_run_report(audited, tmp_path / "report")
    # Left out and said so, as a stale audit is; the other attack is still reported.
    assert [attack.name for attack in report.view.attacks] == ["mia_lira"]
    [skipped] = report.view.skipped
    assert skipped.name == "mia_threshold" and expected in skipped.reason
    assert "\n" not in skipped.reason and "auditml audit" in skipped.reason


def test_run_report_json_holds_the_verdict_and_numbers(audited: Path, tmp_path: Path) -> None:
    report = write_run_report(audited, tmp_path / "report")
    saved = json.loads(report.run_report_json.read_text(encoding="utf-8"))
    assert saved == report.to_json()
    assert saved["verdict"] == "leaks" and saved["strongest_attack"] == "mia_lira"
    assert [bound["source"] for bound in saved["epsilon_lower_bounds"]] == [
        "mia_lira", "mia_threshold"
    ]


def test_a_stale_audit_is_left_out_and_said_so(
    tmp_path: Path, make_run: MakeRun, add_audit: AddAudit
) -> None:
    run = RunDirectory(make_run(tmp_path / "results", "x", val_acc=0.9))
    run.write_training(run.read_training().model_copy(update={"val_acc": 0.8}))
    run.write_manifest()  # retrained: the mia_threshold audit belongs to the old model
    add_audit(run.path, "mia_lira", 1.0)
    report = write_run_report(run.path, tmp_path / "report")
    assert [attack.name for attack in report.view.attacks] == ["mia_lira"]
    [skipped] = report.view.skipped
    assert skipped.name == "mia_threshold" and "stale" in skipped.reason
    assert "left out mia_threshold" in report.report_html.read_text(encoding="utf-8")


def test_a_run_without_an_audit_names_the_command(tmp_path: Path, make_run: MakeRun) -> None:
    run = make_run(tmp_path / "results", "x", audit=False)
    with pytest.raises(RunDirectoryError, match=r"has no usable audit: run `auditml audit"):
        write_run_report(run, tmp_path / "report")
    assert not (tmp_path / "report").exists()


def test_out_dir_is_guarded_like_a_comparisons(audited: Path, tmp_path: Path) -> None:
    with pytest.raises(ReportError, match="is inside run"):
        write_run_report(audited, audited / "report")
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "thesis.txt").write_text("keep me", encoding="utf-8")
    with pytest.raises(ReportError, match="holds no earlier report"):
        write_run_report(audited, notes)
    assert (notes / "thesis.txt").read_text(encoding="utf-8") == "keep me"
    write_run_report(audited, tmp_path / "report")
    write_run_report(audited, tmp_path / "report")  # an earlier report is replaced


def test_cli_report_prints_the_verdict_and_the_page(
    audited: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["report", str(audited), "--out", str(tmp_path / "report")]) == 0
    out = capsys.readouterr().out
    assert "No DP guarantee — leaks" in out
    assert f"report: {tmp_path / 'report' / 'report.html'}" in out


def test_cli_report_of_a_missing_run_is_one_error_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["report", str(tmp_path / "nowhere"), "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: no trained run at") and err.count("\n") == 1


def test_the_mechanism_check_is_said_in_words() -> None:
    from auditml.records import MechanismCheckRecord
    from auditml.reporting.run_page import _mechanism_sentence as sentence

    def _mechanism_sentence(check: dict | None) -> str:
        return sentence(None if check is None else MechanismCheckRecord.model_validate(check))

    check = {"violation": True, "confidence": 0.99,
             "noise": {"claimed": 1.0, "estimate": 0.518, "upper": 0.521,
                       "observations": 101300, "confidence": 0.995},
             "sample_rate": {"claimed": 0.05, "estimate": 0.051, "lower": 0.0494, "batches": 100,
                             "dataset_size": 1000, "confidence": 0.995},
             "family_epsilon_lower_bound": 16.35, "family": "DP-SGD with Poisson sampling"}
    said = _mechanism_sentence(check)
    assert ("a noise multiplier of at most 0.521 (the accountant assumed 1.000) and the batches "
            "were sampled at a rate of at least 0.0494 (the accountant assumed 0.05)") in said
    assert said.endswith("its ε is at least 16.35 (a bound within that family): more than claimed.")
    assert _mechanism_sentence({**check, "violation": False}).endswith("within that family).")
    assert "batches" not in _mechanism_sentence({**check, "sample_rate": None})
    assert _mechanism_sentence(None) == ""
    escaped = {**check, "sensitivity": {"tensor": 3, "tensors": 4, "estimate": 9.25,
                                        "lower": 7.73, "sampled": 32}}
    assert ("(the accountant assumed 0.05); a sampled canary moves the sum by at least 7.73 × "
            "the clipping norm (clipping allows 1), so if") in _mechanism_sentence(escaped)
    probed = {**check, "sensitivity": {**escaped["sensitivity"], "probe": True}}
    assert "(the accountant assumed 0.05); the clipping probe moves the sum by at least 7.73" in (
        _mechanism_sentence(probed))


def test_a_broken_assumption_fails_the_claim_and_the_page_says_which(
    tmp_path: Path, shuffled_run: Path,
) -> None:
    run = shuffled_run
    report = write_run_report(run, tmp_path / "report")
    assert report.verdict.kind is VerdictKind.VIOLATION
    assert report.verdict.headline == (
        "VIOLATION — DP ε=2.00 claimed, but the claim does not apply: the training broke the "
        "accountant's assumptions (loader)")
    page = report.report_html.read_text(encoding="utf-8")
    assert "VIOLATION: the accountant&#x27;s ε=2.00 does not apply" in page or (
        "VIOLATION: the accountant's ε=2.00 does not apply" in page)
    # The checks' table: the failed row flagged, every status in words, the detail escaped.
    table = page[page.index("The accountant assumes"):]
    assert '<tr class="violation"><td data-label="Check">loader</td>' in table
    for word in ("FAILED", "passed", "warning", "not checked"):
        assert f">{word}</td>" in table
    assert "batches of 128 &lt;b&gt;" in table and "128 <b>" not in table


def test_a_record_without_assumption_checks_shows_no_table(
    tmp_path: Path, make_run: MakeRun, add_canary_audit: Callable[..., None]
) -> None:
    run = make_run(tmp_path / "results", "older", dp=True, epsilon=1.0, target_epsilon=1.0,
                   delta=1e-5, shift=0.1)
    add_canary_audit(run, 0.3, name="dp_audit_all_iterates", threat_model="all_iterates",
                     violation=False)
    report = write_run_report(run, tmp_path / "report")
    assert report.verdict.kind is VerdictKind.CONSISTENT
    assert "The accountant assumes" not in report.report_html.read_text(encoding="utf-8")


def test_the_attacks_table_says_how_each_bound_chose_its_threshold(
    audited: Path, tmp_path: Path
) -> None:
    """The glossary said 'chosen on one half' for every bound; the page now says what each
    recorded bound did (here the fixture's split halves)."""
    page = write_run_report(audited, tmp_path / "report").report_html.read_text(encoding="utf-8")
    assert ("ε lower bound: threshold chosen on one half of the examples, bound on the other."
            in page)


def test_the_page_counts_the_members_singled_out_and_a_tie_at_the_top(
    tmp_path: Path, make_run: MakeRun, add_audit: AddAudit
) -> None:
    # 1,000 members and 1,000 non-members; 30 share the top score, 2 of them non-members (as
    # RMIA's fraction gave with γ = 1): no threshold reaches 0.1% FPR with any member.
    rng = np.random.default_rng(0)
    is_member = np.arange(2000) < 1000
    scores = rng.uniform(0.0, 0.9, 2000) + 0.05 * is_member
    scores[np.r_[0:28, 1000:1002]] = 1.0
    run = make_run(tmp_path / "results", "tied", val_acc=0.9, shift=1.0)
    add_audit(run, "mia_rmia", 1.0, scores=(scores, is_member), intervals=True)
    report = write_run_report(run, tmp_path / "report")
    page = report.report_html.read_text(encoding="utf-8")
    assert "Members singled out at 0.1% FPR" in page
    assert "mia_rmia: 0 of 1000 members [0, 4], with 0 of 1000 non-members" in page
    assert "30 examples share the top score, 2 of them non-members" in page
    saved = json.loads(report.run_report_json.read_text(encoding="utf-8"))
    [attack] = [entry for entry in saved["attacks"] if entry["attack"] == "mia_rmia"]
    assert (attack["tied_at_top"], attack["tied_at_top_nonmembers"]) == (30, 2)
    assert attack["singled_out"]["members_found"] == 0
    assert attack["singled_out"]["tpr_interval"][1] == pytest.approx(1 - 0.025 ** (1 / 1000))
