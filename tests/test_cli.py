"""End-to-end: the command line on the bundled tables (tiny draws)."""

from pathlib import Path

from allypot.inference.runs import load_run

from allypot.cli import main

FIXTURES = Path(__file__).parent / "fixtures" / "configs"


def test_fit_writes_a_complete_reloadable_run(tmp_path, capsys):
    assert main(["fit", str(FIXTURES / "smoke_joint.toml"), "--runs", str(tmp_path), "--quiet"]) == 0
    (run,) = [p for p in tmp_path.iterdir()]
    idata, config, meta = load_run(run)
    assert config["model"]["family"] == "hurdle" and meta["seed"] == 1
    assert set(meta["versions"]) >= {"pymc", "arviz", "nutpie"}
    assert meta["sample"]["rows"] > 2000 and "the United States (coalition leader, not a contributor)" in meta["sample"]["excluded"]
    for group in ("posterior", "sample_stats", "observed_data", "log_likelihood", "log_prior"):
        assert group in idata.children
    assert idata["posterior"]["potential_effect"].shape == (2, 30)
    assert "potential_effect" in capsys.readouterr().out


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
