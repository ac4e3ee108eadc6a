"""The label-only attack by distance to the decision boundary (Choquette-Choo et al. 2021,
"Label-Only Membership Inference Attacks", ICML; Li & Zhang 2021, "Membership Leakage in
Label-Only Exposures", CCS), the distance estimated by HopSkipJump (Chen, Jordan & Wainwright
2020, "HopSkipJumpAttack: A Query-Efficient Decision-Based Attack", IEEE S&P).

The attack sees only the target's predicted labels. Training pushes the decision boundary away
from each member, so the score of a correctly classified example (x, y) is its L2 distance to
the nearest input the target labels otherwise,

    score(x, y) = min { ‖x' − x‖₂ : argmax f(x') ≠ y },

estimated with a bounded number of label queries; a misclassified example scores 0 (it is on
the wrong side already). Inputs of any shape (images, tabular rows) are treated as flat
vectors in the space the model reads (the normalised inputs), without clipping to a range.

Estimate (HopSkipJump, untargeted L2, written for this module from the paper's Algorithm 1):

1. Start: the nearest audited example (in L2) that the target labels other than y: a point
   on the other side of the boundary, found with the one label query every example gets. If
   no example qualifies, Gaussian noise of growing scale around x is tried.
2. Bisection between x and the start point, to relative precision 2^-``steps`` of their
   distance with ``steps`` = max(10, ⌈1.5 log₂ d⌉) (the paper's θ = d^(-3/2)); the point kept
   is on the adversarial side, so every distance found is an upper bound of the true one.
3. Each iteration t = 1, 2, …: estimate the boundary's normal at the current boundary point
   x_b from B_t = ``gradient_queries``·√t label queries at x_b + δ u_b (u_b uniform on the unit
   sphere, δ = ‖x_b − x‖ / d, the paper's δ_t = √d θ ‖x_b − x‖): v = Σ_b (φ_b − φ̄) u_b,
   φ_b = ±1 for an adversarial/not adversarial answer, normalised; step from x_b along v by
   ξ = ‖x_b − x‖ / √t, halved (at most 16 times) until the point is adversarial; bisect
   between x and that point again. The score is the smallest distance found.

Budget. Every label query of an example counts against ``max_queries``; an iteration starts
only when its worst case (B_t, 17 step queries and one bisection) fits in what is left, so no
example is ever queried more than ``max_queries`` times. The queries spent are recorded in the
attack's ``fitted`` values. Random directions come from a numpy Generator seeded with the
audit's seed, so scores are reproducible.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from pydantic import Field

from auditml.attacks.base import AttackSettings, MembershipAttack
from auditml.attacks.label_only import predicted_labels

Oracle = Callable[[np.ndarray, np.ndarray], np.ndarray]
"""``adversarial(points, rows)``: for flat points ``(M, d)`` and the example each belongs to
(``rows``, ``(M,)``), whether the target labels the point otherwise than that example."""

MIN_BISECTION_STEPS = 10
MAX_HALVINGS = 16
NOISE_SCALES = 8  # Gaussian start points tried, at scales 1, 2, 4, … times the inputs' spread
_QUERY_ROWS = 8192  # points per forward pass in the gradient estimate


class BoundaryDistanceSettings(AttackSettings):
    max_queries: int = Field(
        default=1000, ge=1, description="label queries per example at most, its own included"
    )
    gradient_queries: int = Field(
        default=100, ge=1,
        description="queries of the first gradient estimate; iteration t uses this times √t",
    )


class BoundaryDistanceAttack(MembershipAttack):
    """L2 distance to the decision boundary from label queries (HopSkipJump)."""

    name = "mia_boundary_distance"
    Settings = BoundaryDistanceSettings
    requires = frozenset()
    _search: BoundarySearch | None = None

    def score(self) -> np.ndarray:
        target = self.target
        x, y = target.examples.x, np.asarray(target.examples.y)
        shape, dtype = x.shape[1:], x.dtype

        def adversarial(points: np.ndarray, rows: np.ndarray) -> np.ndarray:
            inputs = points.reshape(-1, *shape).astype(dtype, copy=False)
            return predicted_labels(target.model, inputs, target.device) != y[rows]

        predicted = predicted_labels(target.model, x, target.device)
        self._search = boundary_distances(
            x.reshape(len(x), -1), y, predicted, adversarial, np.random.default_rng(target.seed),
            max_queries=self.params.max_queries, gradient_queries=self.params.gradient_queries,
        )
        return self._search.distances

    def fitted_values(self) -> dict[str, Any]:
        """Label queries spent per example (mean and most) and how many examples were
        misclassified (score 0) or had no boundary found (score: the farthest point tried)."""
        search = self._search
        if search is None:
            return {}
        return {
            "queries_mean": float(search.queries.mean()) if len(search.queries) else 0.0,
            "queries_max": int(search.queries.max(initial=0)),
            "misclassified": int(search.misclassified.sum()),
            "no_boundary_found": int(search.unbounded.sum()),
        }


@dataclass(frozen=True)
class BoundarySearch:
    """What :func:`boundary_distances` found, per example: the distance (0 when misclassified),
    the label queries spent, and the flags ``misclassified`` and ``unbounded`` (no point of
    another label found; the distance is then the farthest point tried, a lower bound)."""

    distances: np.ndarray
    queries: np.ndarray
    misclassified: np.ndarray
    unbounded: np.ndarray


def boundary_distances(
    x: np.ndarray,
    labels: np.ndarray,
    predicted: np.ndarray,
    adversarial: Oracle,
    rng: np.random.Generator,
    *,
    max_queries: int,
    gradient_queries: int,
) -> BoundarySearch:
    """Each flat example's estimated L2 distance to the boundary of its label (module doc).

    ``predicted`` are the target's labels of ``x`` (one query each, already spent);
    ``adversarial`` answers label queries (see :data:`Oracle`).
    """
    x = np.asarray(x, dtype=np.float64)
    n, d = x.shape
    queries = np.ones(n, dtype=np.int64)
    misclassified = np.asarray(predicted) != np.asarray(labels)
    distances = np.zeros(n)
    unbounded = np.zeros(n, dtype=bool)
    rows = np.flatnonzero(~misclassified)
    if len(rows) == 0:
        return BoundarySearch(distances, queries, misclassified, unbounded)
    starts, found = _nearest_other_label(x, labels, predicted, rows)
    lost = rows[~found]
    if len(lost):
        noise_starts, noise_found, farthest = _noise_starts(x, lost, adversarial, rng, queries,
                                                            max_queries)
        starts[~found] = noise_starts
        distances[lost[~noise_found]] = farthest[~noise_found]
        unbounded[lost[~noise_found]] = True
        found[~found] = noise_found
    rows, starts = rows[found], starts[found]
    # Without budget for a bisection, the start point's distance is the estimate.
    distances[rows] = np.linalg.norm(starts - x[rows], axis=1)
    steps = max(MIN_BISECTION_STEPS, math.ceil(1.5 * math.log2(max(d, 2))))
    affordable = queries[rows] + steps <= max_queries
    rows, starts = rows[affordable], starts[affordable]
    if len(rows) == 0:
        return BoundarySearch(distances, queries, misclassified, unbounded)
    boundary = _bisect(x, starts, rows, adversarial, steps, queries)
    best = np.linalg.norm(boundary - x[rows], axis=1)
    iteration = 1
    while True:
        evals = int(gradient_queries * math.sqrt(iteration))
        cost = evals + MAX_HALVINGS + 1 + steps
        active = np.flatnonzero(queries[rows] + cost <= max_queries)
        if len(active) == 0:
            break
        ids, point = rows[active], boundary[active]
        distance = np.linalg.norm(point - x[ids], axis=1)
        direction = _normal_estimate(point, ids, distance / d, evals, adversarial, rng, queries)
        stepped = _geometric_step(point, direction, distance / math.sqrt(iteration), ids,
                                  adversarial, queries)
        boundary[active] = _bisect(x, stepped, ids, adversarial, steps, queries)
        best[active] = np.minimum(best[active], np.linalg.norm(boundary[active] - x[ids], axis=1))
        iteration += 1
    distances[rows] = best
    return BoundarySearch(distances, queries, misclassified, unbounded)


def _nearest_other_label(x: np.ndarray, labels: np.ndarray, predicted: np.ndarray,
                         rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each of ``rows``, the nearest example the target labels otherwise than the row's
    label, and whether there is one."""
    squared = np.einsum("ij,ij->i", x, x)
    starts = np.zeros((len(rows), x.shape[1]))
    found = np.zeros(len(rows), dtype=bool)
    chunk = max(1, 2**22 // max(len(x), 1))
    for begin in range(0, len(rows), chunk):
        part = rows[begin : begin + chunk]
        gaps = squared[part, None] + squared[None, :] - 2.0 * x[part] @ x.T
        gaps[np.asarray(predicted)[None, :] == np.asarray(labels)[part, None]] = np.inf
        nearest = gaps.argmin(axis=1)
        starts[begin : begin + len(part)] = x[nearest]
        found[begin : begin + len(part)] = np.isfinite(gaps[np.arange(len(part)), nearest])
    return starts, found


def _noise_starts(x: np.ndarray, rows: np.ndarray, adversarial: Oracle, rng: np.random.Generator,
                  queries: np.ndarray, max_queries: int
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gaussian points around each of ``rows`` at growing scales until one is adversarial:
    ``(starts, found, farthest distance tried)``."""
    spread = float(x.std()) or 1.0
    starts = np.zeros((len(rows), x.shape[1]))
    found = np.zeros(len(rows), dtype=bool)
    farthest = np.zeros(len(rows))
    for power in range(NOISE_SCALES):
        searching = np.flatnonzero(~found & (queries[rows] < max_queries))
        if len(searching) == 0:
            break
        ids = rows[searching]
        points = x[ids] + spread * 2.0**power * rng.standard_normal((len(ids), x.shape[1]))
        queries[ids] += 1
        hit = adversarial(points, ids)
        starts[searching[hit]] = points[hit]
        found[searching[hit]] = True
        farthest[searching] = np.maximum(farthest[searching],
                                         np.linalg.norm(points - x[ids], axis=1))
    return starts, found, farthest


def _bisect(x: np.ndarray, far: np.ndarray, rows: np.ndarray, adversarial: Oracle, steps: int,
            queries: np.ndarray) -> np.ndarray:
    """Points on the segments from ``x[rows]`` (not adversarial) to ``far`` (adversarial), on
    the adversarial side, within 2^-steps of the segment's length of the boundary."""
    near = x[rows]
    low, high = np.zeros(len(rows)), np.ones(len(rows))
    for _ in range(steps):
        middle = (low + high) / 2
        hit = adversarial(near + middle[:, None] * (far - near), rows)
        high = np.where(hit, middle, high)
        low = np.where(hit, low, middle)
    queries[rows] += steps
    return near + high[:, None] * (far - near)


def _normal_estimate(points: np.ndarray, rows: np.ndarray, delta: np.ndarray, evals: int,
                     adversarial: Oracle, rng: np.random.Generator, queries: np.ndarray
                     ) -> np.ndarray:
    """Unit estimates of the direction into the adversarial side at each boundary point, from
    ``evals`` label queries on a sphere of radius ``delta`` around it (HopSkipJump's Monte
    Carlo estimate with the mean answer as baseline)."""
    d = points.shape[1]
    directions = np.zeros_like(points)
    chunk = max(1, _QUERY_ROWS // evals)
    for begin in range(0, len(rows), chunk):
        part = slice(begin, begin + chunk)
        count = len(rows[part])
        unit = rng.standard_normal((count, evals, d))
        unit /= np.linalg.norm(unit, axis=2, keepdims=True)
        probes = points[part, None, :] + delta[part, None, None] * unit
        sign = 2.0 * adversarial(probes.reshape(-1, d), np.repeat(rows[part], evals)) - 1.0
        sign = sign.reshape(count, evals)
        mean = sign.mean(axis=1, keepdims=True)
        # All answers alike: no baseline to subtract; move along (or against) their mean.
        weights = np.where(np.abs(mean) == 1.0, mean, sign - mean)
        directions[part] = np.einsum("be,bed->bd", weights, unit) / evals
    queries[rows] += evals
    norms = np.linalg.norm(directions, axis=1, keepdims=True)
    return np.where(norms > 0, directions / np.where(norms > 0, norms, 1.0), 0.0)


def _geometric_step(points: np.ndarray, direction: np.ndarray, size: np.ndarray,
                    rows: np.ndarray, adversarial: Oracle, queries: np.ndarray) -> np.ndarray:
    """``points + ξ·direction`` with ξ = ``size`` halved until the point is adversarial (at
    most :data:`MAX_HALVINGS` times; a row that never gets there stays where it was)."""
    size = size.copy()
    result = points.copy()
    searching = np.arange(len(rows))
    for _ in range(MAX_HALVINGS + 1):
        candidate = points[searching] + size[searching, None] * direction[searching]
        hit = adversarial(candidate, rows[searching])
        queries[rows[searching]] += 1
        result[searching[hit]] = candidate[hit]
        searching = searching[~hit]
        if len(searching) == 0:
            break
        size[searching] /= 2
    return result

