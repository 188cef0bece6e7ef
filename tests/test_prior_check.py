"""allypot priors check: prior predictive summary and figures on simulated inputs."""

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from allypot.inference.config import model_options, priors_from_config, resolve_config
from allypot.inference.prior_check import (
    IDEALPOINT_QUANTITIES,
    QUANTITIES,
    SUMMARY_COLUMNS,
    plot_prior_predictive,
    plot_share_draws,
    prior_predictive_tree,
    summarise_prior_predictive,
    write_prior_report,
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


def _with_ideal_points(inputs, rng):
    """Simulated inputs plus ideal-point estimates (simulate_inputs leaves them empty)."""
    shape = inputs.n_votes.shape
    ideal = rng.normal(0.0, 1.0, shape)
    ideal[rng.random(shape) < 0.2] = np.nan  # some state-years without an estimate
    return dataclasses.replace(
        inputs, ideal=ideal, ideal_sd=np.full(shape, 0.1),
        us_ideal=rng.normal(2.5, 0.1, shape[1]), us_ideal_sd=np.full(shape[1], 0.1),
    )


def test_idealpoint_model_prior_check_writes_its_report(tmp_path):
    inputs, _ = simulate_inputs(n_alliances=60, n_us_alliances=6, n_countries=12, n_years=5, family="hurdle", seed=3)
    inputs = _with_ideal_points(inputs, np.random.default_rng(4))
    config = resolve_config({"model": {"family": "hurdle", "preference": "idealpoint", "specification": "baseline"}})
    model = build_joint_model(inputs, model_options(config), priors_from_config(config))
    assert "pref_ideal" in model.named_vars and "pref_logit" not in model.named_vars
    prior = prior_predictive_tree(model, inputs, draws=20, seed=5)
    path = write_prior_report(prior, config, tmp_path)
    summary = pd.read_csv(tmp_path / "prior_predictive_summary.csv").set_index(["quantity", "source"])
    assert list(summary.index.get_level_values("quantity").unique()) == list(IDEALPOINT_QUANTITIES)
    seen = int((~np.isnan(inputs.ideal)).sum())
    assert summary.loc[("ideal_point", "prior"), "n"] == 20 * seen
    assert summary.loc[("ideal_point", "observed"), "n"] == seen
    # prior measurements spread around the latent prior Normal(0, 2): its 5-95% range is about +-3.3
    assert -5 < summary.loc[("ideal_point", "prior"), "q05"] < -1.5 < 1.5 < summary.loc[("ideal_point", "prior"), "q95"] < 5
    assert "preference `idealpoint`" in path.read_text()
    assert {p.name for p in tmp_path.iterdir()} == {"prior_check.md", "prior_predictive_summary.csv",
                                                   "prior_predictive.png", "prior_share_draws.png"}


@pytest.mark.slow
def test_cli_prior_check_of_the_shipped_idealpoint_config(tmp_path, capsys):
    from allypot.cli import main
    from allypot.paths import CONFIGS_DIR

    assert main(["priors", "check", str(CONFIGS_DIR / "idealpoint.toml"), "--prior-draws", "5", "--out", str(tmp_path)]) == 0
    assert "prior predictive check written to" in capsys.readouterr().out
    summary = pd.read_csv(tmp_path / "prior_predictive_summary.csv")
    ideal = summary[summary["quantity"] == "ideal_point"].set_index("source")["n"]
    assert ideal["observed"] > 1000 and ideal["prior"] == 5 * ideal["observed"]


def test_idealpoint_model_refuses_missing_us_ideal_points():
    from allypot.models.preference import idealpoint_measurement
    from allypot.priors import load_priors
    import pymc as pm

    shape = (3, 4)
    with pm.Model(coords={"country": range(3), "year": range(4)}):
        with pytest.raises(ValueError, match=r"US ideal point is missing in year positions \[2\]"):
            idealpoint_measurement(np.zeros(shape), np.ones(shape), np.array([0.0, 0.0, np.nan, 0.0]), np.ones(4),
                                   load_priors()["preference"])
