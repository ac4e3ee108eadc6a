"""``benchmarks/dp_recipe.py``'s one table: runs grouped by dataset, config and recipe, with issue
28's goal beside each mean (computed from the runs' rows; no training here)."""

from __future__ import annotations

import pytest

from benchmark_scripts import load_benchmark


def _row(dataset: str, config: str, recipe: str, seed: int, acc: float,
         epsilon: float | None = 5.0, train_size: int = 3500,
         audit_size: int | None = None) -> dict:
    return {"dataset": dataset, "config": config, "recipe": recipe, "seed": seed,
            "train_size": train_size, "audit_size": audit_size,
            "val_acc": acc, "epsilon": epsilon, "sigma": 1.0, "arch": "scatternet_linear",
            "batch_size": 1024, "epochs": 40, "wall_s": 10.0 + seed}


def test_one_table_holds_every_dataset_with_its_goal() -> None:
    bench = load_benchmark("dp_recipe")
    rows = [
        _row("mnist-proxy", "eps5", "default", 0, 0.96),
        _row("mnist-proxy", "eps5", "default", 1, 0.97),
        _row("fashion", "eps5", "default", 0, 0.859),
        _row("fashion", "eps5", "gn", 0, 0.80),
        _row("fashion", "full", "default", 0, 0.894, epsilon=2.99999),
        _row("fashion", "baseline", "-", 0, 0.90, epsilon=None),
    ]
    table = bench.summary(rows)
    assert [(r["dataset"], r["config"], r["recipe"]) for r in table] == [
        ("mnist-proxy", "eps5", "default"), ("fashion", "eps5", "default"),
        ("fashion", "eps5", "gn"), ("fashion", "full", "default"), ("fashion", "baseline", "-")]
    proxy = table[0]
    assert (proxy["seeds"], proxy["min"], proxy["max"]) == (2, 0.96, 0.97)
    assert proxy["mean"] == pytest.approx(0.965) and proxy["wall_s"] == pytest.approx(10.5)
    # The goal is the for the recipe it judges; none for another recipe or no DP.
    assert [r["goal"] for r in table] == [0.978, 0.86, None, 0.90, None]
    assert table[3]["epsilon"] == [3.0] and table[4]["epsilon"] == []
    lines = bench.format_summary(table).splitlines()
    assert len(lines) == 6
    assert "96.5%" in lines[1] and "97.8% (-1.3)" in lines[1]
    assert "86.0% (-0.1)" in lines[2] and "90.0% (-0.6)" in lines[4]


def test_training_sizes_are_rows_of_their_own() -> None:
    # The proxy at the 3,500 and at the seed's own 5,000 (2,990 audited) are different
    # measurements of the same goal: never averaged together, each labelled with its size.
    bench = load_benchmark("dp_recipe")
    rows = [
        _row("mnist-proxy", "eps1", "default", 0, 0.95),
        _row("mnist-proxy", "eps1", "default", 0, 0.96, train_size=5000, audit_size=2990),
        _row("mnist-proxy", "eps1", "default", 1, 0.94),
        _row("fashion", "full", "default", 0, 0.89, train_size=55000, audit_size=55000),
    ]
    table = bench.summary(rows)
    assert [(r["trained"], r["seeds"]) for r in table] == [("3500", 2), ("5000/2990", 1),
                                                           ("55000", 1)]
    assert table[0]["mean"] == pytest.approx(0.945) and table[1]["mean"] == 0.96
    lines = bench.format_summary(table).splitlines()
    assert "5000/2990" in lines[2] and "96.2% (-0.2)" in lines[2]
    assert "94.5%" in lines[1] and "96.2% (-1.7)" in lines[1]
