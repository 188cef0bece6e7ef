"""Depth aggregations of a state-year's US alliances: max, softmax and primary."""

import numpy as np
import pytensor.tensor as pt
import pytest
from allypot.inference.config import resolve_config
from allypot.inference.depth_choice import with_primary_alliances
from allypot.models.dyad_depth import primary_ally_matrix, us_dyad_depth
from allypot.models.simulate import simulate_inputs
from allypot.priors import load_priors
from scipy.stats import norm

# rows: two alliances, one alliance, none
ALLY_MATRIX = np.array([[0, 2], [1, -1], [-1, -1]])


def _depth_draws(theta_draws: np.ndarray, ally_matrix: np.ndarray, aggregation: str) -> np.ndarray:
    """Depth per (draw, row), computed by the model's own tensor code."""
    theta = pt.vector("theta")
    depth = us_dyad_depth(theta, ally_matrix, aggregation)
    return np.stack([depth.eval({theta: draw}) for draw in theta_draws])


def test_primary_keeps_the_alliance_with_the_highest_point_estimate():
    assert primary_ally_matrix(ALLY_MATRIX, np.array([0.1, 5.0, 0.9])).tolist() == [[2], [1], [-1]]
    assert primary_ally_matrix(ALLY_MATRIX, np.array([0.9, 5.0, 0.1])).tolist() == [[0], [1], [-1]]
    assert primary_ally_matrix(np.zeros((3, 0), dtype="int64"), np.zeros(2)).shape == (3, 0)


def test_primary_depth_is_the_chosen_alliance_and_refuses_an_unreduced_matrix():
    theta = np.array([0.3, -0.4, 1.2])
    reduced = primary_ally_matrix(ALLY_MATRIX, theta)
    depth = _depth_draws(theta[None, :], reduced, "primary")[0]
    assert np.allclose(depth, [norm.cdf(1.2), norm.cdf(-0.4), 0.0])
    with pytest.raises(ValueError, match="one alliance per state-year"):
        us_dyad_depth(pt.as_tensor(theta), ALLY_MATRIX, "primary")


def test_max_of_uncertain_depths_is_inflated_and_primary_is_not():
    """Two treaties of equal depth, each known to +-0.5: the expected max exceeds either."""
    rng = np.random.default_rng(4)
    n_draws, true_theta, sd = 4000, 0.8, 0.5
    draws = rng.normal(true_theta, sd, size=(n_draws, 3))
    expected_single = norm.cdf(true_theta / np.sqrt(1 + sd**2))  # E[Phi(X)] for X ~ N(mu, sd^2)
    depth_max = _depth_draws(draws, ALLY_MATRIX, "max")[:, 0].mean()
    reduced = primary_ally_matrix(ALLY_MATRIX, draws.mean(axis=0))
    depth_primary = _depth_draws(draws, reduced, "primary")[:, 0].mean()
    monte_carlo_se = 0.5 / np.sqrt(n_draws)
    assert abs(depth_primary - expected_single) < 4 * monte_carlo_se
    assert depth_max - expected_single > 0.05  # E[Phi(max)] of two N(0.8, 0.5^2): about +0.09


def test_config_accepts_primary():
    assert resolve_config({"model": {"depth_aggregation": "primary"}})["model"]["depth_aggregation"] == "primary"


@pytest.mark.slow
def test_primary_choice_from_the_measurement_only_fit_finds_the_deeper_treaty():
    inputs, truth = simulate_inputs(n_alliances=120, n_us_alliances=8, n_countries=30, n_years=3, seed=8)
    sampler = {"backend": "nutpie", "chains": 2, "draws": 200, "tune": 300, "target_accept": 0.9, "adaptation": "diag"}
    reduced = with_primary_alliances(inputs, load_priors()["irt"], sampler, seed=2)
    assert reduced.ally_matrix.shape == (len(inputs.rows), 1)
    assert np.array_equal(reduced.us_ally, inputs.us_ally)
    several = (inputs.ally_matrix >= 0).sum(axis=1) == 2
    pairs = inputs.ally_matrix[several]
    gap = np.abs(truth["theta"][pairs[:, 0]] - truth["theta"][pairs[:, 1]])
    clear = gap > 1.0  # treaties a full prior SD apart: the items must tell them apart
    truly_deeper = pairs[np.arange(len(pairs)), truth["theta"][pairs].argmax(axis=1)]
    assert clear.sum() >= 5
    assert np.array_equal(reduced.ally_matrix[several, 0][clear], truly_deeper[clear])
