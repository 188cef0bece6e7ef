"""Specification grid: expansion, up-front validation, Dask fits, caching by run id, failures."""

import time
from pathlib import Path

import arviz as az
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import xarray as xr
from allypot.diagnostics.summary import headline_summary
from allypot.inference.runs import compute_run_id, data_hash, load_run, package_versions, run_data_files, write_run
from allypot.paths import REPO_ROOT, TABLES_DIR
from allypot.sensitivity.grid import (
    CONVERGED_LABEL,
    NOT_CONVERGED_LABEL,
    GridError,
    cached_summary,
    collect_grid,
    dask_client,
    grid_report,
    load_grid,
    one_at_a_time_moves,
    parse_overrides,
    plan_grid,
    plot_forest,
    run_grid,
    write_grid_outputs,
)

from allypot.cli import main

GRIDS = REPO_ROOT / "sensitivity" / "grids"


def _write(tmp_path: Path, text: str, name: str = "grid.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_axes_and_exclusions_expand_to_the_remaining_combinations(tmp_path):
    grid = load_grid(_write(tmp_path, """
[base]
sampler = { chains = 1, draws = 10, tune = 10 }
[axes]
"model.family" = ["hurdle", "gaussian"]
"model.mode" = ["plugin", "cut", "joint"]
"priors.hurdle.beta_log.kwargs.sigma" = [1.0, 2.5]
[[exclude]]
reason = "too slow"
"model.family" = "gaussian"
"model.mode" = ["joint", "cut"]
"""))
    plan = plan_grid(grid, TABLES_DIR)
    assert len(plan.cells) + len(plan.excluded) == 12
    assert len(plan.excluded) == 4 and {reason for _, reason in plan.excluded} == {"too slow"}
    assert all(values["model.family"] == "gaussian" and values["model.mode"] != "plugin" for values, _ in plan.excluded)
    assert len({cell.run_id for cell in plan.cells}) == 8
    for cell in plan.cells:
        assert cell.config["model"]["family"] == cell.values["model.family"]
        assert cell.config["priors"]["hurdle"]["beta_log"]["kwargs"]["sigma"] == cell.values["priors.hurdle.beta_log.kwargs.sigma"]
        assert cell.config["priors"]["hurdle"]["beta_log"]["dist"] == "Normal"  # only the scale was overridden
        assert cell.config["sampler"]["draws"] == 10 and cell.config["run"]["name"] == "grid"


def test_bad_axes_are_named_together(tmp_path):
    path = _write(tmp_path, """
[axes]
"model.famly" = ["hurdle"]
"data.build_rules.placemat_rule" = ["nearest", "max"]
"model.mode" = []
[[exclude]]
"model.specification" = "all"
""")
    with pytest.raises(GridError) as err:
        load_grid(path)
    message = str(err.value)
    assert "model.famly: unknown key (did you mean 'family'?)" in message
    assert "data.build_rules.placemat_rule: not supported yet" in message and "data.panel" in message
    assert "axes.model.mode = []" in message
    assert "exclude #1: give a reason" in message and "'model.specification' is not an axis" in message


def test_invalid_cells_fail_validation_before_any_fit(tmp_path, capsys):
    grid = _write(tmp_path, """
[axes]
"model.family" = ["hurdle", "gausian"]
"model.mode" = ["plugin", "cutt"]
""")
    runs = tmp_path / "runs"
    assert main(["grid", str(grid), "--runs", str(runs), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "3 invalid cell(s); nothing was fitted" in err
    assert "cell (family=gausian, mode=plugin)" in err and "cell (family=hurdle, mode=cutt)" in err
    assert "cell (family=gausian, mode=cutt)" in err
    assert not runs.exists() and not (tmp_path / "out").exists()


def test_one_at_a_time_moves_each_axis_alone_from_the_reference(tmp_path):
    grid = load_grid(_write(tmp_path, """
[grid]
design = "one_at_a_time"
[axes]
"model.mode" = ["joint", "cut", "plugin"]
"model.specification" = ["political", "baseline"]
"priors.hurdle.beta_log.kwargs.sigma" = [2.5, 1.0, 10.0]
[[exclude]]
reason = "not wanted"
"model.mode" = "plugin"
"""))
    plan = plan_grid(grid, TABLES_DIR)
    reference = {"model.mode": "joint", "model.specification": "political", "priors.hurdle.beta_log.kwargs.sigma": 2.5}
    assert plan.cells[0].values == reference
    assert len(plan.cells) == 1 + 1 + 1 + 2 and len(plan.excluded) == 1  # 1 + sum(values - 1), minus the excluded
    for cell in plan.cells[1:]:
        assert sum(cell.values[a] != reference[a] for a in reference) == 1
    table = pd.DataFrame([cell.values | {"median": m, "q05": m - 0.01, "q95": m + 0.01, "status": "fitted", "converged": True,
                                         "p_nato_above_oas": 0.97}
                          for cell, m in zip(plan.cells, [0.0, 0.005, -0.02, 0.0, 0.001])])
    moves = one_at_a_time_moves(table, list(grid.axes))
    assert moves["choice"].tolist() == ["mode=cut", "specification=baseline", "sigma=1.0", "sigma=10.0"]
    assert moves["shift_in_widths"].tolist() == pytest.approx([0.25, -1.0, 0.0, 0.05])
    figure = plot_forest(table, list(grid.axes), grid.design)
    labels = [t.get_text() for t in figure.axes[0].get_yticklabels()]
    plt.close(figure)
    assert labels == ["reference", "mode=cut", "specification=baseline", "sigma=1.0", "sigma=10.0"]
    with pytest.raises(GridError, match="grid.design = 'one-at-a-time'"):
        load_grid(_write(tmp_path, '[grid]\ndesign = "one-at-a-time"\n[axes]\n"model.mode" = ["cut"]\n', "bad.toml"))


def test_set_changes_every_cells_base_and_renames_the_grid(tmp_path):
    path = GRIDS / "tiny.toml"
    overrides = parse_overrides(["sampler.draws=7", "cut.measurement_draws=3", "run.description=light pass"])
    assert overrides == {"sampler.draws": 7, "cut.measurement_draws": 3, "run.description": "light pass"}
    plain, light = plan_grid(load_grid(path), TABLES_DIR), plan_grid(load_grid(path, overrides), TABLES_DIR)
    assert light.grid.name.startswith("tiny-set-") and light.grid.overrides == overrides
    assert all(c.config["sampler"]["draws"] == 7 and c.config["cut"]["measurement_draws"] == 3 for c in light.cells)
    assert not {c.run_id for c in plain.cells} & {c.run_id for c in light.cells}
    with pytest.raises(GridError, match="an axis of this grid"):
        load_grid(path, {"model.specification": "baseline"})
    with pytest.raises(GridError, match="expected KEY=VALUE"):
        parse_overrides(["sampler.draws"])


def test_shipped_grids_are_valid():
    for path in sorted(GRIDS.glob("*.toml")):
        plan = plan_grid(load_grid(path), TABLES_DIR)
        assert plan.cells, path


def test_a_run_folder_with_the_cells_id_is_reused_unless_damaged(tmp_path):
    (cell,) = plan_grid(load_grid(GRIDS / "tiny.toml"), TABLES_DIR).cells[:1]
    draws = np.random.default_rng(0).normal(0.002, 0.001, size=(2, 200))
    idata = az.from_dict({"posterior": {"potential_effect": draws},
                          "sample_stats": {"diverging": np.zeros((2, 200), bool)}})
    run_id = compute_run_id(cell.config, "d")
    meta = {"id": run_id, "data_hash": "d", "versions": package_versions(), "sampler": {"divergences": 0},
            "timings_s": {"total_s": 12.0}, "health": {"warnings": []}}
    path = write_run(idata, cell.config, meta, headline_summary(idata), tmp_path)
    summary = cached_summary(tmp_path, run_id)
    assert summary["run"] == str(path) and summary["fit_s"] == 12.0
    assert summary["median"] == pytest.approx(np.median(draws)) and summary["p_positive"] == np.mean(draws > 0)
    assert np.isnan(summary["p_nato_above_oas"])  # the folder keeps no draws of depth
    assert cached_summary(tmp_path, "0" * 12) is None
    (path / "config.toml").write_text((path / "config.toml").read_text().replace("seed = 1", "seed = 2"))
    assert cached_summary(tmp_path, run_id) is None  # tampered: refit, not reused


ALLIANCES = [3075, 3150, 3180]  # Rio Treaty, OAS Charter, NATO


def _write_depth_run(cell, runs_dir: Path, theta: np.ndarray, group: str) -> Path:
    """A run folder of ``cell`` whose depth draws (chain, draw, alliance) sit in ``group``: the
    posterior (joint) or the thinned measurement-stage posterior (cut, plug-in)."""
    draws = np.random.default_rng(2).normal(0.001, 0.001, size=theta.shape[:2])
    idata = az.from_dict({"posterior": {"potential_effect": draws}, "sample_stats": {"diverging": np.zeros(draws.shape, bool)}})
    depth = xr.Dataset({"depth_theta": (("chain", "draw", "alliance"), theta)},
                       coords={"chain": np.arange(theta.shape[0]), "draw": np.arange(theta.shape[1]), "alliance": ALLIANCES})
    idata[group] = xr.DataTree(xr.merge([idata[group].to_dataset(), depth]) if group in idata.children else depth)
    digest = data_hash(TABLES_DIR, run_data_files(cell.config))[0]
    meta = {"id": cell.run_id, "data_hash": digest, "versions": package_versions(),
            "sampler": {"divergences": 0}, "timings_s": {"total_s": 1.0}, "health": {"warnings": []}}
    return write_run(idata, cell.config, meta, headline_summary(idata), runs_dir)


@pytest.mark.parametrize("group", ["posterior", "measurement"])
def test_p_nato_above_oas_is_read_from_the_run_folders_depth_draws(tmp_path, group):
    rng = np.random.default_rng(3)
    plan = plan_grid(load_grid(GRIDS / "tiny.toml"), TABLES_DIR)
    shallow_nato, deep_nato = rng.normal(size=(2, 2, 300, 3))
    deep_nato[..., 2] += 3.0  # NATO far above the OAS Charter
    shallow_nato[..., 1] += 3.0  # the OAS Charter far above NATO: the nine-item order
    for cell, theta in zip(plan.cells, (deep_nato, shallow_nato)):
        _write_depth_run(cell, tmp_path, theta, group)
    table = collect_grid(plan, tmp_path)
    # run folders store draws in single precision
    expected = [np.mean(theta.astype(np.float32)[..., 2] > theta.astype(np.float32)[..., 1]) for theta in (deep_nato, shallow_nato)]
    assert table["p_nato_above_oas"].tolist() == pytest.approx(expected)
    assert expected[0] > 0.9 > expected[1]  # the draws were built to fall on either side of the floor


def test_grid_report_and_forest_name_the_cells_whose_depth_ranks_the_oas_charter_above_nato():
    plan = plan_grid(load_grid(GRIDS / "tiny.toml"), TABLES_DIR)
    table = pd.DataFrame([cell.values | {"median": m, "q05": m - 0.01, "q95": m + 0.01, "converged": True,
                                         "p_nato_above_oas": p, "status": "fitted", "error": None, "run": None,
                                         "run_id": cell.run_id}
                          for cell, m, p in zip(plan.cells, [0.006, 0.0], [0.03, np.nan])])
    report = grid_report(plan, table)
    assert "P < 0.9 (`p_nato_above_oas`) in 1 of 1 cells with draws of depth**" in report
    assert "rests on: baseline (0.03)." in report and "political (" not in report
    fig = plot_forest(table, list(plan.grid.axes))
    (ax,) = fig.axes
    assert [t.get_text() for t in ax.texts] == ["P(NATO>OAS) 0.03"]
    assert ax.texts[0].get_position()[1] == ax.get_yticks()[0]  # at the baseline cell's row, the first
    plt.close(fig)

    fine = table.assign(p_nato_above_oas=[0.97, np.nan])
    assert "with P >= 0.9 (`p_nato_above_oas`) in every cell with draws of depth (1 of 2)." in grid_report(plan, fine)
    fig = plot_forest(fine, list(plan.grid.axes))
    assert not fig.axes[0].texts
    plt.close(fig)
    unmeasured = table.assign(p_nato_above_oas=np.nan)
    assert "No cell keeps draws of depth" in grid_report(plan, unmeasured)


@pytest.mark.slow
def test_tiny_grid_fits_every_cell_then_reuses_them_and_survives_a_failing_cell(tmp_path):
    plan = plan_grid(load_grid(GRIDS / "tiny.toml"), TABLES_DIR)
    # the tiny grid again with a second axis: a first year after the last passes config
    # validation but leaves no state-years to fit; its first-year-2013 cells are the tiny cells
    widened = plan_grid(load_grid(_write(tmp_path, (GRIDS / "tiny.toml").read_text() + '"data.first_year" = [2013, 2030]\n')),
                        TABLES_DIR)
    runs, lines = tmp_path / "runs", []
    with dask_client(n_workers=1, processes=False) as client:
        first = run_grid(plan, client, TABLES_DIR, runs, report=lines.append)
        folders = sorted(runs.iterdir())
        started = time.perf_counter()
        second = run_grid(plan, client, TABLES_DIR, runs, report=lines.append)
        reuse_s = time.perf_counter() - started
        mixed = run_grid(widened, client, TABLES_DIR, runs, report=lines.append)

    assert list(first["status"]) == ["fitted", "fitted"]
    assert first[["median", "q05", "q95", "p_positive", "rhat", "ess_bulk", "divergences", "fit_s"]].notna().all().all()
    assert (first["q05"] <= first["median"]).all() and (first["median"] <= first["q95"]).all()
    assert len(folders) == 2
    for _, row in first.iterrows():
        _, config, meta = load_run(row["run"])
        assert meta["id"] == row["run_id"] and config["model"]["specification"] == row["model.specification"]
    # the second pass reads every cell back: same folders, same numbers, no new fit
    assert list(second["status"]) == ["cached", "cached"]
    pd.testing.assert_frame_equal(first.drop(columns="status"), second.drop(columns="status"))
    assert reuse_s < first["fit_s"].min()
    assert any("fitted 2, cached 0, failed 0" in line for line in lines)
    assert any("fitted 0, cached 2, failed 0" in line for line in lines)
    # the failing cells are recorded with their error; the others are read back
    assert list(mixed["status"]) == ["cached", "failed", "cached", "failed"]
    failed = mixed[mixed["status"] == "failed"]
    assert failed["error"].str.startswith("ValueError: no complete state-years").all()
    assert failed["median"].isna().all() and failed["run"].isna().all()
    assert set(mixed.loc[mixed["status"] == "cached", "run"]) == set(first["run"])
    assert sorted(runs.iterdir()) == folders

    folder = write_grid_outputs(widened, mixed, tmp_path / "out", TABLES_DIR, reuse_s, "LocalCluster")
    assert {p.name for p in folder.iterdir()} == {"effects.csv", "effects.md", "forest.png", "grid.toml", "meta.json"}
    report = (folder / "effects.md").read_text()
    assert "2 failed" in report and "ValueError: no complete state-years" in report
    assert all(run in report for run in first["run"])
    assert len(pd.read_csv(folder / "effects.csv")) == 4


def test_forest_plot_marks_unconverged_and_failed_cells():
    table = pd.DataFrame({
        "model.mode": ["plugin", "cut", "joint"],
        "median": [0.001, -0.002, None], "q05": [-0.001, -0.004, None], "q95": [0.003, 0.0, None],
        "converged": [True, False, None], "p_nato_above_oas": [0.97, np.nan, None], "status": ["fitted", "cached", "failed"],
    })
    fig = plot_forest(table, ["model.mode"])
    (ax,) = fig.axes
    assert [t.get_text() for t in ax.get_yticklabels()] == ["plugin", "cut", "joint"]
    assert [t.get_text() for t in ax.texts] == ["failed"]
    assert ax.texts[0].get_position()[1] == ax.get_yticks()[2]
    legend = [t.get_text() for t in fig.legends[0].get_texts()]  # below the axes, in a strip of its own
    assert legend == [CONVERGED_LABEL, NOT_CONVERGED_LABEL]
    plt.close(fig)


def test_a_second_pass_gets_its_own_results_not_the_first_pass_futures(tmp_path, monkeypatch):
    """Dask hands back a held future's result when a key is reused; every pass must compute afresh."""
    import allypot.sensitivity.grid as grid_module

    plan = plan_grid(load_grid(GRIDS / "tiny.toml"), TABLES_DIR)
    log = tmp_path / "calls.txt"  # the task is pickled to the worker: count calls in a file

    def counting_cell(config, run_id, tables_dir, runs_dir):
        with open(log, "a") as out:
            out.write(run_id + "\n")
        seen = log.read_text().split().count(run_id)
        return {"status": "fitted" if seen == 1 else "cached", "fit_s": 1.0, "run_id": run_id, "run": f"pass-{seen}"}

    monkeypatch.setattr(grid_module, "run_cell", counting_cell)
    with dask_client(n_workers=1, processes=False) as client:
        first = run_grid(plan, client, TABLES_DIR, tmp_path, report=lambda line: None)
        # what CI met: the previous pass's futures, keyed by cell, not yet released by the scheduler
        held = [client.submit(counting_cell, None, cell.run_id, None, None, key=f"grid-cell-{cell.run_id}", pure=False)
                for cell in plan.cells]
        client.gather(held)
        second = run_grid(plan, client, TABLES_DIR, tmp_path, report=lambda line: None)
    assert list(first["status"]) == ["fitted", "fitted"]
    assert list(second["run"]) == ["pass-3", "pass-3"]
    assert len(log.read_text().split()) == 6


def test_collect_reports_the_fitted_cells_and_marks_the_rest_not_run(tmp_path):
    plan = plan_grid(load_grid(GRIDS / "tiny.toml"), TABLES_DIR)
    first, second = plan.cells
    draws = np.random.default_rng(1).normal(0.003, 0.001, size=(2, 200))
    idata = az.from_dict({"posterior": {"potential_effect": draws},
                          "sample_stats": {"diverging": np.zeros((2, 200), bool)}})
    meta = {"id": first.run_id, "data_hash": data_hash(TABLES_DIR, run_data_files(first.config))[0],
            "versions": package_versions(), "sampler": {"divergences": 0},
            "timings_s": {"total_s": 5.0}, "health": {"warnings": []}}
    runs = tmp_path / "runs"
    runs.mkdir()
    write_run(idata, first.config, meta, headline_summary(idata), runs)

    table = collect_grid(plan, runs)
    assert list(table["status"]) == ["cached", "not run"]
    assert table.loc[0, "median"] == pytest.approx(np.median(draws)) and pd.isna(table.loc[1, "median"])
    assert len(list(runs.iterdir())) == 1  # nothing fitted

    fig = plot_forest(table, list(plan.grid.axes))
    assert [t.get_text() for t in fig.axes[0].texts] == ["not run"]
    plt.close(fig)
    assert main(["grid", str(GRIDS / "tiny.toml"), "--collect", "--runs", str(runs), "--out", str(tmp_path / "out")]) == 0
    report = (tmp_path / "out" / plan.grid.name / "effects.md").read_text()
    assert "**1 not run yet**" in report and second.run_id not in report.split("## Run folders")[1]


def test_cells_in_another_unit_are_ranked_unit_free_and_not_drawn_on_the_reference_scale():
    axes = ["data.outcome", "model.specification"]
    table = pd.DataFrame({
        "data.outcome": ["share", "troops_per_gdp", "share"],
        "model.specification": ["political", "political", "baseline"],
        "median": [0.0, -0.5, -0.004], "q05": [-0.005, -1.5, -0.006], "q95": [0.005, 0.5, -0.002],
        "converged": [True, True, False], "p_nato_above_oas": [0.97, 0.95, 0.99], "status": ["fitted", "fitted", "cached"],
    })
    moves = one_at_a_time_moves(table, axes)
    assert moves["choice"].tolist() == ["outcome=troops_per_gdp", "specification=baseline"]
    assert np.isnan(moves.loc[0, "shift"]) and np.isnan(moves.loc[0, "shift_in_widths"])
    assert moves["standardised"].tolist() == pytest.approx([-0.25, -1.0])
    assert moves.loc[1, "shift_in_widths"] == pytest.approx(-0.4)
    fig = plot_forest(table, axes, "one_at_a_time")
    (ax,) = fig.axes
    assert [t.get_text() for t in ax.texts] == ["other unit: -0.5 [-1.5, 0.5]"]
    assert ax.get_xlim()[0] > -0.1  # the troops-per-GDP interval is not on the share axis
    plt.close(fig)


def test_the_report_keeps_the_grid_file_as_read_even_if_it_moves_during_the_run(tmp_path):
    path = _write(tmp_path, (GRIDS / "tiny.toml").read_text())
    plan = plan_grid(load_grid(path), TABLES_DIR)
    path.rename(tmp_path / "renamed.toml")  # what a long grid met when its file was renamed
    table = pd.DataFrame([cell.values | {"median": None, "q05": None, "q95": None, "converged": None,
                                         "p_nato_above_oas": None, "status": "not run", "error": None, "run": None, "run_id": cell.run_id}
                          for cell in plan.cells])
    folder = write_grid_outputs(plan, table, tmp_path / "out", TABLES_DIR, 1.0, "none")
    assert (folder / "grid.toml").read_text() == (GRIDS / "tiny.toml").read_text()
    with pytest.raises(GridError, match="is a folder"):
        load_grid(tmp_path)
