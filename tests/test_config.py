"""Run configs: validation with key paths, defaults, and every shipped config loads."""

from pathlib import Path

import pytest
import shutil

from allypot.inference.config import (
    ConfigError,
    load_config,
    model_options,
    resolve_config,
    use_tables_dir,
)
from allypot.inference.runs import compute_run_id

from allypot.cli import main
from allypot.paths import CONFIGS_DIR, TABLES_DIR

FIXTURES = Path(__file__).parent / "fixtures" / "configs"


def test_every_shipped_config_resolves():
    configs = sorted(CONFIGS_DIR.glob("*.toml"))
    assert len(configs) >= 5
    for path in configs:
        config = load_config(path)
        model_options(config)  # structural choices are valid too
        assert set(config["priors"]) == {"irt", "preference", "contribution", "hurdle"}


def test_all_errors_are_reported_together_with_key_paths():
    with pytest.raises(ConfigError) as err:
        load_config(FIXTURES / "typo_keys.toml")
    message = str(err.value)
    for expected in ("run.seeed", "did you mean 'seed'", "model.familly", "model.mode = 'jiont'", "sampler.chains = 0"):
        assert expected in message


def test_prior_override_typo_is_rejected():
    with pytest.raises(ConfigError, match=r"priors.contribution.betta: unknown parameter"):
        load_config(FIXTURES / "bad_prior.toml")


def test_unknown_section_is_rejected():
    with pytest.raises(ConfigError, match="sampling: unknown section"):
        load_config(FIXTURES / "unknown_section.toml")


def test_defaults_follow_model_md():
    config = resolve_config({})
    assert config["model"]["mode"] == "joint" and config["model"]["family"] == "gaussian"
    assert config["model"]["country_effects"] is True and config["model"]["year_effects"] is True
    assert config["priors"]["contribution"]["country_sigma"]["centered"] is False


def test_prior_override_reaches_resolved_config():
    config = resolve_config({"priors": {"contribution": {"beta": {"kwargs": {"sigma": 0.1}}}}})
    assert config["priors"]["contribution"]["beta"]["kwargs"]["sigma"] == 0.1


@pytest.mark.parametrize("name", ["a/../b", "../escape", ".hidden", "", "two words", "a\\b", 7, "x" * 65])
def test_unsafe_run_names_are_rejected_up_front(name):
    with pytest.raises(ConfigError, match=r"run.name = .*: use 1-64 letters, digits"):
        resolve_config({"run": {"name": name}})


@pytest.mark.parametrize("name", ["joint-default", "smoke", "cut_v2.1", "x" * 64])
def test_safe_run_names_pass(name):
    assert resolve_config({"run": {"name": name}})["run"]["name"] == name


def _config_file(folder, tables_dir):
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "analysis.toml"
    path.write_text(f'[run]\nname = "t"\n\n[data]\ntables_dir = "{tables_dir}"\n')
    return path


def test_relative_tables_dir_is_resolved_against_the_config_folder(tmp_path, monkeypatch):
    (tmp_path / "project" / "my_tables").mkdir(parents=True)
    path = _config_file(tmp_path / "project" / "configs", "../my_tables")
    monkeypatch.chdir(tmp_path)  # the working folder plays no part
    config = load_config(path)
    assert config["data"]["tables_dir"] == str((tmp_path / "project" / "my_tables").resolve())
    assert use_tables_dir(config) == tmp_path / "project" / "my_tables"


def test_missing_tables_dir_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match=r"data.tables_dir = 'nowhere': no such folder \(.*nowhere\)"):
        load_config(_config_file(tmp_path, "nowhere"))
    with pytest.raises(ConfigError, match=r"data.tables_dir = 3: must be a folder path"):
        resolve_config({"data": {"tables_dir": 3}})


def test_tables_dir_precedence_cli_over_config_over_bundled(tmp_path):
    (tmp_path / "from_config").mkdir()
    (tmp_path / "from_cli").mkdir()
    config = load_config(_config_file(tmp_path, "from_config"))
    assert use_tables_dir(dict(config, data=dict(config["data"])), tmp_path / "from_cli") == tmp_path / "from_cli"
    assert use_tables_dir(config) == tmp_path / "from_config"
    assert use_tables_dir(resolve_config({})) == TABLES_DIR
    with pytest.raises(ConfigError, match="--tables .*missing: no such folder"):
        use_tables_dir(config, tmp_path / "missing")


def test_tables_location_does_not_change_the_run_id(tmp_path):
    config = resolve_config({})
    moved = resolve_config({"data": {"tables_dir": str(tmp_path)}})
    assert compute_run_id(config, "digest") == compute_run_id(moved, "digest")


def test_tables_dir_is_the_data_the_model_reads(tmp_path):
    from allypot.inference.fit import load_inputs

    tables = tmp_path / "tables"
    shutil.copytree(TABLES_DIR, tables)
    lines = (tables / "panel.csv").read_text().splitlines(keepends=True)
    kept = [ln for ln in lines[1:] if ",2014," not in ln]
    assert len(kept) < len(lines) - 1  # the bundled panel has 2014 rows
    (tables / "panel.csv").write_text("".join([lines[0]] + kept))
    config = load_config(_config_file(tmp_path, "tables"))
    inputs = load_inputs(config, use_tables_dir(config))
    assert inputs.years.max() == 2013


@pytest.mark.parametrize(("cli_tables", "expected"), [(None, "from_config"), ("from_cli", "from_cli")])
def test_cli_passes_the_chosen_tables_to_fit(tmp_path, monkeypatch, cli_tables, expected):
    import allypot.inference.fit as fit

    (tmp_path / "from_config").mkdir()
    (tmp_path / "from_cli").mkdir()
    seen = {}

    def record(config, tables_dir, runs_dir, progress=True):
        seen.update(tables=tables_dir, saved=config["data"]["tables_dir"])
        raise KeyboardInterrupt  # stop before fitting

    monkeypatch.setattr(fit, "fit_config", record)
    args = ["fit", str(_config_file(tmp_path, "from_config")), "--runs", str(tmp_path / "runs")]
    assert main(args + (["--tables", str(tmp_path / cli_tables)] if cli_tables else [])) == 130
    assert seen["tables"] == tmp_path / expected and seen["saved"] == str(tmp_path / expected)


@pytest.mark.parametrize(("make", "expected"), [
    (lambda path: path.mkdir(), "is a folder, not a config file (TOML)"),
    (lambda path: path.write_bytes('[run]\ndescription = "\u00e9tude"\n'.encode("latin-1")),
     "line 2 is not UTF-8 text (byte 0xe9); save the file as UTF-8"),
    (lambda path: path.write_text('[run\nname = "x"\n'), "not valid TOML: Expected ']'"),
    (lambda path: None, "config file not found"),
], ids=["folder", "latin1", "bad_toml", "missing"])
def test_an_unreadable_config_is_one_line_naming_it(make, expected, tmp_path, capsys):
    path = tmp_path / "my.toml"
    make(path)
    assert main(["fit", str(path), "--runs", str(tmp_path / "runs")]) == 2
    captured = capsys.readouterr()
    (line,) = captured.err.strip().splitlines()
    assert line.startswith(f"allypot: error: {path}: {expected}") and "Traceback" not in captured.err
    assert not (tmp_path / "runs").exists()
