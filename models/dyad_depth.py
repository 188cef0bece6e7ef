"""US dyad depth per state-year (MODEL.md Part A, second half).

    depth_n = Phi(max_{a in A_n} theta_a)   if state-year n shares any alliance with the US
    depth_n = 0                              otherwise

``A_n`` is the set of alliances active in year t with both the US and state i as members
(from the ATOP member file). The sets are ragged, so they arrive as an (n_row, k_max) matrix
of alliance positions padded with -1; padding points at a sentinel theta far below any real
one, so it never wins the max. Aggregations of a state-year's alliances:

- ``max`` (MODEL.md): non-smooth where two alliances tie;
- ``softmax``: ``T * logsumexp(theta / T)`` (temperature T, default 0.05), smooth and within
  T*log(k) of the max;
- ``primary``: one alliance per state-year, chosen once, before the fit, as the one with the
  highest measurement-only posterior mean of theta (:func:`primary_ally_matrix`); depth is
  then that alliance's Phi(theta). The posterior mean of a max of uncertain thetas exceeds
  the max of their means (E[max] >= max E), so ``max`` inflates the depth of states holding
  several US treaties with overlapping posteriors; ``primary`` has no such bias, at the price
  of ignoring the chance that another of the state's treaties is the deeper one.
"""

from __future__ import annotations

import numpy as np
import pytensor.tensor as pt
from allypot.models.irt import depth_probability
from pytensor.tensor.special import logsumexp

AGGREGATIONS = ("max", "softmax", "primary")
_SENTINEL = -30.0  # Phi(-30) == 0 in float64: padding can never become the deepest alliance


def us_dyad_depth(theta, ally_matrix: np.ndarray, aggregation: str = "max", temperature: float = 0.05):
    """Return depth (0..1) for every row of ``ally_matrix`` as a tensor of shape (n_row,).

    For ``primary`` the matrix must already hold one alliance per row
    (:func:`primary_ally_matrix`); the max over one column is then that alliance's theta.
    """
    if aggregation not in AGGREGATIONS:
        raise ValueError(f"depth aggregation {aggregation!r} not in {AGGREGATIONS}")
    if aggregation == "primary" and ally_matrix.shape[1] > 1:
        raise ValueError("depth aggregation 'primary' needs one alliance per state-year: "
                         "reduce the ally matrix with primary_ally_matrix first")
    allied = (ally_matrix >= 0).any(axis=1)
    if ally_matrix.shape[1] == 0:
        return pt.zeros(ally_matrix.shape[0])
    padded = pt.concatenate([theta, pt.as_tensor([_SENTINEL])])
    # -1 indexes the sentinel appended last
    shared = padded[ally_matrix]  # (n_row, k_max)
    if aggregation in ("max", "primary"):
        deepest = pt.max(shared, axis=1)
    else:
        deepest = temperature * logsumexp(shared / temperature, axis=1)
    return pt.switch(pt.as_tensor(allied), depth_probability(deepest), 0.0)


def ally_matrix_from_membership(
    rows: list[tuple[int, int]], membership: dict[tuple[int, int], list[int]], alliance_position: dict[int, int]
) -> np.ndarray:
    """Build the padded (n_row, k_max) alliance-position matrix for (ccode, year) rows."""
    sets = [[alliance_position[a] for a in sorted(membership.get(r, ()))] for r in rows]
    k_max = max((len(s) for s in sets), default=0)
    out = np.full((len(rows), k_max), -1, dtype="int64")
    for i, s in enumerate(sets):
        out[i, : len(s)] = s
    return out


def primary_ally_matrix(ally_matrix: np.ndarray, theta_point: np.ndarray) -> np.ndarray:
    """Keep each row's alliance with the highest ``theta_point``: an (n_row, 1) matrix, -1 = none.

    ``theta_point`` is a point estimate per alliance position, e.g. the measurement-only
    posterior mean; a tie goes to the first alliance in the row (the lowest atopid).
    """
    if ally_matrix.shape[1] == 0:
        return ally_matrix
    scores = np.where(ally_matrix >= 0, np.asarray(theta_point)[np.maximum(ally_matrix, 0)], -np.inf)
    chosen = ally_matrix[np.arange(len(ally_matrix)), scores.argmax(axis=1)]
    return chosen[:, None]
