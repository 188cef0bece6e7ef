"""Leave-one-state-out influence (sensitivity/influence.py) and data.exclude_countries.

The statistical tests use a conjugate model where leaving a group out has a closed form: a
normal mean with known variance and a normal prior, observations in groups ("states"), and
exact posterior draws in place of MCMC (so the only error is PSIS's and Monte Carlo's).
"""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from scipy import stats

from allypot.data.loaders import load_table
from allypot.inference.config import ConfigError, resolve_config
from allypot.inference.runs import compute_run_id
from allypot.models.sample import select_sample
from allypot.paths import TABLES_DIR
from allypot.sensitivity.influence import (
    compute_influence,
    integrated_log_likelihood,
    refit_config,
    state_log_likelihood,
)

SIGMA = 1.0  # known observation SD
PRIOR_MEAN, PRIOR_SD = 0.0, 10.0
CHAINS, DRAWS = 4, 1000


def normal_posterior(y: np.ndarray) -> tuple[float, float]:
    """Mean and SD of mu | y for y ~ Normal(mu, SIGMA), mu ~ Normal(PRIOR_MEAN, PRIOR_SD)."""
    precision = 1 / PRIOR_SD**2 + len(y) / SIGMA**2
    mean = (PRIOR_MEAN / PRIOR_SD**2 + y.sum() / SIGMA**2) / precision
    return mean, precision**-0.5


def conjugate_fit(y: np.ndarray, states: np.ndarray, rng) -> tuple[xr.DataArray, xr.DataArray]:
    """Exact posterior draws of mu (chain, draw) and the pointwise log likelihood (chain, draw, row)."""
    mean, sd = normal_posterior(y)
    mu = xr.DataArray(rng.normal(mean, sd, size=(CHAINS, DRAWS)), dims=("chain", "draw"))
    log_lik = xr.DataArray(stats.norm.logpdf(y[None, None, :], mu.to_numpy()[..., None], SIGMA),
                           dims=("chain", "draw", "row"))
    return mu, state_log_likelihood(log_lik, states)


@pytest.fixture
def grouped_data():
    """20 states x 10 observations around mu = 1."""
    rng = np.random.default_rng(20011007)
    states = np.repeat(np.arange(100, 120), 10)
    return rng.normal(1.0, SIGMA, size=states.size), states, rng


def test_psis_matches_exact_leave_one_group_out(grouped_data):
    """Mean, median and the 90% interval without each state agree with the closed form to a
    tenth of the posterior SD, and every Pareto k is low."""
    y, states, rng = grouped_data
    mu, state_ll = conjugate_fit(y, states, rng)
    table = compute_influence(mu, state_ll)
    full_sd = normal_posterior(y)[1]
    assert table["pareto_k"].max() < 0.5
    for state, row in table.iterrows():
        mean, sd = normal_posterior(y[states != state])
        exact = {"mean": mean, "median": mean, "q05": mean + stats.norm.ppf(0.05) * sd,
                 "q95": mean + stats.norm.ppf(0.95) * sd}
        for key, value in exact.items():
            assert abs(row[key] - value) < 0.1 * full_sd, (state, key, row[key], value)
    # the change is reported against the full posterior, in its SD
    np.testing.assert_allclose(table["change_mean_sd"], (table["mean"] - float(mu.mean())) / float(mu.std(ddof=1)))


def test_state_with_outlier_is_most_influential(grouped_data):
    y, states, rng = grouped_data
    y = y.copy()
    y[states == 107] += 3.0
    mu, state_ll = conjugate_fit(y, states, rng)
    table = compute_influence(mu, state_ll)
    assert table["change_mean_sd"].abs().idxmax() == 107
    assert table.loc[107, "change_mean"] < 0  # leaving the high state out lowers the mean


def test_cut_fits_keep_equal_mass(grouped_data):
    """A pooled run of two fits (a cut run) is reweighted within each fit: the leave-out mean is
    the average of the two fits' exact leave-out means, not a reweighting across the fits."""
    y, states, rng = grouped_data
    shifted = y + 0.5  # the second fit saw another measurement draw of the data
    mu_a, ll_a = conjugate_fit(y, states, rng)
    mu_b, ll_b = conjugate_fit(shifted, states, rng)
    mu = xr.concat([mu_a, mu_b], "chain")
    state_ll = xr.concat([ll_a, ll_b], "chain")
    groups = [np.arange(CHAINS), np.arange(CHAINS, 2 * CHAINS)]
    table = compute_influence(mu, state_ll, groups)
    full_sd = normal_posterior(y)[1]
    for state in (100, 111):
        keep = states != state
        exact = (normal_posterior(y[keep])[0] + normal_posterior(shifted[keep])[0]) / 2
        assert abs(table.loc[state, "mean"] - exact) < 0.1 * full_sd


def test_state_log_likelihood_sums_rows():
    log_lik = xr.DataArray(np.arange(12.0).reshape(1, 2, 6), dims=("chain", "draw", "row"))
    summed = state_log_likelihood(log_lik, np.array([5, 5, 9, 9, 9, 2]))
    assert list(summed["state"].values) == [2, 5, 9]
    np.testing.assert_allclose(summed.sel(state=9).values, [[2 + 3 + 4, 8 + 9 + 10]])
    with pytest.raises(ValueError, match="row labels"):
        state_log_likelihood(log_lik, np.array([1, 2]))


def test_integrated_hurdle_likelihood_matches_quadrature():
    """One state's hurdle likelihood with both country effects integrated out equals adaptive
    quadrature of the same integrals, draw by draw (a wide and a narrow effect scale)."""
    from scipy import integrate
    from scipy.special import expit

    rng = np.random.default_rng(7)
    positive = np.array([True, False, True, True, False, False, True])
    log_y = np.log(rng.uniform(1e-4, 1e-2, size=positive.sum()))
    for tau_logit, sigma, tau_log in ((2.0, 0.8, 1.5), (0.3, 1.2, 0.2)):
        eta_other = rng.normal(-1, 1, size=positive.size)
        mu_other = log_y + rng.normal(0.5, 0.5, size=log_y.size)

        def logit_integrand(u):
            p = expit(eta_other + u)
            return np.prod(np.where(positive, p, 1 - p)) * stats.norm.pdf(u, 0, tau_logit)

        def log_integrand(v):
            return np.prod(stats.lognorm.pdf(np.exp(log_y), s=sigma, scale=np.exp(mu_other + v))) * stats.norm.pdf(v, 0, tau_log)

        exact = (np.log(integrate.quad(logit_integrand, -12 * tau_logit, 12 * tau_logit, epsabs=0, epsrel=1e-10)[0])
                 + np.log(integrate.quad(log_integrand, -12 * tau_log, 12 * tau_log, epsabs=0, epsrel=1e-10, limit=200)[0]))
        got = integrated_log_likelihood(eta_other, positive, np.array(tau_logit), log_y, mu_other, np.array(sigma),
                                        np.array(tau_log))
        assert abs(got - exact) < 1e-6, (got, exact)


@pytest.fixture(scope="module")
def panel():
    return load_table("panel", TABLES_DIR)


def test_exclude_countries_drops_exactly_that_state(panel):
    columns, years = ["share", "polity2"], (2013, 2014)
    base = select_sample(panel, columns, years)
    without = select_sample(panel, columns, years, exclude_countries=(255,))
    german = base.rows[base.rows["ccode"] == 255]
    assert len(german) == 2
    pd.testing.assert_frame_equal(without.rows, base.rows[base.rows["ccode"] != 255].reset_index(drop=True))
    reasons = dict(without.exclusions)
    assert reasons["ccode 255 (GMY) left out by data.exclude_countries"] == len(german)
    assert len(without.rows) + without.n_excluded == without.n_input  # every row accounted for


def test_exclude_countries_rejects_unknown_state(panel):
    with pytest.raises(ValueError, match=r"data.exclude_countries: \[999\] not a state"):
        select_sample(panel, ["share"], (2013, 2014), exclude_countries=(255, 999))


def test_exclude_countries_config_and_run_id():
    plain = resolve_config({})
    assert plain["data"]["exclude_countries"] == []
    excluded = resolve_config({"data": {"exclude_countries": [255]}})
    assert compute_run_id(excluded, "d") != compute_run_id(plain, "d")
    # an empty list keeps the ids of runs saved before the key existed
    legacy = {**plain, "data": {k: v for k, v in plain["data"].items() if k != "exclude_countries"}}
    assert compute_run_id(plain, "d") == compute_run_id(legacy, "d")
    for bad in ("255", [255, 255], [-1], [True]):
        with pytest.raises(ConfigError, match="data.exclude_countries"):
            resolve_config({"data": {"exclude_countries": bad}})


def test_refit_config_adds_the_state_to_an_old_config():
    legacy = resolve_config({"data": {"first_year": 2013}})
    del legacy["data"]["exclude_countries"]
    refit = refit_config(legacy, 20)
    assert refit["data"]["exclude_countries"] == [20]
    assert refit["data"]["first_year"] == 2013 and refit["priors"] == legacy["priors"]
    assert refit_config(refit, 2)["data"]["exclude_countries"] == [2, 20]


@pytest.fixture(scope="module")
def small_run(small_joint_run):
    """A real joint run (conftest): the smoke config (hurdle, baseline) on 2013-2014, 2 chains x 100 draws."""
    return small_joint_run


@pytest.mark.slow
def test_influence_cli_end_to_end(small_run, tmp_path, capsys):
    """`allypot influence RUN` on a real run: every state of the sample once with its rows, ranked
    by |change|, the integrated weights used (hurdle with country effects), outputs where asked."""
    import json

    from allypot.cli import main

    out = tmp_path / "influence"
    assert main(["influence", str(small_run), "--out", str(out), "--top", "5"]) == 0
    table = pd.read_csv(out / "influence.csv")
    meta = json.loads((small_run / "meta.json").read_text())
    assert table["ccode"].is_unique and table["rows"].sum() == meta["sample"]["rows"]
    assert table["pareto_k"].notna().all() and (table["method"] == "psis").all()
    assert list(table["change_mean_sd"].abs()) == sorted(table["change_mean_sd"].abs(), reverse=True)
    # most states' weights are usable once the country effects are integrated out
    assert (table["pareto_k"] <= 0.7).mean() > 0.8
    printed = capsys.readouterr().out
    assert "integrated PSIS weights" in printed and f"most influential: {table['name'][0]}" in printed
    assert str(out) in printed
    report = (out / "influence.md").read_text()
    assert "country effects integrated over their prior" in report and f"| {table['stateabb'][0]} |" in report
    assert (out / "influence.png").stat().st_size > 10_000


@pytest.mark.slow
def test_refit_of_one_state_is_counted_and_reused(small_run, tmp_path):
    """--refit --max-refits 1 refits the most influential state without its rows (counted in the
    refit's metadata) and a second call finds the refit by its run id instead of fitting again."""
    import json

    from allypot.cli import main

    runs = tmp_path / "runs"
    args = ["influence", str(small_run), "--refit", "--max-refits", "1", "--k-threshold", "0", "--runs", str(runs),
            "--quiet"]
    assert main(args + ["--out", str(tmp_path / "first")]) == 0
    table = pd.read_csv(tmp_path / "first" / "influence.csv")
    refitted = table[table["method"] == "refit"]
    assert len(refitted) == 1
    state = refitted.iloc[0]
    assert state["ccode"] == table["ccode"][table["psis_change_mean_sd"].abs().idxmax()]
    refit_meta = json.loads((Path(state["run"]) / "meta.json").read_text())
    meta = json.loads((small_run / "meta.json").read_text())
    assert refit_meta["sample"]["rows"] == meta["sample"]["rows"] - state["rows"]
    excluded = {reason: n for reason, n in refit_meta["sample"]["excluded"].items() if "exclude_countries" in reason}
    assert list(excluded.values()) == [state["rows"]] and f"ccode {state['ccode']} " in next(iter(excluded))
    assert "1 refitted" in (tmp_path / "first" / "influence.md").read_text()
    assert main(args + ["--out", str(tmp_path / "second")]) == 0
    assert len(list(runs.iterdir())) == 1
    again = pd.read_csv(tmp_path / "second" / "influence.csv")
    assert again.loc[again["method"] == "refit", "run"].tolist() == [state["run"]]
