"""Statistical tests: recovery, identification, agreement with Benson & Clinton, and
uncertainty propagation. Fits are small (2 chains, a few hundred draws) to keep CI short."""

import numpy as np
import pandas as pd
import pymc as pm
import pytest
from allypot.inference.config import resolve_config
from allypot.inference.modes import fit_measurement, run_cut, run_joint, run_plugin
from allypot.inference.sampling import sample_model
from allypot.models.compose import ModelOptions, build_contribution_model
from allypot.models.inputs import DEFAULT_ITEM_SET, ITEM_SETS
from allypot.models.irt import ordered_logit_irt
from allypot.models.simulate import simulate_inputs
from allypot.priors import load_priors

from allypot.paths import TABLES_DIR

# every test here rests on an MCMC fit of a minute or more
pytestmark = pytest.mark.slow

SAMPLER = {"backend": "nutpie", "chains": 2, "draws": 300, "tune": 400, "target_accept": 0.9}
# Floor on the correlation of our depth scores with Benson & Clinton's published posterior
# means. A prototype of this design reached 0.91 (MODEL.md); 0.8 leaves room for MCMC noise
# in short CI fits while still failing if depth loses its meaning (the degenerate
# formulation of MODEL.md fell to 0.05).
BC_CORRELATION_FLOOR = 0.8


@pytest.fixture(scope="module")
def simulated_fits():
    """One simulated data set, fitted in all three modes (measurement fit shared)."""
    # With 40 countries and country effects the realised data pin the effect only to within
    # their own sampling noise: even the contribution model given the TRUE potential can miss
    # 0.008 with its 90% interval. The seed is the first draw (from 12 on) where that oracle
    # covers it, so a miss here is the measurement model's fault. With the ten items of the
    # default item set, seed 12's oracle gave [0.0093, 0.0160]; seed 13's gives [0.0032, 0.0093].
    inputs, truth = simulate_inputs(n_alliances=150, n_us_alliances=10, n_countries=40, n_years=8, beta=0.8,
                                   votes_per_year=25, seed=13)
    config = resolve_config({
        "run": {"seed": 5},
        "sampler": SAMPLER,
        "cut": {"measurement_draws": 8, "draws_per_fit": 200, "tune_per_fit": 300},
    })
    options, priors = ModelOptions(), load_priors()
    measurement = fit_measurement(inputs, options, priors, config, progress=False)
    fits = {
        "joint": run_joint(inputs, options, priors, config, progress=False),
        "cut": run_cut(inputs, options, priors, config, measurement=measurement, progress=False),
        "plugin": run_plugin(inputs, options, priors, config, measurement=measurement, progress=False),
    }
    return inputs, truth, fits


def _interval(idata, name="potential_effect", prob=0.9):
    draws = idata["posterior"][name].to_numpy().ravel()
    return np.quantile(draws, [(1 - prob) / 2, (1 + prob) / 2])


def test_joint_model_recovers_the_potential_effect(simulated_fits):
    _, truth, fits = simulated_fits
    low, high = _interval(fits["joint"].idata)
    assert low <= truth["potential_effect"] <= high, (low, high, truth["potential_effect"])
    assert low > 0  # the simulated effect is clearly positive and must be detected


def test_joint_effect_agrees_with_the_oracle_given_true_potential(simulated_fits):
    """The simpler method: the regression alone, fed the true potential."""
    inputs, truth, fits = simulated_fits
    config = resolve_config({"run": {"seed": 6}, "sampler": SAMPLER})
    model = build_contribution_model(inputs, ModelOptions(), load_priors(), truth["potential"])
    oracle = run_model_once(model, config)
    joint = fits["joint"].idata["posterior"]["potential_effect"].to_numpy().ravel()
    oracle_draws = oracle["posterior"]["potential_effect"].to_numpy().ravel()
    # The joint posterior conditions on less than the oracle (the potential's measurements, not the
    # potential), so under the model their means differ by E[(joint mean - oracle mean)^2] =
    # var(joint) - var(oracle), plus Monte Carlo error (about 100 effective draws each). A fixed
    # 0.75 joint SDs was too tight for this: on another machine the same seeds gave 0.88 joint SDs
    # (+0.0019). Calibration against the truth is SBC's job (README "Calibration").
    expected_sd = np.sqrt(max(joint.var() - oracle_draws.var(), 0.0) + (joint.var() + oracle_draws.var()) / 100)
    assert abs(joint.mean() - oracle_draws.mean()) < 2.5 * expected_sd
    assert joint.std() >= 0.9 * oracle_draws.std()  # measuring potential cannot make us surer


def run_model_once(model, config):
    idata, _ = sample_model(model, config["sampler"], config["run"]["seed"], progress=False, quiet=True)
    return idata


def test_joint_model_recovers_latent_depth_and_preference(simulated_fits):
    _, truth, fits = simulated_fits
    post = fits["joint"].idata["posterior"]
    theta = post["depth_theta"].mean(("chain", "draw")).to_numpy()
    pref = post["pref_row"].mean(("chain", "draw")).to_numpy()
    # nine items carry limited information per alliance: 0.8 is below what the item
    # reliability allows (about 0.85-0.9 in repeated simulations) but far above chance
    assert np.corrcoef(theta, truth["theta"])[0, 1] > 0.8
    assert np.corrcoef(pref, truth["pref"])[0, 1] > 0.9
    assert fits["joint"].info["divergences"] == 0


def test_measurement_uncertainty_widens_the_effect_interval(simulated_fits):
    _, _, fits = simulated_fits
    sd = {mode: float(fit.idata["posterior"]["potential_effect"].std()) for mode, fit in fits.items()}
    # 3% allows for the Monte Carlo error of a posterior SD from ~600 draws
    assert sd["joint"] >= 0.97 * sd["plugin"], sd
    assert sd["cut"] >= 0.97 * sd["plugin"], sd


def test_every_mode_keeps_log_likelihood_and_log_prior(simulated_fits):
    inputs, _, fits = simulated_fits
    for mode, fit in fits.items():
        assert fit.idata["log_likelihood"]["share_z"].sizes["row"] == len(inputs.rows)
        assert mode == "joint" or "depth_theta" in fit.idata["measurement"].data_vars
        assert "beta" in fit.idata["log_prior"].data_vars
        # the latent fields keep one log-prior total per draw (power-scaling), never one per alliance
        prior = fit.idata["log_prior"].to_dataset()
        assert "depth_theta" not in prior.data_vars or set(prior["depth_theta"].dims) == {"chain", "draw"}


# ATOP ids of MODEL.md Part A: NATO, the OAS Charter (1948), the Rio Treaty (1947)
NATO, OAS_CHARTER, RIO_TREATY = 3180, 3150, 3075
# issue 6: with the nine items NATO and the OAS Charter were 0.95 +- 0.53 and 0.78 +- 0.55 and
# the joint posterior split on their order; the institutionalisation item must settle it
NATO_ABOVE_OAS_FLOOR = 0.9


def _real_items():
    return pd.read_csv(TABLES_DIR / "alliance_items.csv").sort_values("atopid").reset_index(drop=True)


@pytest.fixture(scope="module")
def real_theta():
    """Draws of theta from Part A alone on the committed ATOP 5.1 item table, default item set."""
    names = list(ITEM_SETS[DEFAULT_ITEM_SET])
    items = _real_items()
    coords = {"alliance": items["atopid"].to_numpy(), "item": names}
    with pm.Model(coords=coords) as model:
        ordered_logit_irt(items[names].astype(float).to_numpy(), names, load_priors()["irt"])
    idata = pm.sample(draws=300, tune=300, chains=2, model=model, nuts_sampler="nutpie", random_seed=3, progressbar=False)
    return idata["posterior"]["depth_theta"]


@pytest.fixture(scope="module")
def real_irt(real_theta):
    """The item table with each alliance's posterior mean depth."""
    return _real_items().assign(theta=real_theta.mean(("chain", "draw")).to_numpy())


@pytest.mark.slow
def test_nato_ranks_above_the_oas_charter(real_theta):
    theta = real_theta
    nato, oas = theta.sel(alliance=NATO), theta.sel(alliance=OAS_CHARTER)
    p_above = float((nato > oas).mean())
    print(f"P(NATO > OAS Charter) = {p_above:.3f}")
    assert p_above >= NATO_ABOVE_OAS_FLOOR
    assert float((nato > theta.sel(alliance=RIO_TREATY)).mean()) >= NATO_ABOVE_OAS_FLOOR


@pytest.mark.slow
def test_depth_ranks_integrated_defence_above_consultation_pacts(real_irt):
    items = real_irt
    integrated = items[(items["intcom"] == 1) & (items["commondef"] == 1)]
    consultation_only = items[(items["consul"] == 1) & (items[["defense", "offense", "neutral"]].sum(axis=1) == 0)]
    assert len(integrated) >= 5 and len(consultation_only) >= 20
    assert integrated["theta"].median() > consultation_only["theta"].quantile(0.9)


@pytest.mark.slow
def test_depth_agrees_with_benson_and_clinton(real_irt):
    common = real_irt.dropna(subset=["bc_depth"])
    r = np.corrcoef(common["theta"], common["bc_depth"])[0, 1]
    print(f"depth vs Benson & Clinton: r = {r:.3f} on {len(common)} alliances")
    assert len(common) > 450
    assert r >= BC_CORRELATION_FLOOR
