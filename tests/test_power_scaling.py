"""Power-scaling sensitivity on conjugate normal models whose answer is known in closed form.

y_i ~ N(mu, 1) (n = 20, mean 0) and one far noisier measurement z ~ N(mu, 30); mu ~ N(m0, s0).
The posterior is normal and drawn exactly, so the only question is whether the diagnosis words
come out as the paper says: a prior ten posterior SDs away from the data is in conflict with it,
a vague prior is fine, a tight prior with one observation dominates, and the noisy z informs
nothing.
"""

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from scipy import stats

from allypot.sensitivity.power_scaling import compute_power_scaling, diagnose, prior_group

CHAINS, DRAWS = 4, 1000


def conjugate_idata(prior_mu: float, prior_sd: float, y: np.ndarray, z_sd: float = 30.0, seed: int = 1) -> xr.DataTree:
    z = np.array([0.0])
    precision = 1 / prior_sd**2 + len(y) + len(z) / z_sd**2
    mean = (prior_mu / prior_sd**2 + y.sum() + z.sum() / z_sd**2) / precision
    mu = np.random.default_rng(seed).normal(mean, precision**-0.5, (CHAINS, DRAWS))
    sample = ("chain", "draw")
    return xr.DataTree.from_dict({
        "posterior": xr.Dataset({"mu": (sample, mu)}),
        "log_prior": xr.Dataset({"mu": (sample, stats.norm.logpdf(mu, prior_mu, prior_sd))}),
        "log_likelihood": xr.Dataset({
            "y": (sample + ("obs",), stats.norm.logpdf(y[None, None, :], mu[..., None], 1.0)),
            "z": (sample, stats.norm.logpdf(z[0], mu, z_sd)),
            # a term unrelated to mu whose total varies by 30 log units between draws, as the treaty
            # items' and votes' do in the real joint run: only the noise floor keeps it from counting
            "noise": (sample, np.random.default_rng(seed + 1).normal(0.0, 30.0, (CHAINS, DRAWS))),
        }),
    })


@pytest.fixture(scope="module")
def y():
    values = np.random.default_rng(7).normal(0.0, 1.0, 20)
    return values - values.mean()


def cell(table: pd.DataFrame, component: str) -> pd.Series:
    (row,) = table[(table["parameter"] == "mu") & (table["component"] == component)].itertuples(index=False)
    return pd.Series(row._asdict())


def run(idata, components=("y", "z")):
    return compute_power_scaling(idata, ["mu"], prior_groups={"mu prior": ["mu"]},
                                 likelihood_components={c: [c] for c in components}, permutations=2).table


def test_prior_far_from_the_data_is_a_prior_data_conflict(y):
    table = run(conjugate_idata(prior_mu=3.0, prior_sd=0.25, y=y))
    overall = cell(table, "all top-level priors vs all likelihood")
    assert overall["sensitivity"] > max(0.05, overall["noise_floor"])
    assert overall["likelihood_sensitivity"] > max(0.05, overall["likelihood_noise_floor"])
    assert overall["diagnosis"] == "prior-data conflict"
    assert cell(table, "mu prior")["diagnosis"] == "prior-data conflict"
    assert cell(table, "y")["diagnosis"] == "prior-data conflict"


def test_vague_prior_is_fine_and_the_noisy_component_informs_nothing(y):
    table = run(conjugate_idata(prior_mu=0.0, prior_sd=10.0, y=y))
    assert cell(table, "all top-level priors vs all likelihood")["diagnosis"] == "fine"
    assert cell(table, "mu prior")["sensitivity"] < 0.05
    assert cell(table, "y")["diagnosis"] == "fine"
    assert cell(table, "z")["sensitivity"] < 0.01
    assert cell(table, "z")["diagnosis"] == "weak likelihood / uninformative"


def test_a_noisy_unrelated_component_stays_under_its_noise_floor(y):
    noise = cell(run(conjugate_idata(prior_mu=0.0, prior_sd=10.0, y=y), components=("y", "noise")), "noise")
    assert noise["sensitivity"] > 0.05, "the raw value alone would count"
    assert noise["noise_floor"] >= noise["sensitivity"] / 2
    assert noise["diagnosis"] == "weak likelihood / uninformative"


def test_tight_prior_with_one_observation_is_strong_prior_weak_likelihood(y):
    table = run(conjugate_idata(prior_mu=0.0, prior_sd=0.05, y=y[:1] + 1.0))
    overall = cell(table, "all top-level priors vs all likelihood")
    assert overall["diagnosis"] == "strong prior / weak likelihood", overall


def test_diagnosis_words_and_prior_groups():
    assert [diagnose(p, lik) for p, lik in [(True, True), (True, False), (False, False), (False, True)]] == [
        "prior-data conflict", "strong prior / weak likelihood", "weak likelihood / uninformative", "fine"]
    groups = {name: prior_group(name) for name in ["depth_loading", "depth_cutpoints_base", "depth_theta", "pref_logit",
                                                    "pref_walk_sigma", "log_beta", "logit_gamma_orth", "log_intercept_orth",
                                                    "log_country_effect_sigma", "log_country_effect_centred",
                                                    "log_year_effect_level_mean", "log_country_effect_deviation",
                                                    "logit_year_effect_offset", "log_sigma"]}
    assert groups == {
        "depth_loading": "depth IRT (loadings, cut-points)", "depth_cutpoints_base": "depth IRT (loadings, cut-points)",
        "depth_theta": "latent fields (hierarchical layer)", "pref_logit": "latent fields (hierarchical layer)",
        "pref_walk_sigma": "preference walk scale", "log_beta": "regression coefficients",
        "logit_gamma_orth": "regression coefficients", "log_intercept_orth": "regression coefficients",
        "log_country_effect_sigma": "group-effect scales", "log_country_effect_centred": "latent fields (hierarchical layer)",
        "log_year_effect_level_mean": "latent fields (hierarchical layer)",
        "log_country_effect_deviation": "latent fields (hierarchical layer)",
        "logit_year_effect_offset": "latent fields (hierarchical layer)", "log_sigma": "residual scale",
    }


def test_sensitivity_without_a_run_folder_says_so(capsys):
    from allypot.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["sensitivity"])
    assert exit_info.value.code == 2 and "RUN" in capsys.readouterr().err


def test_sensitivity_refuses_an_existing_output_folder(tmp_path, capsys):
    from allypot.cli import main

    assert main(["sensitivity", str(tmp_path / "some-run"), "--out", str(tmp_path)]) == 2
    assert "already exists" in capsys.readouterr().err
