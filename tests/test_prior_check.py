"""allypot priors check: prior predictive summary and figures on simulated inputs."""

import numpy as np
import pytest
from allypot.inference.config import model_options, priors_from_config, resolve_config
from allypot.inference.prior_check import (
    QUANTITIES,
    SUMMARY_COLUMNS,
    plot_prior_predictive,
    plot_share_draws,
    prior_predictive_tree,
    summarise_prior_predictive,
)
from allypot.models.compose import build_joint_model
from allypot.models.simulate import simulate_inputs
from matplotlib.figure import Figure


def prior_for(family: str):
    inputs, _ = simulate_inputs(n_alliances=60, n_us_alliances=6, n_countries=12, n_years=5, family=family, seed=3)
    config = resolve_config({"model": {"family": family}})
    model = build_joint_model(inputs, model_options(config), priors_from_config(config))
    return prior_predictive_tree(model, inputs, draws=40, seed=5)


@pytest.fixture(scope="module")
def gaussian_prior():
    return prior_for("gaussian")


def test_summary_has_one_row_per_quantity_and_source(gaussian_prior):
    summary = summarise_prior_predictive(gaussian_prior)
    assert list(summary.columns) == SUMMARY_COLUMNS
    assert list(summary["quantity"]) == [q for q in QUANTITIES for _ in range(2)]
    assert list(summary["source"]) == ["prior", "observed"] * len(QUANTITIES)
    prior_rows = summary[summary["source"] == "prior"]
    assert (prior_rows["n"] > 0).all()
    quantiles = prior_rows[["q01", "q05", "q50", "q95", "q99"]].to_numpy()
    assert (np.diff(quantiles, axis=1) >= 0).all()
    fractions = summary[["frac_below_0", "frac_above_1", "frac_zero"]].dropna().to_numpy()
    assert ((fractions >= 0) & (fractions <= 1)).all()
    # depths and agreement rates are probabilities under any prior
    bounded = prior_rows.set_index("quantity").loc[["depth_allied", "agreement"]]
    assert (bounded[["frac_below_0", "frac_above_1"]] == 0).all().all()
    # simulated inputs have no published panel: the latent quantities have no reference
    observed = summary[summary["source"] == "observed"].set_index("quantity")
    assert observed.loc["depth_allied", "n"] == 0 and observed.loc["share", "n"] > 0


def test_gaussian_shares_are_put_back_on_the_share_scale(gaussian_prior):
    summary = summarise_prior_predictive(gaussian_prior).set_index(["quantity", "source"])
    observed_share = gaussian_prior["reference"]["share"]
    # un-standardised draws are centred near the observed mean, on the share's own scale
    assert abs(summary.loc[("share", "prior"), "q50"] - float(observed_share.mean())) < 5 * float(observed_share.std())


def test_hurdle_shares_have_exact_zeros_and_no_negatives():
    summary = summarise_prior_predictive(prior_for("hurdle")).set_index(["quantity", "source"])
    assert summary.loc[("share", "prior"), "frac_below_0"] == 0
    assert summary.loc[("share", "prior"), "frac_zero"] > 0


def test_figures_have_the_expected_axes(gaussian_prior):
    fig = plot_prior_predictive(gaussian_prior)
    assert isinstance(fig, Figure) and len(fig.axes) == len(QUANTITIES)
    draws = plot_share_draws(gaussian_prior)
    assert isinstance(draws, Figure) and len(draws.axes) == 2
