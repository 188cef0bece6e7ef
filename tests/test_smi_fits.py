"""Semi-modular inference end to end on a small simulated data set: ``allypot sensitivity RUN
--eta 0,1`` on a cut run fits smi at each eta; smi at eta 0 gives the cut run's draws, smi at
eta 1 agrees with the joint posterior within Monte Carlo error, and a second call reads the run
folders back instead of refitting. (An intermediate eta is not checked here: it costs another
stage-one compilation, and "between cut and joint" is guaranteed only in Gaussian-linear models.)"""

import numpy as np
import pandas as pd
import pytest
import arviz as az
from allypot.cli import main
from allypot.inference import fit
from allypot.inference.config import resolve_config
from allypot.inference.runs import load_run
from allypot.models.simulate import simulate_inputs
from allypot.sensitivity.eta_path import eta_path

from allypot.paths import TABLES_DIR

pytestmark = pytest.mark.slow

SAMPLER = {"chains": 2, "draws": 300, "tune": 300}
CUT = {"measurement_draws": 8, "draws_per_fit": 200, "tune_per_fit": 300}


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    """A cut run, the eta path from it (0, 1) and a joint run, all of one config."""
    runs = tmp_path_factory.mktemp("runs")
    # few votes make the measures uncertain and a large beta makes the outcome informative, so
    # the outcome has something to feed back
    inputs, _ = simulate_inputs(n_alliances=30, n_us_alliances=5, n_countries=10, n_years=5, beta=1.5,
                                votes_per_year=15, seed=7)
    patch = pytest.MonkeyPatch()
    patch.setattr(fit, "load_inputs", lambda config, tables_dir: inputs)
    user = {"run": {"name": "smi", "seed": 11}, "model": {"family": "gaussian", "mode": "cut"},
            "sampler": SAMPLER, "cut": CUT}
    cut = fit.fit_config(resolve_config(user), TABLES_DIR, runs, progress=False).path
    out = runs / "eta-path"
    code = main(["sensitivity", str(cut), "--eta", "1,0", "--runs", str(runs), "--out", str(out),
                 "--tables", str(TABLES_DIR), "--quiet"])
    user["model"]["mode"] = "joint"
    joint = fit.fit_config(resolve_config(user), TABLES_DIR, runs, progress=False).path
    yield {"runs": runs, "cut": cut, "joint": joint, "out": out, "code": code, "config": resolve_config(user)}
    patch.undo()


def _effect(path):
    return load_run(path)[0]["posterior"]["potential_effect"]


def test_eta_path_writes_its_table_plot_and_smi_runs(fitted):
    table = pd.read_csv(fitted["out"] / "eta_path.csv")
    assert table["eta"].tolist() == [0.0, 1.0] and (table["status"] == "fitted").all()
    assert {"median", "q05", "q95", "rhat", "ess_bulk", "seconds", "run"} <= set(table.columns)
    assert (table["q05"] < table["median"]).all() and (table["median"] < table["q95"]).all()
    assert (fitted["out"] / "eta_path.png").stat().st_size > 0 and "cut to joint" in (fitted["out"] / "eta_path.md").read_text()
    for row in table.itertuples():
        _, config, meta = load_run(row.run)
        assert config["model"]["mode"] == "smi" and config["model"]["eta"] == meta["eta"] == row.eta
        assert meta["sampler"]["eta"] == row.eta and meta["sampler"]["cut_fits"] == CUT["measurement_draws"]
        if row.eta > 0:  # stage one's own diagnostics (eta 0 has no auxiliary regression)
            assert 0.99 < meta["sampler"]["smi_auxiliary_effect_rhat"] < 1.1
    assert fitted["code"] == (0 if table["converged"].all() else 1)


def test_smi_at_eta_zero_is_the_cut_run(fitted):
    table = pd.read_csv(fitted["out"] / "eta_path.csv").set_index("eta")
    np.testing.assert_array_equal(_effect(table.loc[0.0, "run"]).to_numpy(), _effect(fitted["cut"]).to_numpy())


def _mean_and_sd_with_errors(effect, n_fits=None):
    """Posterior mean and SD, each with its Monte Carlo standard error.

    A pooled smi posterior is ``n_fits`` fits of 2 chains each, one measurement draw per fit:
    its mean's error is the spread of the fit means over sqrt(n_fits) (the few measurement
    draws dominate); the SD's error is ArviZ's, which counts the fits' differences as
    between-chain variance and so is conservative."""
    values = effect.to_numpy()
    mcse_sd = float(az.mcse(effect, method="sd"))
    if n_fits is None:
        return values.mean(), float(az.mcse(effect)), values.std(), mcse_sd
    fit_means = values.reshape(n_fits, -1).mean(axis=1)
    return values.mean(), fit_means.std(ddof=1) / np.sqrt(n_fits), values.std(), mcse_sd


def test_smi_at_eta_one_agrees_with_joint(fitted):
    table = pd.read_csv(fitted["out"] / "eta_path.csv").set_index("eta")
    n = CUT["measurement_draws"]
    mean_1, se_1, sd_1, se_sd_1 = _mean_and_sd_with_errors(_effect(table.loc[1.0, "run"]), n)
    mean_j, se_j, sd_j, se_sd_j = _mean_and_sd_with_errors(_effect(fitted["joint"]))
    assert abs(mean_1 - mean_j) < 4 * np.hypot(se_1, se_j), (mean_1, mean_j, se_1, se_j)
    assert abs(sd_1 - sd_j) < 4 * np.hypot(se_sd_1, se_sd_j), (sd_1, sd_j, se_sd_1, se_sd_j)


def test_a_second_eta_path_reads_the_run_folders_back(fitted):
    before = sorted(p.name for p in fitted["runs"].iterdir())
    table = eta_path(fitted["config"], [0.0, 1.0], TABLES_DIR, fitted["runs"], progress=False)
    assert (table["status"] == "cached").all()
    assert sorted(p.name for p in fitted["runs"].iterdir()) == before
