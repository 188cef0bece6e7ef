"""Fast structural and numerical tests of the model components (no MCMC)."""

import numpy as np
import pymc as pm
import pytensor.tensor as pt
import pytest
from allypot.models.compose import (
    ModelOptions,
    build_contribution_model,
    build_joint_model,
    build_measurement_model,
)
from allypot.models.dyad_depth import ally_matrix_from_membership, us_dyad_depth
from allypot.models.irt import simulate_items
from allypot.models.potential import least_squares_line, potential_from_point_estimates
from allypot.models.simulate import simulate_inputs
from allypot.priors import PriorConfigError, load_priors
from scipy.stats import norm


@pytest.fixture(scope="module")
def simulated():
    return simulate_inputs(n_alliances=60, n_us_alliances=6, n_countries=12, n_years=5, seed=7)


def test_dyad_depth_takes_deepest_alliance_and_zero_without_one():
    theta = pt.as_tensor(np.array([-1.0, 0.5, 2.0]))
    matrix = ally_matrix_from_membership(
        [(1, 2001), (2, 2001), (3, 2001)], {(1, 2001): [10, 30], (2, 2001): [20]}, {10: 0, 20: 1, 30: 2}
    )
    depth = us_dyad_depth(theta, matrix).eval()
    np.testing.assert_allclose(depth, [norm.cdf(2.0), norm.cdf(0.5), 0.0])


def test_softmax_depth_is_close_to_max_and_smooth():
    theta = pt.as_tensor(np.array([0.0, 0.3]))
    matrix = np.array([[0, 1], [0, -1]])
    hard = us_dyad_depth(theta, matrix, "max").eval()
    soft = us_dyad_depth(theta, matrix, "softmax", temperature=0.05).eval()
    assert np.all(soft >= hard - 1e-12)
    np.testing.assert_allclose(soft, hard, atol=0.01)


def test_projection_equals_ordinary_least_squares():
    rng = np.random.default_rng(0)
    pref = rng.uniform(size=200)
    depth = np.clip(0.2 + 0.5 * pref + rng.normal(0, 0.1, 200), 0, 1)
    alpha, beta = least_squares_line(depth, pref, np.ones(200))
    slope, intercept = np.polyfit(pref, depth, 1)
    np.testing.assert_allclose([alpha, beta], [intercept, slope])
    potential = potential_from_point_estimates(depth, pref, np.ones(200, bool))
    # residuals of an OLS fit with intercept sum to zero and are uncorrelated with pref
    assert abs(potential.sum()) < 1e-9 and abs(np.dot(potential, pref - pref.mean())) < 1e-9


def test_simulated_items_follow_ordered_logit_probabilities():
    rng = np.random.default_rng(1)
    theta = np.zeros(20000)
    items = simulate_items(theta, np.array([1.0]), [np.array([-0.5, 1.0])], rng)
    # P(x <= k) = logistic(c_k - eta) at eta = 0
    expected = 1 / (1 + np.exp(-np.array([-0.5, 1.0])))
    observed = [(items[:, 0] <= 0).mean(), (items[:, 0] <= 1).mean()]
    np.testing.assert_allclose(observed, expected, atol=0.01)


def test_joint_model_has_named_dims_and_all_parts(simulated):
    inputs, _ = simulated
    model = build_joint_model(inputs, ModelOptions(), load_priors())
    names = set(model.named_vars)
    for required in ("depth_theta", "depth_loading", "pref_logit", "potential", "beta", "potential_effect", "share_z"):
        assert required in names
    assert model.named_vars_to_dims["depth_theta"] == ("alliance",)
    assert model.named_vars_to_dims["pref_logit"] == ("country", "year")
    assert model.named_vars_to_dims["potential"] == ("row",)
    assert len(model.coords["row"]) == len(inputs.rows)
    # the projection has no likelihood of its own (MODEL.md trap): only items, votes, outcome
    observed = {v.name for v in model.observed_RVs}
    assert observed == {f"depth_item_{i}" for i in inputs.item_names} | {"pref_agree", "share_z"}


@pytest.mark.slow  # compiles the log density of every builder
def test_logp_is_finite_at_initial_point_for_every_builder(simulated):
    inputs, truth = simulated
    priors = load_priors()
    for family in ("gaussian", "hurdle"):
        options = ModelOptions(family=family)
        outcome_inputs = inputs
        if family == "hurdle":
            outcome_inputs, _ = simulate_inputs(n_alliances=60, n_us_alliances=6, n_countries=12, n_years=5, family="hurdle", seed=7)
        for model in (
            build_joint_model(outcome_inputs, options, priors),
            build_measurement_model(outcome_inputs, options, priors),
            build_contribution_model(outcome_inputs, options, priors, truth["potential"]),
        ):
            assert np.isfinite(model.compile_logp()(model.initial_point()))


def test_country_effects_parameterisation_is_a_switch(simulated):
    inputs, _ = simulated
    options = ModelOptions(country_effects=True)
    non_centred = build_joint_model(inputs, options, load_priors())
    centred = build_joint_model(inputs, options, load_priors({"contribution": {"country_sigma": {"centered": True}}}))
    assert "country_effect_offset" in non_centred.named_vars and "country_effect_offset" not in centred.named_vars
    assert centred.named_vars_to_dims["country_effect"] == ("country",)


def test_prior_overrides_reject_unknown_keys():
    with pytest.raises(PriorConfigError, match=r"priors.contribution.betta"):
        load_priors({"contribution": {"betta": {"kwargs": {"sigma": 1.0}}}})
    with pytest.raises(PriorConfigError, match="unknown PyMC distribution"):
        load_priors({"contribution": {"beta": {"dist": "Nromal"}}})
    changed = load_priors({"contribution": {"beta": {"kwargs": {"sigma": 0.5}}}})
    assert changed["contribution"]["beta"].kwargs == {"mu": 0.0, "sigma": 0.5}


def test_prior_draws_respect_identification(simulated):
    inputs, _ = simulated
    model = build_joint_model(inputs, ModelOptions(), load_priors())
    prior = pm.sample_prior_predictive(draws=200, model=model, random_seed=3)
    loadings = prior["prior"]["depth_loading"].to_numpy()
    depth = prior["prior"]["depth"].to_numpy()
    assert (loadings > 0).all()
    assert ((depth >= 0) & (depth <= 1)).all()
    assert np.all(depth[..., ~inputs.us_ally] == 0)
