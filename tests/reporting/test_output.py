"""A report directory holds the user's files safely: ``report`` and ``compare`` replace only what
an earlier report of theirs wrote, verified by its SHA-256 (:mod:`auditml.reporting.output`).

The hostile cases of issue 25: a folder that merely holds a file *named* like a report's marker
was wiped, and files the user added to a report directory were deleted on a rerun.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from auditml.cli import main
from auditml.reporting import ReportError, compare_runs, write_run_report
from auditml.reporting.output import OWNERSHIP_FILE, report_directory


@pytest.fixture
def audited(tmp_path: Path, make_run: Callable[..., Path],
            add_audit: Callable[..., None]) -> Path:
    run = make_run(tmp_path / "results", "baseline", val_acc=0.98, shift=1.0)
    add_audit(run, "mia_threshold", 2.5)
    return run


def _contents(directory: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in directory.iterdir() if path.is_file()}


def test_a_folder_holding_a_file_named_like_the_marker_is_refused_and_kept(
    audited: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    user = tmp_path / "U"
    user.mkdir()
    (user / "thesis.tex").write_text("thesis", encoding="utf-8")
    (user / "run_report.json").write_text("x", encoding="utf-8")
    before = _contents(user)
    assert main(["report", str(audited), "--out", str(user)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: out_dir") and "holds no earlier report" in err
    assert err.count("\n") == 1 and _contents(user) == before
    (user / "comparison.json").write_text("{}", encoding="utf-8")  # JSON, but not alone
    with pytest.raises(ReportError, match="holds no earlier report"):
        compare_runs([audited], user)
    assert (user / "thesis.tex").read_text(encoding="utf-8") == "thesis"
    # Alone with a report.html, a JSON marker is still the user's (it was taken for a report
    # written before the list, and both files overwritten).
    (user / "thesis.tex").unlink()
    (user / "run_report.json").unlink()
    (user / "report.html").write_text("<p>my own page</p>", encoding="utf-8")
    before = _contents(user)
    with pytest.raises(ReportError, match="holds no earlier report"):
        compare_runs([audited], user)
    assert _contents(user) == before


def test_files_the_user_adds_to_a_report_survive_the_next_one(audited: Path,
                                                               tmp_path: Path) -> None:
    out = tmp_path / "report"
    write_run_report(audited, out)
    (out / "thesis.tex").write_text("thesis", encoding="utf-8")
    (out / "figures").mkdir()
    (out / "figures" / "mine.png").write_bytes(b"png")
    write_run_report(audited, out)
    assert (out / "thesis.tex").read_text(encoding="utf-8") == "thesis"
    assert (out / "figures" / "mine.png").read_bytes() == b"png"
    listed = json.loads((out / OWNERSHIP_FILE).read_text(encoding="utf-8"))
    assert listed["kind"] == "run_report"
    assert sorted(listed["files"]) == ["report.html", "run_report.json"]
    assert all(len(digests) == 1 for digests in listed["files"].values())


def test_a_report_file_the_user_changed_stops_the_next_report(audited: Path,
                                                              tmp_path: Path) -> None:
    out = tmp_path / "report"
    write_run_report(audited, out)
    (out / "report.html").write_text("my annotated copy", encoding="utf-8")
    with pytest.raises(ReportError, match=r"report\.html changed since auditml wrote it"):
        write_run_report(audited, out)
    assert (out / "report.html").read_text(encoding="utf-8") == "my annotated copy"


def test_a_report_of_another_kind_or_an_unreadable_list_is_refused(
    audited: Path, tmp_path: Path,
) -> None:
    out = tmp_path / "report"
    write_run_report(audited, out)
    with pytest.raises(ReportError, match="holds a run report, not a comparison"):
        compare_runs([audited], out)
    (out / OWNERSHIP_FILE).write_text("[1, 2", encoding="utf-8")
    with pytest.raises(ReportError, match="is unreadable"):
        write_run_report(audited, out)


def test_without_the_list_no_folder_is_taken_for_a_report(audited: Path,
                                                          tmp_path: Path) -> None:
    """A folder of report-named files whose marker is any JSON object was taken for a report
    written before the list and overwritten (QA: a user's comparison.json and report.html):
    without the list nothing is auditml's."""
    out = tmp_path / "report"
    write_run_report(audited, out)
    (out / OWNERSHIP_FILE).unlink()  # an auditml report without its list, or a user's look-alike
    before = _contents(out)
    with pytest.raises(ReportError, match=r"holds no earlier report .* no \.auditml-report"):
        write_run_report(audited, out)
    assert _contents(out) == before


def test_a_user_file_with_a_new_report_files_name_stops_the_install(tmp_path: Path) -> None:
    out = tmp_path / "report"
    with report_directory(out, kind="comparison") as staging:
        (staging / "report.html").write_text("first", encoding="utf-8")
    (out / "extra.png").write_bytes(b"mine")
    with pytest.raises(ReportError, match=r"extra\.png is not auditml's"), \
            report_directory(out, kind="comparison") as staging:
        (staging / "report.html").write_text("second", encoding="utf-8")
        (staging / "extra.png").write_bytes(b"auditml's")
    assert (out / "extra.png").read_bytes() == b"mine"
    assert (out / "report.html").read_text(encoding="utf-8") == "first"
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".staging")]


def test_a_file_an_earlier_report_wrote_and_this_one_does_not_is_removed(
    tmp_path: Path,
) -> None:
    out = tmp_path / "report"
    with report_directory(out, kind="comparison") as staging:
        (staging / "old.png").write_bytes(b"old")
        (staging / "report.html").write_text("first", encoding="utf-8")
    with report_directory(out, kind="comparison") as staging:
        (staging / "report.html").write_text("second", encoding="utf-8")
    assert sorted(p.name for p in out.iterdir()) == [OWNERSHIP_FILE, "report.html"]


# Sweep and demo own only the files they list in a directory that holds other things too.


def test_owned_files_replace_only_their_own_and_keep_everything_else(tmp_path: Path) -> None:
    from auditml.reporting.output import install_owned_files

    shared = tmp_path / "shared"
    install_owned_files(shared, {"table.md": b"one", "sub/a.yaml": b"a"}, kind="sweep",
                        what="--out")
    (shared / "notes.txt").write_text("mine", encoding="utf-8")
    install_owned_files(shared, {"table.md": b"two", "sub/a.yaml": b"a"}, kind="sweep",
                        what="--out")
    assert (shared / "table.md").read_bytes() == b"two"
    assert (shared / "notes.txt").read_text(encoding="utf-8") == "mine"
    listed = json.loads((shared / OWNERSHIP_FILE).read_text())
    assert listed["kind"] == "sweep" and sorted(listed["files"]) == ["sub/a.yaml", "table.md"]
    assert all(len(digests) == 1 for digests in listed["files"].values())

    (shared / "table.md").write_bytes(b"edited by hand")
    with pytest.raises(ReportError, match=r"--out .*: table.md changed since auditml sweep"):
        install_owned_files(shared, {"table.md": b"three"}, kind="sweep", what="--out")
    assert (shared / "table.md").read_bytes() == b"edited by hand"
    with pytest.raises(ReportError, match=r"notes\.txt is not a file an earlier auditml sweep"):
        install_owned_files(shared, {"notes.txt": b"x"}, kind="sweep", what="--out")
    with pytest.raises(ReportError, match="holds a sweep, not a demo"):
        install_owned_files(shared, {"other": b"x"}, kind="demo", what="--output-dir")
    assert (shared / "notes.txt").read_text(encoding="utf-8") == "mine"


def test_owned_files_of_an_earlier_version_are_recognised_by_the_legacy_rule(
    tmp_path: Path,
) -> None:
    from auditml.fileio import sha256_of_file
    from auditml.reporting.output import check_owned_files

    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "table.md").write_bytes(b"old")
    with pytest.raises(ReportError, match=r"table\.md is not a file"):
        check_owned_files(shared, ["table.md"], kind="sweep", what="--out")
    owned = check_owned_files(shared, ["table.md"], kind="sweep", what="--out",
                              legacy=lambda d: {"table.md": [sha256_of_file(d / "table.md")]})
    assert list(owned) == ["table.md"]
