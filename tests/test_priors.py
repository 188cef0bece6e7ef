"""Every prior is validated when the config loads, before anything compiles (issue 7, Priors)."""

from pathlib import Path

import pytest
from allypot.inference.config import ConfigError, load_config, resolve_config
from allypot.priors import PRIORS_DIR, PriorConfigError, load_priors, prior_problems

from allypot.cli import main

FIXTURES = Path(__file__).parent / "fixtures" / "configs"


def _problems(priors: dict) -> str:
    with pytest.raises(ConfigError) as err:
        resolve_config({"priors": priors})
    return str(err.value)


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ({"contribution": {"beta": {"kwargs": {"sigma": -2.5}}}},
         "priors.contribution.beta = Normal(mu=0.0, sigma=-2.5): violates Normal's parameter constraint sigma > 0"),
        ({"contribution": {"sigma": {"kwargs": {"sigma": 0}}}},
         "priors.contribution.sigma = HalfNormal(sigma=0): violates HalfNormal's parameter constraint sigma > 0"),
        ({"contribution": {"gamma": {"kwargs": {"sigmaa": 1.0}}}},
         "priors.contribution.gamma.kwargs.sigmaa: Normal takes no keyword 'sigmaa' (did you mean 'sigma'?)"),
        ({"contribution": {"intercept": {"kwargs": {"nu": 3.0}}}},
         "priors.contribution.intercept.kwargs.nu: Normal takes no keyword 'nu'; it takes mu, sigma, tau"),
        ({"hurdle": 5}, "priors.hurdle = 5: expected a table of parameters"),
        ({"hurdle": {"beta_log": 2.5}}, "priors.hurdle.beta_log = 2.5: expected a table"),
        ({"hurdle": {"beta_log": {"dist": "Nromal"}}},
         "priors.hurdle.beta_log.dist = 'Nromal': unknown PyMC distribution (did you mean 'Normal'?)"),
        ({"hurdle": {"beta_log": {"dist": "Poisson"}}}, "priors.hurdle.beta_log.dist = 'Poisson': unknown PyMC distribution"),
        ({"hurdle": {"beta_log": {"kwargs": {"mu": float("inf")}}}}, "priors.hurdle.beta_log.kwargs.mu = inf: must be a finite number"),
        ({"hurdle": {"beta_log": {"kwargs": {"mu": "0"}}}}, "priors.hurdle.beta_log.kwargs.mu = '0': must be a finite number"),
        ({"hurdle": {"beta_log": {"kwargs": 1.0}}}, "priors.hurdle.beta_log.kwargs = 1.0: expected a table"),
        ({"hurdle": {"beta_log": {"dist": "StudentT"}}}, "StudentT cannot be built from these keywords"),
        ({"hurdle": {"country_sigma": {"centered": "false"}}}, "priors.hurdle.country_sigma.centered = 'false': must be true or false"),
        ({"hurdle": {"beta_log": {"sigma": 1.0}}}, "priors.hurdle.beta_log.sigma: unknown key; allowed: dist, kwargs, centered"),
        ({"preference": {"walk_sigma": {"dist": "Normal"}}},
         "priors.preference.walk_sigma = Normal(): this parameter must be positive, but Normal puts prior mass below 0"),
        ({"irt": {"cutpoints": {"dist": "Uniform", "kwargs": {"lower": 1.0, "upper": -1.0}}}},
         "violates Uniform's parameter constraint lower <= upper"),
        ({"hurdl": {}}, "priors.hurdl: unknown component (did you mean 'hurdle'?)"),
    ],
)
def test_each_bad_prior_is_named_with_its_key_path(override, expected):
    assert expected in _problems(override)


def test_priors_that_are_not_a_table_are_rejected():
    assert "priors = 5: expected a table of components" in str(pytest.raises(ConfigError, resolve_config, {"priors": 5}).value)


def test_all_prior_problems_are_reported_together_one_line_each():
    with pytest.raises(ConfigError) as err:
        load_config(FIXTURES / "bad_prior_values.toml")
    lines = str(err.value).splitlines()
    assert lines[0].endswith("bad_prior_values.toml: invalid config")
    problems = lines[1:]
    assert all(line.startswith("  - priors.") for line in problems)
    named = {line.split()[1].split(".kwargs")[0] for line in problems}
    assert named == {"priors.contribution.beta", "priors.contribution.sigma", "priors.contribution.gamma",
                     "priors.contribution.intercept", "priors.preference.walk_sigma", "priors.irt.cutpoints"}


@pytest.mark.parametrize("command", [["priors", "check"], ["fit"]])
def test_cli_stops_on_bad_priors_before_compiling(command, tmp_path, capsys):
    args = [*command, str(FIXTURES / "bad_prior_values.toml"),
            *(["--out", str(tmp_path)] if command[0] == "priors" else ["--runs", str(tmp_path)])]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("allypot: error:") and "Traceback" not in err
    assert "sigma > 0" in err and "did you mean 'sigma'" in err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("override", "dist"),
    [
        ({"contribution": {"sigma": {"dist": "Exponential", "kwargs": {"lam": 2.0}}}}, "Exponential"),
        ({"contribution": {"sigma": {"dist": "HalfStudentT", "kwargs": {"nu": 3.0, "sigma": 1.0}}}}, "HalfStudentT"),
        ({"contribution": {"beta": {"dist": "StudentT", "kwargs": {"nu": 4.0, "sigma": 1.0}}}}, "StudentT"),
        ({"irt": {"cutpoints": {"dist": "Uniform", "kwargs": {"lower": -5.0, "upper": 5.0}}}}, "Uniform"),
    ],
)
def test_valid_alternative_priors_are_accepted(override, dist):
    (component, params), = override.items()
    (param, spec), = params.items()
    resolved = resolve_config({"priors": override})["priors"][component][param]
    assert resolved["dist"] == dist and resolved["kwargs"] == spec["kwargs"]


def test_every_shipped_prior_file_is_valid():
    priors = load_priors()
    for component, params in priors.items():
        assert (PRIORS_DIR / f"{component}.toml").exists()
        for name, prior in params.items():
            assert prior_problems(prior.to_dict(), f"priors.{component}.{name}") == []


def test_a_broken_prior_file_is_reported_with_its_key_path(tmp_path):
    for component in ("irt", "preference", "contribution", "hurdle"):
        text = (PRIORS_DIR / f"{component}.toml").read_text()
        if component == "hurdle":
            text = text.replace("kwargs = { sigma = 1.0 }", "kwargs = { sigma = -1.0 }", 1)
        (tmp_path / f"{component}.toml").write_text(text)
    with pytest.raises(PriorConfigError, match=r"priors.hurdle.sigma_log = HalfNormal\(sigma=-1.0\)"):
        load_priors(priors_dir=tmp_path)
