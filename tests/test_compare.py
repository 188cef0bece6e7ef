"""`allypot compare` end to end on a small simulated data set: the modes run cheapest first,
each effect is printed as soon as it is ready, and every run folder is named by its mode and
keeps what diagnostics need without the per-row deterministics."""

import re
import time

import numpy as np

import pytest
from allypot.inference import fit
from allypot.inference.config import model_options, priors_from_config, resolve_config
from allypot.models.compose import build_contribution_model, build_joint_model
from allypot.inference.modes import MEASUREMENT_DRAWS_PER_CHAIN, fit_measurement
from allypot.inference.runs import load_run
from allypot.models.simulate import simulate_inputs

from allypot.paths import TABLES_DIR

DRAWS = 600


@pytest.mark.slow
def test_compare_prints_each_mode_cheapest_first_and_saves_lean_runs(tmp_path, monkeypatch, capsys):
    inputs, _ = simulate_inputs(n_alliances=60, n_us_alliances=6, n_countries=12, n_years=5, family="hurdle", seed=3)
    monkeypatch.setattr(fit, "load_inputs", lambda config, tables_dir: inputs)
    config = resolve_config({
        "run": {"name": "small", "seed": 3},
        "model": {"family": "hurdle"},
        "sampler": {"chains": 2, "draws": DRAWS, "tune": 150},
        "cut": {"measurement_draws": 2, "draws_per_fit": 50, "tune_per_fit": 100},
    })
    measurement_seconds = []

    def timed_measurement(*args, **kwargs):
        started = time.perf_counter()
        result = fit_measurement(*args, **kwargs)
        measurement_seconds.append(time.perf_counter() - started)
        return result

    monkeypatch.setattr(fit, "fit_measurement", timed_measurement)
    started = time.perf_counter()
    table, paths = fit.compare_modes(config, TABLES_DIR, tmp_path, progress=True)
    wall = time.perf_counter() - started
    out, err = capsys.readouterr()

    ready = [m.group(1) for m in re.finditer(r"^==> (\w+):", out, flags=re.MULTILINE)]
    assert ready == ["measurement", "plugin", "cut", "joint"]
    # each effect line comes before the next mode starts
    assert out.index("==> plugin:") < out.index("cut mode on") < out.index("==> cut:") < out.index("joint mode on")
    assert "compiling the joint model" in out and "saving the joint run folder" in out
    # the cut fits say what they are and how far along (a tqdm bar on stderr)
    assert "compiling the contribution regression once for 2 fits" in out and "regression per measurement draw" in err
    assert list(table.index) == ["plugin", "cut", "joint"]
    assert {"median", "q05", "q95", "rhat", "ess_bulk"} <= set(table.columns)

    options, priors = model_options(config), priors_from_config(config)
    free = {"joint": {rv.name for rv in build_joint_model(inputs, options, priors).free_RVs}}
    free["plugin"] = free["cut"] = {
        rv.name for rv in build_contribution_model(inputs, options, priors, np.zeros(len(inputs.rows))).free_RVs}
    # each mode's time counts from its own start: counted from the start of the comparison
    # (as they once were), the three would add up to more than the comparison's wall time
    totals = {mode: load_run(path)[2]["timings_s"]["total_s"] for mode, path in paths.items()}
    assert sum(totals.values()) + measurement_seconds[0] <= wall, (totals, measurement_seconds, wall)
    for mode, path in paths.items():
        assert path.name.split("-")[1] == mode
        idata, config_saved, meta = load_run(path)
        assert config_saved["model"]["mode"] == mode and "warnings" in meta["health"]
        post = idata["posterior"]
        assert "expected_share" not in post.data_vars and "potential_effect" in post.data_vars
        # the free variables stay, so the posterior predictive uses the posterior's group effects
        assert free[mode] <= set(post.data_vars), sorted(free[mode] - set(post.data_vars))
        assert "log_likelihood" in idata.children and "log_prior" in idata.children
        assert idata["measurement"].sizes["draw"] == DRAWS // (DRAWS // MEASUREMENT_DRAWS_PER_CHAIN)
        assert {"depth_theta", "pref_row", "potential"} <= set(idata["measurement"].data_vars)
    (report,) = tmp_path.glob("*-small-compare.md")
    assert "joint vs cut vs plug-in" in report.read_text()
