from __future__ import annotations

import pytest

from auditml.formatting import (
    dp_guarantee_line,
    format_delta,
    format_epsilon,
    format_fpr_target,
    format_rate,
)


@pytest.mark.parametrize(
    ("delta", "text"), [(2e-4, "2e-04"), (1e-5, "1e-05"), (2.5e-5, "2.5e-05"), (None, "—")]
)
def test_format_delta(delta: float | None, text: str) -> None:
    assert format_delta(delta) == text


def test_format_epsilon() -> None:
    assert format_epsilon(4.968) == "4.97"
    assert format_epsilon(None) == "∞"


def test_tutorial_line_format() -> None:
    assert dp_guarantee_line(4.97, 2e-4) == "Achieved DP guarantee: ε=4.97, δ=2e-04"


def test_rates_are_percentages_with_one_decimal() -> None:
    assert [format_rate(rate) for rate in (0.00667, 0.0133, 0.1234, 1.0, None)] == [
        "0.7%", "1.3%", "12.3%", "100.0%", "—"]
    assert [format_fpr_target(fpr) for fpr in (0.001, 0.01, 0.1)] == ["0.1%", "1%", "10%"]
