"""The sweep's table: what each cell says."""

from __future__ import annotations

from auditml.sweep.report import SweepRow, table_cells


def test_sweep_table_says_which_tail_a_bound_comes_from() -> None:
    """sweep.md showed "≥ 1.85 (95% conf.)" with no tail: a non-member-tail bound over a ROC on
    the diagonal read as leakage found among members."""
    row = SweepRow(run="eps_inf", epsilon_target=None, epsilon_claimed=None, delta=None,
                   val_acc=0.9, attack="mia_threshold", auc=0.5, tpr_at_1pct_fpr=0.01,
                   epsilon_lower_bound=1.85, bound_confidence=0.95, gdp_epsilon_estimate=0.0,
                   violation=False, bound_tail="nonmember")
    assert "≥ 1.85 (95% conf., non-member tail)" in table_cells(row)
    older = row.model_copy(update={"bound_tail": None})
    assert "≥ 1.85 (95% conf.)" in table_cells(older)
