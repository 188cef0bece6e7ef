"""Semi-modular inference (mode ``smi``): the tempered stage-one model, the ``model.eta`` key,
the ``--eta`` list, and the grid's acceptance of the mode. The MCMC checks (eta = 0 is cut,
eta = 1 is joint, the eta path command) are in tests/test_smi_fits.py."""

import argparse

import numpy as np
import pytest
from allypot.cli import HelpFormatter, build_parser, main
from allypot.inference.config import ConfigError, resolve_config
from allypot.inference.runs import compute_run_id
from allypot.models.compose import (
    TEMPERED_OUTCOME,
    ModelOptions,
    build_joint_model,
    build_measurement_model,
    build_smi_stage_one_model,
)
from allypot.models.simulate import simulate_inputs
from allypot.priors import load_priors
from allypot.sensitivity.eta_path import EtaPathError, parse_etas, smi_config
from allypot.sensitivity.grid import load_grid, plan_grid

from allypot.paths import TABLES_DIR


@pytest.fixture(scope="module")
def small():
    inputs, _ = simulate_inputs(n_alliances=30, n_us_alliances=5, n_countries=8, n_years=4, seed=3)
    return inputs, ModelOptions(), load_priors()


@pytest.mark.slow  # compiles four log densities of the IRT-sized graph
def test_stage_one_density_is_measurement_plus_prior_plus_eta_times_the_outcome(small):
    """At one point: stage one = measurement + regression prior + eta x (joint - both).

    Fails if eta is ignored (stage one = joint), if the outcome stays observed beside the
    potential, or if a part is lost in the rewrite."""
    inputs, options, priors = small
    joint = build_joint_model(inputs, options, priors)
    # away from the initial point, where every depth is equal and the projection is 0/0
    rng = np.random.default_rng(0)
    point = {k: v + rng.normal(0.0, 0.3, size=np.shape(v)) for k, v in joint.initial_point(0).items()}
    joint_logp = joint.compile_logp()(point)
    regression = [rv for rv in joint.free_RVs if not rv.name.startswith(("depth_", "pref_"))]
    regression_prior = float(joint.compile_fn(joint.logp(vars=regression), inputs=joint.value_vars,
                                              on_unused_input="ignore")(point))
    measurement = build_measurement_model(inputs, options, priors)
    measurement_logp = measurement.compile_logp()({k: point[k] for k in measurement.initial_point(0)})
    outcome_logp = joint_logp - regression_prior - measurement_logp
    assert np.isfinite(outcome_logp) and outcome_logp < 0 and regression_prior != 0.0

    eta = 0.3
    stage_one = build_smi_stage_one_model(inputs, options, priors, eta)
    assert "share_z" not in {rv.name for rv in stage_one.observed_RVs}
    assert [p.name for p in stage_one.potentials] == [TEMPERED_OUTCOME]
    assert {rv.name for rv in stage_one.free_RVs} == {rv.name for rv in joint.free_RVs}
    expected = measurement_logp + regression_prior + eta * outcome_logp
    assert stage_one.compile_logp()(point) == pytest.approx(expected, rel=1e-9)
    # the IRT's cut-points keep their spread-out starting values (ordered transform)
    assert np.ptp(stage_one.initial_point(0)["depth_cutpoints_milinst_ordered__"]) > 0


def test_stage_one_rejects_eta_outside_the_unit_interval(small):
    with pytest.raises(ValueError, match=r"model.eta = 1.5: must be in \[0, 1\]"):
        build_smi_stage_one_model(*small, 1.5)


def test_eta_key_is_validated_and_enters_the_run_id():
    config = resolve_config({"model": {"mode": "smi"}})
    assert config["model"]["eta"] == 1.0  # documented default: the full posterior
    half = resolve_config({"model": {"mode": "smi", "eta": 0.5}})
    zero = resolve_config({"model": {"mode": "smi", "eta": 0}})
    assert zero["model"]["eta"] == 0.0 and isinstance(zero["model"]["eta"], float)
    assert len({compute_run_id(c, "data") for c in (config, half, zero)}) == 3
    for bad in (1.5, -0.1, "0.5", True):
        with pytest.raises(ConfigError, match=r"model.eta = .*: must be a number in \[0, 1\]"):
            resolve_config({"model": {"mode": "smi", "eta": bad}})


def test_smi_config_changes_only_mode_and_eta():
    config = resolve_config({"model": {"mode": "cut", "family": "gaussian"}, "cut": {"measurement_draws": 7}})
    smi = smi_config(config, 0.25)
    assert smi["model"]["mode"] == "smi" and smi["model"]["eta"] == 0.25
    assert config["model"]["mode"] == "cut"  # the source config is not changed
    assert {k: v for k, v in smi["model"].items() if k not in ("mode", "eta")} == \
        {k: v for k, v in config["model"].items() if k not in ("mode", "eta")}
    assert smi["cut"] == config["cut"] and smi["priors"] == config["priors"]


def test_eta_list_is_parsed_sorted_and_checked():
    assert parse_etas("1,0, 0.25,0.5") == [0.0, 0.25, 0.5, 1.0]
    with pytest.raises(EtaPathError) as err:
        parse_etas("0,x,1.5,0")
    assert "'x' is not a number" in str(err.value) and "1.5 is outside [0, 1]" in str(err.value)
    assert "listed twice" in str(err.value)


def test_grid_accepts_smi_and_an_eta_axis(tmp_path):
    grid_file = tmp_path / "grid.toml"
    grid_file.write_text('[grid]\nname = "smi"\n[axes]\n"model.mode" = ["cut", "smi"]\n"model.eta" = [0.5, 1.0]\n'
                         '[[exclude]]\nreason = "cut ignores eta"\n"model.mode" = "cut"\n"model.eta" = 1.0\n')
    plan = plan_grid(load_grid(grid_file), TABLES_DIR)
    assert sorted((c.config["model"]["mode"], c.config["model"]["eta"]) for c in plan.cells) == \
        [("cut", 0.5), ("smi", 0.5), ("smi", 1.0)]


def test_sensitivity_eta_rejects_a_bad_list_before_reading_the_run(tmp_path, capsys):
    assert main(["sensitivity", str(tmp_path / "no-such-run"), "--eta", "0,2"]) == 2
    assert "--eta 0,2: 2 is outside [0, 1]" in capsys.readouterr().err
    (subcommands,) = [a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
    parser = subcommands.choices["sensitivity"]
    for action in parser._actions:
        if not isinstance(action, argparse._HelpAction):
            assert action.help and (action.default in (None, False)
                                    or "default" in HelpFormatter("sensitivity")._get_help_string(action))


def test_eta_plot_marks_the_etas_whose_run_failed_its_checks_hollow():
    import pandas as pd
    from allypot.sensitivity.eta_path import TABLE_COLUMNS, plot_eta_path
    from allypot.sensitivity.grid import CONVERGED_LABEL, NOT_CONVERGED_LABEL

    rows = [dict.fromkeys(TABLE_COLUMNS) | {"eta": eta, "median": 0.0, "q05": -1.0, "q95": 1.0, "converged": ok}
            for eta, ok in ((0.0, True), (0.5, False), (1.0, True))]
    fig = plot_eta_path(pd.DataFrame(rows), "t")
    by_label = {line.get_label(): line for line in fig.axes[0].get_lines()}
    assert list(by_label[NOT_CONVERGED_LABEL].get_xdata()) == [0.5]
    assert by_label[NOT_CONVERGED_LABEL].get_markerfacecolor() == "white"
    assert list(by_label[CONVERGED_LABEL].get_xdata()) == [0.0, 1.0]
    all_passed = plot_eta_path(pd.DataFrame(rows).assign(converged=True), "t")
    assert NOT_CONVERGED_LABEL not in {line.get_label() for line in all_passed.axes[0].get_lines()}
