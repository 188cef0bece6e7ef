"""One summary format (median, 90% interval, R-hat, ESS) and a warning for every failed check,
on synthetic posteriors whose answer is known."""

import arviz as az
import numpy as np
import pytest
from allypot.diagnostics.modes import detect_chain_modes
from allypot.diagnostics.summary import (
    convergence_warnings,
    format_warnings,
    headline_summary,
    sampler_health,
)
from scipy import stats

CHAINS, DRAWS = 4, 1000


def posterior(effect: np.ndarray, divergent: int = 0):
    diverging = np.zeros(effect.shape, bool)
    diverging.flat[:divergent] = True
    return az.from_dict({
        "posterior": {"potential_effect": effect, "sigma": np.abs(effect) + 1.0},
        "sample_stats": {"diverging": diverging},
    })


def checks(idata):
    summary = headline_summary(idata)
    return convergence_warnings(summary, sampler_health(idata), detect_chain_modes(idata))


@pytest.fixture
def mixed():
    return posterior(np.random.default_rng(1).normal(size=(CHAINS, DRAWS)))


@pytest.fixture
def two_modes():
    """Two chains near -1, two near +1, each chain well mixed within its mode."""
    rng = np.random.default_rng(2)
    centres = np.array([-1.0, 1.0, 1.0, -1.0])[:, None]
    return posterior(centres + 0.1 * rng.normal(size=(CHAINS, DRAWS)))


def test_headline_is_median_interval_and_diagnostics(mixed):
    row = headline_summary(mixed).loc["potential_effect"]
    assert list(headline_summary(mixed).columns) == ["median", "q05", "q95", "p_positive", "r_hat", "ess_bulk", "ess_tail"]
    # 4000 standard-normal draws: quantiles within a few Monte Carlo SEs of the truth
    assert row["median"] == pytest.approx(0.0, abs=0.06)
    assert row["q05"] == pytest.approx(stats.norm.ppf(0.05), abs=0.1)
    assert row["q95"] == pytest.approx(stats.norm.ppf(0.95), abs=0.1)
    assert row["p_positive"] == pytest.approx(0.5, abs=0.03)
    assert row["ess_bulk"] > 2000 and row["r_hat"] < 1.01


def test_median_not_mean_on_a_heavy_tailed_effect():
    draws = np.random.default_rng(3).lognormal(0.0, 1.5, size=(CHAINS, DRAWS))
    row = headline_summary(posterior(draws)).loc["potential_effect"]
    assert row["median"] == pytest.approx(1.0, rel=0.15)  # exp(0), while the mean is exp(1.125) = 3.1
    assert draws.mean() > 2 * row["median"]


def test_a_well_mixed_posterior_passes_every_check(mixed):
    assert checks(mixed) == []
    assert format_warnings([], "this fit") == ""


def test_chains_in_two_modes_are_flagged(two_modes):
    warnings = checks(two_modes)
    assert any(w.startswith("R-hat of potential_effect") for w in warnings)
    assert any(w.startswith("bulk ESS of potential_effect") for w in warnings)
    assert any("chains sit in different modes" in w for w in warnings)
    assert detect_chain_modes(two_modes).table.set_index("parameter").loc["potential_effect", "gap_sd"] > 10
    assert "WARNING" in format_warnings(warnings, "this joint fit")


def test_divergences_are_flagged():
    idata = posterior(np.random.default_rng(4).normal(size=(CHAINS, DRAWS)), divergent=3)
    assert sampler_health(idata)["divergences"] == 3
    assert checks(idata) == ["3 divergent transitions: the sampler missed part of the posterior"]


def test_cut_is_judged_by_its_worst_rhat_within_a_fit(two_modes):
    summary, health = headline_summary(two_modes), sampler_health(two_modes)
    # pooled fits with different potentials disagree by design: no pooled R-hat/ESS warning
    assert convergence_warnings(summary, health, within_fit_rhat=1.004) == []
    assert convergence_warnings(summary, health, within_fit_rhat=1.04) == ["worst R-hat within a single fit is 1.040 (> 1.01)"]
