"""Simulation-based calibration: the rank machinery on a conjugate model, then the command end to end."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from allypot.sensitivity.sbc import (
    Quantity,
    SbcSettings,
    calibration_table,
    parse_years,
    plot_rank_ecdfs,
    rank_of_truth,
    uniformity_check,
)

N_SIMS, N_OBS, CHAINS, DRAWS = 400, 5, 2, 200


def conjugate_pits(seed: int, sd_factor: float = 1.0, shift_sd: float = 0.0) -> np.ndarray:
    """SBC of theta ~ N(0, 1), y_i ~ N(theta, 1), i = 1..N_OBS, with exact posterior draws.

    The posterior is N(sum(y) / (N_OBS + 1), 1 / (N_OBS + 1)); ``sd_factor`` < 1 makes it
    over-confident, ``shift_sd`` moves it by that many posterior SDs: both miscalibrated.
    """
    rng = np.random.default_rng(seed)
    pits = []
    for _ in range(N_SIMS):
        theta = rng.normal()
        y = rng.normal(theta, 1.0, size=N_OBS)
        sd = np.sqrt(1 / (N_OBS + 1))
        mean = y.sum() / (N_OBS + 1) + shift_sd * sd
        draws = rng.normal(mean, sd * sd_factor, size=(CHAINS, DRAWS))
        pits.append(rank_of_truth(theta, draws, rng)["pit"])
    return np.array(pits)


def test_exact_posterior_draws_pass_the_uniformity_checks():
    check = uniformity_check(conjugate_pits(seed=11))
    assert check["band_pass"]
    assert check["ks_pvalue"] > 0.01
    assert abs(check["mean_pit"] - 0.5) < 3 * check["mean_pit_se"]


@pytest.mark.parametrize("miscalibration", [{"sd_factor": 0.6}, {"shift_sd": 0.5}, {"sd_factor": 1.6}],
                         ids=["over-confident", "shifted", "under-confident"])
def test_a_miscalibrated_posterior_fails_the_band_check(miscalibration):
    check = uniformity_check(conjugate_pits(seed=11, **miscalibration))
    assert not check["band_pass"]
    assert check["ks_pvalue"] < 0.01 or miscalibration.get("sd_factor", 1) > 1  # KS is weak against a hump


def test_a_posterior_shifted_up_puts_the_truth_low():
    """mean PIT < 0.5 is the signature of a model that overestimates (the report says so)."""
    check = uniformity_check(conjugate_pits(seed=12, shift_sd=0.5))
    assert check["mean_pit"] < 0.5 - 3 * check["mean_pit_se"]


def test_rank_counts_the_draws_below_the_truth_after_thinning():
    rng = np.random.default_rng(0)
    shuffled = rng.permutation(np.arange(200, dtype=float)).reshape(2, 100)  # 51 of them below 50.5
    result = rank_of_truth(50.5, shuffled, rng)
    assert result["n_thinned"] >= 100  # independent draws are barely thinned
    assert abs(result["rank"] / result["n_thinned"] - 51 / 200) < 0.05
    # a strongly autocorrelated chain (a random walk) is thinned to far fewer draws
    walk = np.cumsum(rng.normal(size=(2, 400)), axis=1)
    thinned = rank_of_truth(0.0, walk, rng)
    assert thinned["n_thinned"] < 100
    assert 0 <= thinned["rank"] <= thinned["n_thinned"]
    assert thinned["rank"] / (thinned["n_thinned"] + 1) <= thinned["pit"] <= (thinned["rank"] + 1) / (thinned["n_thinned"] + 1)


def test_calibration_table_and_plot_name_each_quantity():
    good, bad = conjugate_pits(seed=3)[:200], conjugate_pits(seed=3, sd_factor=0.5)[:200]
    ranks = pd.DataFrame({
        "simulation": np.tile(np.arange(200), 2), "quantity": ["good"] * 200 + ["bad"] * 200,
        "truth": 0.0, "posterior_mean": 0.0, "posterior_sd": 1.0, "rank": 0, "n_thinned": DRAWS,
        "pit": np.concatenate([good, bad]), "ess_bulk": 400.0, "rhat": 1.0, "divergences": 0, "fit_s": 1.0})
    table, bands = calibration_table(ranks, [Quantity("good", "x", None, "good"), Quantity("bad", "x", None, "bad")])
    assert table.set_index("quantity")["band_95_pass"].to_dict() == {"good": True, "bad": False}
    fig = plot_rank_ecdfs(table, bands)
    titles = [ax.get_title() for ax in fig.axes if ax.get_visible()]
    assert len(titles) == 2 and "OUTSIDE" in titles[1] and "inside" in titles[0]


def test_settings_and_years_are_checked():
    assert parse_years("2013-2014") == (2013, 2014) and parse_years("2010") == (2010, 2010)
    with pytest.raises(ValueError, match="FIRST-LAST"):
        parse_years("2013:2014")
    with pytest.raises(ValueError, match="sims"):
        SbcSettings(sims=0)
    with pytest.raises(ValueError, match="first year"):
        SbcSettings(first_year=2014, last_year=2013)


@pytest.mark.slow
def test_tiny_real_design_sbc_runs_end_to_end_through_the_cli(tmp_path, capsys):
    """2 simulations on the 2013-2014 design, 2 chains x 50 draws: the joint model's compilation dominates."""
    import json

    from allypot.cli import main

    out = tmp_path / "sbc"
    code = main(["sbc", "--sims", "2", "--draws", "50", "--tune", "100", "--chains", "2", "--years", "2013-2014",
                 "--seed", "5", "--out", str(out), "--workers", "1"])
    assert code == 0, capsys.readouterr().out
    ranks = pd.read_csv(out / "ranks.csv")
    quantities = {"potential_effect", "logit_beta", "log_beta", "pref_walk_sigma", "depth_theta_3180", "depth_theta_3150"}
    assert quantities <= set(ranks["quantity"])
    assert sorted(ranks["simulation"].unique()) == [0, 1]
    assert ((ranks["rank"] >= 0) & (ranks["rank"] <= ranks["n_thinned"]) & ranks["pit"].between(0, 1)).all()
    # each simulation has its own truth (the prior draws differ)
    truths = ranks.pivot(index="simulation", columns="quantity", values="truth")
    assert (truths.loc[0] != truths.loc[1]).all()
    settings = json.loads((out / "settings.json").read_text())
    assert settings["settings"] | {"sims": 2, "draws": 50, "seed": 5} == settings["settings"]
    assert settings["data_hash"] and settings["versions"]["pymc"]
    assert (out / "rank_ecdf.png").stat().st_size > 0
    assert "Verdict" in (out / "summary.md").read_text()
    assert set(pd.read_csv(out / "calibration.csv")["quantity"]) == set(ranks["quantity"])


def test_sbc_options_show_their_defaults_and_output_goes_to_a_new_folder_under_runs(tmp_path, monkeypatch, capsys):
    import argparse
    from contextlib import nullcontext

    import allypot.sensitivity.grid as grid
    import allypot.sensitivity.sbc as sbc
    from allypot.cli import HelpFormatter, build_parser, main

    (sub,) = [a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
    parser = sub.choices["sbc"]
    for action in parser._actions:
        if not isinstance(action, argparse._HelpAction):
            assert action.help, f"allypot sbc {action.dest}: no help text"
            if action.default not in (None, False):
                assert "default" in HelpFormatter("sbc")._get_help_string(action), action.dest
    calls = []

    def fake_run_sbc(config, tables_dir, settings, client, out):
        calls.append((settings, Path(out)))
        Path(out).mkdir(parents=True)
        (Path(out) / "summary.md").write_text("# SBC\n")
        return sbc.SbcOutcome(Path(out), pd.DataFrame(), pd.DataFrame(columns=["simulation", "error"]))

    monkeypatch.setattr(sbc, "run_sbc", fake_run_sbc)
    monkeypatch.setattr(grid, "dask_client", lambda *args, **kwargs: nullcontext(None))
    monkeypatch.chdir(tmp_path)
    assert main(["sbc", "--sims", "3", "--years", "2012-2014"]) == 0
    ((settings, out),) = calls
    assert out.parent == Path("runs") and out.name.endswith("-sbc-joint_default")
    assert (settings.sims, settings.first_year, settings.last_year) == (3, 2012, 2014)
    assert main(["sbc", "--years", "2014:2012"]) == 2
    assert "FIRST-LAST" in capsys.readouterr().err


def test_observations_become_swappable_data_and_simulations_carry_their_truth():
    import pymc as pm
    from pytensor.compile.sharedvalue import SharedVariable
    from pytensor.graph.traversal import ancestors

    from allypot.sensitivity.sbc import simulate_datasets, with_observations_as_data

    with pm.Model() as model:
        cut = pm.Normal("cut", 0, 1, shape=2, transform=pm.distributions.transforms.ordered, initval=[-1.0, 1.0])
        pm.Normal("y", cut.sum(), 1.0, observed=np.zeros(3))
    rebuilt = with_observations_as_data(model)
    assert model.rvs_to_initial_values[model["cut"]] is not None  # the original keeps its initial values
    np.testing.assert_allclose(rebuilt.initial_point()["cut_ordered__"], model.initial_point()["cut_ordered__"])
    point = model.initial_point()
    logp = rebuilt.compile_logp()
    assert logp(point) == pytest.approx(model.compile_logp()(point))
    (shared,) = [v for v in ancestors([rebuilt.logp()]) if isinstance(v, SharedVariable) and v.name == "y_simulated"]
    shared.set_value(np.full(3, 4.0))
    assert logp(point) < model.compile_logp()(point) - 10  # the swapped data moved the likelihood

    quantity = Quantity("cut_1", "cut", {"cut_dim_0": 1}, "cut 1")
    sims = simulate_datasets(model, [quantity], sims=3, seed=1)
    assert [s.index for s in sims] == [0, 1, 2]
    assert len({s.truth["cut_1"] for s in sims}) == 3 and all(s.observations["y"].shape == (3,) for s in sims)
    again = simulate_datasets(model, [quantity], sims=3, seed=1)
    assert [s.truth for s in again] == [s.truth for s in sims]  # seeded
