"""End-to-end: the command line on the bundled tables (tiny draws); where commands write."""

import argparse
from pathlib import Path

import pytest
from allypot.data.loaders import load_table
from allypot.inference.runs import load_run
from allypot.paths import TABLES_DIR
from conftest import SMALL_RUN_DRAWS, SMALL_RUN_YEARS, repository_status

from allypot.cli import HelpFormatter, build_parser, main

FIXTURES = Path(__file__).parent / "fixtures" / "configs"


@pytest.mark.slow  # the fit is the session's shared small joint run (conftest), made once
def test_fit_writes_a_complete_reloadable_run(small_joint_cli_fit):
    fit = small_joint_cli_fit
    assert fit.code == 0 and fit.run.parent == fit.workdir / "runs"
    assert fit.run.name.split("-")[1:3] == ["joint", "smoke"]
    assert fit.status_after == fit.status_before
    idata, config, meta = load_run(fit.run)
    assert config["model"]["family"] == "hurdle" and meta["seed"] == 1
    assert set(meta["versions"]) >= {"pymc", "arviz", "nutpie"}
    # every row of the bundled panel is either in the sample or counted with its reason
    sample = meta["sample"]
    assert sample["rows"] + sum(sample["excluded"].values()) == len(load_table("panel", TABLES_DIR))
    assert tuple(sample["years"]) == SMALL_RUN_YEARS and sample["rows"] > 0
    assert "the United States (coalition leader, not a contributor)" in sample["excluded"]
    for group in ("posterior", "sample_stats", "observed_data", "log_likelihood", "log_prior"):
        assert group in idata.children
    assert idata["posterior"]["potential_effect"].shape == (2, SMALL_RUN_DRAWS)
    assert "expected_share" not in idata["posterior"].data_vars and "potential" in idata["posterior"].data_vars
    summary = fit.stdout.splitlines()
    assert "median" in summary[0] and "r_hat" in summary[0] and summary[2].startswith("potential_effect")
    # 2 chains x 100 draws cannot pass (bulk ESS needs 100 per chain, R-hat 1.01): the warning
    # names the failed checks
    assert "WARNING: this joint fit failed" in fit.stderr and "bulk ESS of potential_effect" in fit.stderr
    assert meta["health"]["warnings"] == [line.removeprefix("  - ") for line in fit.stderr.splitlines()
                                          if line.startswith("  - ")]


def test_bad_config_fails_with_a_clear_message(capsys):
    assert main(["fit", str(FIXTURES / "typo_keys.toml")]) == 2
    assert "run.seeed" in capsys.readouterr().err


def test_validate_reports_a_users_broken_table(tmp_path, capsys):
    from allypot.paths import TABLES_DIR

    lines = (TABLES_DIR / "panel.csv").read_text().splitlines()
    bad = tmp_path / "my_war.csv"
    bad.write_text("\n".join([lines[0], lines[1], lines[1]]) + "\n")  # a duplicated state-year
    assert main(["data", "validate", "panel", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "my_war.csv" in err and "duplicate key" in err and "rows 2, 3" in err


def _subcommands(parser: argparse.ArgumentParser, prefix=()):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _subcommands(sub, prefix + (name,))
    if prefix:
        yield prefix, parser


COMMANDS = {" ".join(k): p for k, p in _subcommands(build_parser()) if not any(
    isinstance(a, argparse._SubParsersAction) for a in p._actions)}


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_option_has_help_and_shows_its_default(command):
    parser = COMMANDS[command]
    formatter = HelpFormatter(command)
    assert "%%" not in (parser.description or ""), f"allypot {command}: description shows '%%'"
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        assert action.help, f"allypot {command} {action.dest}: no help text"
        if action.default not in (None, False):
            assert "default" in formatter._get_help_string(action), f"allypot {command} {action.dest}: default not shown"


def test_every_draws_option_says_what_it_counts():
    """"Draws" once meant six things: every option counting draws says per chain or in total."""
    counted = {(command, action.dest): action.help for command, parser in COMMANDS.items()
               for action in parser._actions if action.dest.endswith("draws")}
    assert len(counted) >= 5, counted
    for (command, dest), text in counted.items():
        assert "per chain" in text or "in total" in text, f"allypot {command} --{dest}: {text!r}"


def test_unknown_table_is_one_plain_line(tmp_path, capsys):
    assert main(["data", "validate", "panle", str(tmp_path / "x.csv")]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("allypot: error: unknown table 'panle'; known: [") and "'panel'" in line


def test_help_says_where_each_command_writes(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert "where commands write" in out and "make reports" in out


@pytest.mark.parametrize(("argv", "module", "function", "out_arg", "folder"), [
    (["replicate", "--no-bayes"], "allypot.inference.replicate_cli", "run_replication", 1, "-replicate"),
    (["priors", "check"], "allypot.inference.prior_check", "write_prior_check", 2, "-priors-joint_default"),
])
def test_default_outputs_go_to_a_new_folder_under_runs(argv, module, function, out_arg, folder, tmp_path, monkeypatch):
    """Without --out, replicate and priors check write a fresh folder under ./runs, not reports/."""
    import importlib

    written = []
    monkeypatch.setattr(importlib.import_module(module), function,
                        lambda *args, **kwargs: written.append(Path(args[out_arg])) or args[out_arg])
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 0
    (out,) = written
    assert out.parent == Path("runs") and out.name.endswith(folder)
    assert (tmp_path / out).resolve().is_relative_to(tmp_path)


@pytest.mark.slow
def test_priors_check_by_default_leaves_the_repository_untouched(tmp_path, monkeypatch, capsys):
    before = repository_status()
    monkeypatch.chdir(tmp_path)
    assert main(["priors", "check", "--prior-draws", "20"]) == 0
    (out,) = (tmp_path / "runs").iterdir()
    assert {"prior_check.md", "prior_predictive.png", "prior_predictive_summary.csv"} <= {p.name for p in out.iterdir()}
    assert repository_status() == before
