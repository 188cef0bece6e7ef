"""diagnose and figures on a small real run: a copy of the session's shared joint run (the
smoke config, joint, hurdle, baseline, on the bundled tables for 2013-2014, two short chains;
tests/conftest.py), since diagnose writes its report into the run folder."""

import json
import shutil

import numpy as np
import pytest

from allypot.paths import TABLES_DIR

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def small_run(small_joint_run, tmp_path_factory):
    copy = tmp_path_factory.mktemp("runs") / small_joint_run.name
    shutil.copytree(small_joint_run, copy)
    return copy


def test_diagnose_writes_report_with_every_check(small_run, capsys):
    """The CLI end to end: every check reported once, figures written, exit status = verdict,
    default report folder inside the run, thresholds from the command line honoured."""
    from allypot.cli import main

    status = main(["diagnose", str(small_run), "--ppc-draws", "50", "--rhat-max", "1.02"])
    out = small_run / "diagnose"
    saved = json.loads((out / "verdict.json").read_text())
    assert status == (1 if saved["verdict"] == "FAIL" else 0)
    assert saved["thresholds"]["rhat_max"] == 1.02
    run_checks = saved["runs"][small_run.name]["checks"]
    for expected in ("convergence: R-hat", "convergence: bulk ESS", "convergence: tail ESS",
                     "multimodality: chains in different places", "sampler: divergences", "sampler: E-BFMI",
                     "fit: posterior predictive, outcome", "fit: posterior predictive, votes",
                     "fit: posterior predictive, treaty items", "LOO: Pareto k", "fit: LOO-PIT uniformity",
                     "measurement: NATO deeper than the OAS Charter"):
        assert expected in run_checks
    rhat = run_checks["convergence: R-hat"]
    assert rhat["passed"] == (rhat["value"] <= 1.02)
    order = run_checks["measurement: NATO deeper than the OAS Charter"]  # a joint run: its posterior has depth
    assert order["passed"] == (order["value"] >= saved["thresholds"]["nato_above_oas_p_min"])
    assert "NATO (3180) deeper than the OAS Charter (3150) in" in (out / "report.md").read_text()
    for figure in ("rank", "energy", "ppc_outcome", "ppc_statistics", "pareto_k", "loo_pit"):
        assert (out / f"run1-{figure}.png").stat().st_size > 10_000
    html = (out / "report.html").read_text()
    assert f"Verdict: {saved['verdict']}" in html and html.count("data:image/png;base64,") >= 6
    printed = capsys.readouterr().out
    assert printed.startswith(f"allypot diagnose: {saved['verdict']}") and str(out / "report.html") in printed


def test_replicated_outcome_matches_observed_scale(small_run):
    """The posterior predictive of the hurdle outcome reproduces the observed share of zeros
    roughly (a model with an intercept in its logit part cannot miss it by much)."""
    from allypot.diagnostics.predictive import compute_predictive, share_scale
    from allypot.diagnostics.rundata import open_run

    run = open_run(small_run, TABLES_DIR)
    y, y_rep = share_scale(run, compute_predictive(run, max_draws=50))
    assert y_rep.shape[1] == y.size
    assert abs(np.mean(y_rep <= 0) - np.mean(y <= 0)) < 0.05
    assert (y_rep >= 0).all()


def test_hand_computed_expected_share_equals_the_models(small_run):
    """figures.expected_share (from parameters by name) reproduces the model's own
    ``expected_share`` deterministic, so predictions stay right if that is slimmed away."""
    from allypot.diagnostics.figures import _stacked, expected_share
    from allypot.diagnostics.rundata import open_run, potential_draws

    import pymc as pm
    from allypot.inference.config import model_options, priors_from_config
    from allypot.models.compose import build_joint_model

    run = open_run(small_run, TABLES_DIR)
    inputs = run.inputs
    mine = expected_share(run, _stacked(potential_draws(run)), inputs.controls, inputs.country_idx, inputs.year_idx)
    # run folders do not store the per-row deterministic: recompute it with the model from the
    # stored free variables (which every run folder keeps)
    model = build_joint_model(inputs, model_options(run.config), priors_from_config(run.config))
    free = [rv.name for rv in model.free_RVs]
    models_own = pm.compute_deterministics(run.posterior[free], var_names=["expected_share"], model=model,
                                           progressbar=False)
    np.testing.assert_allclose(mine, _stacked(models_own["expected_share"]), rtol=2e-3, atol=1e-7)


def test_figures_written_as_png_and_pdf(small_run, tmp_path):
    from allypot.cli import main

    assert main(["figures", str(small_run), "--out", str(tmp_path)]) == 0
    stems = {p.stem for p in tmp_path.glob("*.png")}
    assert stems == {p.stem for p in tmp_path.glob("*.pdf")}
    assert stems == {"fig1_rank_troops_vs_share", "fig2_contribution_vs_potential", "fig3_predicted_contribution",
                     "residuals_by_state", "us_alliance_depth", "preference_paths"}
    for path in tmp_path.glob("*.png"):
        assert path.stat().st_size > 20_000


def test_figure_data_are_consistent(small_run):
    from allypot.diagnostics import figures
    from allypot.diagnostics.rundata import open_run

    run = open_run(small_run, TABLES_DIR)
    ranks, excluded = figures.compute_rank_comparison(run)
    assert set(ranks["rank_troops"]) & set(range(1, 16)) == set(range(1, 16))  # the top 15 by troops are all there
    assert all(n >= 0 for n in excluded.values())
    predicted = figures.compute_predicted_contribution(run)
    assert (predicted["share_low"] <= predicted["share_median"]).all()
    assert (predicted["share_median"] <= predicted["share_high"]).all()
    assert np.allclose(predicted["troops_median"], predicted["share_median"] * predicted.attrs["mean_armed_forces"])
    by_state = figures.compute_potential_by_state(run)
    assert by_state["rows"].sum() == len(run.inputs.rows)
    assert (by_state["potential_low"] <= by_state["potential_high"]).all()
    depth = figures.compute_us_depth(run)
    assert depth["median"].between(0, 1).all() and set(depth["atopid"]) == set(run.us_alliances)
    with pytest.raises(ValueError, match="not in the run's sample"):
        figures.compute_preference_paths(run, ["NOT_A_STATE"])
