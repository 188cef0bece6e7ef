"""Log densities by component in a small real joint run (2013-2014, 2 chains x 100 draws) and
``allypot sensitivity`` on it: every likelihood component and prior group is in the folder, the
stored terms equal an independent scipy computation, a folder without them gets the same terms
recomputed from its posterior, and the command writes its table and plots."""

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from scipy import stats
from scipy.special import expit

from allypot.diagnostics.rundata import open_run
from allypot.paths import TABLES_DIR
from allypot.sensitivity.power_scaling import DIAGNOSES, complete_log_densities, rebuild_model

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def small_run(small_joint_run):
    return small_joint_run


def test_joint_run_stores_every_component_as_an_independent_computation_gives_it(small_run):
    """The stored totals against scipy on the stored posterior: ordered-logit items, binomial
    agreement, N(0, 1) thetas, and the Gaussian random walk with its initial distribution."""
    run = open_run(small_run, TABLES_DIR)
    likelihood, prior, post, inputs = run.group("log_likelihood"), run.group("log_prior"), run.posterior, run.inputs
    assert {"share", "treaty_items", "vote_agreement"} <= set(likelihood.data_vars)
    assert likelihood["treaty_items"].sizes["item"] == 10 and likelihood["vote_agreement"].dims == ("chain", "draw")
    model = rebuild_model(run)
    missing = {rv.name for rv in model.free_RVs} - set(prior.data_vars)
    assert not missing, f"free variables without a log prior: {missing}"
    assert prior["depth_theta"].dims == ("chain", "draw") and prior["pref_logit"].dims == ("chain", "draw")
    walk_init = run.config["priors"]["preference"]["walk_init"]["kwargs"]
    observed = np.nonzero(inputs.n_votes > 0)
    for chain, draw in [(0, 0), (1, 57)]:
        at = {name: post[name].isel(chain=chain, draw=draw).to_numpy().astype("float64") for name in post.data_vars}
        theta, logit = at["depth_theta"], at["pref_logit"]
        for j, item in enumerate(inputs.item_names):
            coded = ~np.isnan(inputs.items[:, j])
            codes = inputs.items[coded, j].astype(int)
            cuts = np.concatenate([[-np.inf], at[f"depth_cutpoints_{item}"], [np.inf]])
            eta = at["depth_loading"][j] * theta[coded]
            expected = np.log(expit(cuts[codes + 1] - eta) - expit(cuts[codes] - eta)).sum()
            stored = float(likelihood["treaty_items"].sel(item=item).isel(chain=chain, draw=draw))
            assert stored == pytest.approx(expected, rel=1e-4), item
        votes = stats.binom.logpmf(inputs.n_agree[observed], inputs.n_votes[observed], expit(logit[observed])).sum()
        assert float(likelihood["vote_agreement"].isel(chain=chain, draw=draw)) == pytest.approx(votes, rel=1e-4)
        assert float(prior["depth_theta"].isel(chain=chain, draw=draw)) == pytest.approx(stats.norm.logpdf(theta).sum(), rel=1e-6)
        walk = (stats.norm.logpdf(logit[:, 0], walk_init["mu"], walk_init["sigma"]).sum()
                + stats.norm.logpdf(np.diff(logit, axis=1), 0.0, at["pref_walk_sigma"]).sum())
        assert float(prior["pref_logit"].isel(chain=chain, draw=draw)) == pytest.approx(walk, rel=1e-5)


def test_an_older_folder_gets_the_same_terms_recomputed(small_run):
    run = open_run(small_run, TABLES_DIR)
    full = run.idata
    new_terms = {"log_likelihood": ["treaty_items", "vote_agreement"], "log_prior": ["depth_theta", "pref_logit"]}
    stripped = full.copy()
    for group, names in new_terms.items():
        stripped[group] = xr.DataTree(full[group].to_dataset().drop_vars(names))
    run.idata = stripped
    completed, notes = complete_log_densities(run)
    assert any("rebuilt from config.toml" in n for n in notes)
    for group, names in new_terms.items():
        for name in names:
            np.testing.assert_allclose(completed[group][name].to_numpy(), full[group][name].to_numpy(), rtol=1e-4, atol=0.05)


def test_sensitivity_command_writes_table_markdown_and_plots(small_run, tmp_path, capsys):
    from allypot.cli import main

    out = tmp_path / "psense"
    assert main(["sensitivity", str(small_run), "--out", str(out), "--quiet"]) == 0
    table = pd.read_csv(out / "sensitivity.csv")
    effect = table[table["parameter"] == "potential_effect"]
    assert set(effect.loc[effect["kind"] == "likelihood", "component"]) == {
        "treaty items", "vote agreement", "contribution regression"}
    assert {"depth IRT (loadings, cut-points)", "preference walk scale", "regression coefficients",
            "group-effect scales", "residual scale", "latent fields (hierarchical layer)"} <= set(effect["component"])
    assert set(table["diagnosis"]) <= set(DIAGNOSES)
    assert table["parameter"].str.startswith("depth_theta[").any()
    assert "## By component: diagnosis" in (out / "sensitivity.md").read_text()
    pngs = sorted(out.glob("psense-*.png"))
    assert len(pngs) == 9 and all(p.stat().st_size > 5_000 for p in pngs)
    printed = capsys.readouterr().out
    assert "potential_effect" in printed and str(out) in printed
