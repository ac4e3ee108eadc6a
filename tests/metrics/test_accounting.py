"""The memoised accountant ε against Opacus' own accountants."""

from __future__ import annotations

import pytest
from opacus.accountants import PRVAccountant, RDPAccountant

from auditml.metrics.accounting import accountant_epsilon, rdp_history_epsilon


@pytest.mark.parametrize("history", [
    [(2.0, 0.5, 6)],
    [(1.1, 0.01, 500), (0.8, 0.02, 30)],
    [(5.0, 1.0, 3), (5.0, 1.0, 3)],
])
def test_the_memoised_rdp_epsilon_is_opacus_bit_for_bit(
    history: list[tuple[float, float, int]]
) -> None:
    accountant = RDPAccountant()
    accountant.history = list(history)
    expected = accountant.get_epsilon(delta=1e-5)
    assert rdp_history_epsilon(history, 1e-5) == expected
    assert rdp_history_epsilon(history, 1e-5) == expected  # the second call reads the memo
    assert accountant_epsilon(history, mechanism="rdp", delta=1e-5) == expected


def test_a_prv_history_is_opacus_prv_accountant() -> None:
    accountant = PRVAccountant()
    accountant.history = [(1.1, 0.01, 500)]
    expected = accountant.get_epsilon(delta=1e-5)
    assert accountant_epsilon(accountant.history, mechanism="prv", delta=1e-5) == expected
