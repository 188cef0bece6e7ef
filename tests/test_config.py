"""Run configs: validation with key paths, defaults, and every shipped config loads."""

from pathlib import Path

import pytest
from allypot.inference.config import (
    ConfigError,
    load_config,
    model_options,
    resolve_config,
)

from allypot.paths import CONFIGS_DIR

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
