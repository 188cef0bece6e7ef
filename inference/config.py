"""Run configuration: one TOML file describes one analysis.

The whole file is validated before anything runs: unknown keys and bad values are all
reported together with their key paths. The resolved config (defaults filled in, priors
merged) is what a run saves, so a run folder alone says exactly what was fitted.
"""

from __future__ import annotations

import copy
import difflib
import re
import tomllib
from pathlib import Path

from allypot.models.compose import ModelOptions
from allypot.models.contribution import CENTRINGS, FAMILIES, PARAMETERISATIONS
from allypot.models.dyad_depth import AGGREGATIONS
from allypot.models.inputs import ALLIANCE_UNIVERSES, DEFAULT_ITEM_SET, DEFAULT_UNIVERSE, ITEM_SETS, OUTCOMES
from allypot.models.potential import PROJECTIONS
from allypot.models.preference import MEASURES
from allypot.models.sample import SPECIFICATIONS
from allypot.priors import PriorConfigError, load_priors, priors_to_dict

from allypot.paths import TABLES_DIR

MODES = ("joint", "cut", "plugin", "smi")
BACKENDS = ("nutpie", "numpyro", "pymc")
ADAPTATIONS = ("diag", "low_rank")

DEFAULTS: dict = {
    "run": {"name": "run", "seed": 20011007, "description": ""},
    # exclude_countries: COW codes left out of the sample on purpose (models/sample.py, step 4)
    "data": {"tables_dir": "", "panel": "panel.csv", "outcome": "share", "first_year": 2001, "last_year": 2014,
             "exclude_countries": []},
    "model": {
        "mode": "joint",
        "specification": "political",
        # MODEL.md Part A: which US alliances count, and the IRT's items (models/inputs.py)
        "alliance_universe": DEFAULT_UNIVERSE,
        "items": DEFAULT_ITEM_SET,
        "family": "gaussian",
        "preference": "agreement",
        "projection": "linear",
        "depth_aggregation": "max",
        "softmax_temperature": 0.05,
        # MODEL.md Part D: mu = a0 + beta * potential + gamma'X + u_i + v_t
        "year_effects": True,
        "country_effects": True,
        # coordinates the sampler moves in the contribution part (models/contribution.py):
        # "orthogonal" (potential's residual on the controls) or "direct"; same posterior
        "parameterisation": "orthogonal",
        # group effects: "prior" (each prior's `centered` flag), "by_data" (hurdle log part:
        # centred for states and years with >= 3 positive shares, non-centred otherwise) or
        # "by_data_meansplit" (as by_data, the centred levels' mean sampled with the intercept;
        # same posterior, the log intercept mixes ~3x faster on the real panel)
        "centring": "by_data_meansplit",
        # smi mode only (MODEL.md "Modular inference between cut and joint"): the power of the
        # outcome likelihood in the posterior that informs the measures; 0 = cut, 1 = joint.
        # Default 1, the full posterior; the other modes ignore it
        "eta": 1.0,
    },
    # adaptation (nutpie only): "diag" mass matrix, or "low_rank" for correlated posteriors
    "sampler": {"backend": "nutpie", "chains": 4, "draws": 1000, "tune": 1000, "target_accept": 0.9,
                "adaptation": "diag"},
    "cut": {"measurement_draws": 40, "draws_per_fit": 250, "tune_per_fit": 500},
    "priors": {},
}

CHOICES = {
    ("model", "mode"): MODES,
    ("model", "specification"): tuple(SPECIFICATIONS),
    ("model", "alliance_universe"): ALLIANCE_UNIVERSES,
    ("model", "items"): tuple(ITEM_SETS),
    ("model", "family"): FAMILIES,
    ("model", "preference"): MEASURES,
    ("model", "projection"): PROJECTIONS,
    ("model", "depth_aggregation"): AGGREGATIONS,
    ("model", "parameterisation"): PARAMETERISATIONS,
    ("model", "centring"): CENTRINGS,
    ("sampler", "backend"): BACKENDS,
    ("sampler", "adaptation"): ADAPTATIONS,
    ("data", "outcome"): OUTCOMES,
}
# run.name becomes part of a folder name: letters, digits, '.', '_', '-', starting with a letter
# or digit, so it can never be a path ('/', '..') or a hidden name
RUN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
POSITIVE_INTS = [("sampler", "chains"), ("sampler", "draws"), ("sampler", "tune"),
                 ("cut", "measurement_draws"), ("cut", "draws_per_fit"), ("cut", "tune_per_fit")]


class ConfigError(ValueError):
    """A run config is invalid; the message lists every problem with its key path."""


def _suggest(key: str, known) -> str:
    close = difflib.get_close_matches(key, list(known), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def resolve_config(user: dict, source: str = "<config>", base_dir: Path | None = None) -> dict:
    """Merge a user config over the defaults, validate it, and resolve the priors.

    ``base_dir`` is the config file's folder: a relative ``data.tables_dir`` is resolved
    against it (and must exist), so a config means the same data wherever it is run from.
    """
    errors: list[str] = []
    config = copy.deepcopy(DEFAULTS)
    for section, values in user.items():
        if section not in DEFAULTS:
            errors.append(f"{section}: unknown section{_suggest(section, DEFAULTS)}")
            continue
        if section == "priors":
            if not isinstance(values, dict):
                errors.append(f"priors = {values!r}: expected a table of components, e.g. [priors.contribution.beta]")
            else:
                config["priors"] = values
            continue
        if not isinstance(values, dict):
            errors.append(f"{section}: expected a table")
            continue
        for key, value in values.items():
            if key not in DEFAULTS[section]:
                errors.append(f"{section}.{key}: unknown key{_suggest(key, DEFAULTS[section])}")
            else:
                config[section][key] = value
    for (section, key), allowed in CHOICES.items():
        if config[section][key] not in allowed:
            errors.append(f"{section}.{key} = {config[section][key]!r}: choose one of {list(allowed)}")
    for section, key in POSITIVE_INTS:
        value = config[section][key]
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            errors.append(f"{section}.{key} = {value!r}: must be a positive integer")
    if not isinstance(config["run"]["seed"], int) or isinstance(config["run"]["seed"], bool):
        errors.append(f"run.seed = {config['run']['seed']!r}: must be an integer")
    name = config["run"]["name"]
    if not (isinstance(name, str) and RUN_NAME.fullmatch(name)):
        errors.append(f"run.name = {name!r}: use 1-64 letters, digits, '.', '_' or '-', starting with a letter "
                      "or digit (it becomes part of the run folder's name)")
    if not isinstance(config["run"]["description"], str):
        errors.append(f"run.description = {config['run']['description']!r}: must be a string")
    errors += _tables_dir_errors(config, base_dir)
    errors += _exclude_countries_errors(config["data"]["exclude_countries"])
    ta = config["sampler"]["target_accept"]
    if not (isinstance(ta, float) and 0.5 <= ta < 1.0):
        errors.append(f"sampler.target_accept = {ta!r}: must be a number in [0.5, 1)")
    eta = config["model"]["eta"]
    if isinstance(eta, bool) or not isinstance(eta, int | float) or not 0 <= eta <= 1:
        errors.append(f"model.eta = {eta!r}: must be a number in [0, 1]")
    else:
        config["model"]["eta"] = float(eta)
    for key in ("country_effects", "year_effects"):
        if not isinstance(config["model"][key], bool):
            errors.append(f"model.{key} = {config['model'][key]!r}: must be true or false")
    spec = SPECIFICATIONS.get(config["model"]["specification"])
    if spec and spec.fixed_effects and config["model"]["country_effects"] is False:
        errors.append("model.country_effects = false: the fixed_effects specification needs country effects")
    try:
        priors = load_priors(config["priors"])
    except PriorConfigError as err:
        errors += err.problems
        priors = None
    if errors:
        raise ConfigError(f"{source}: invalid config\n  - " + "\n  - ".join(errors))
    config["priors"] = priors_to_dict(priors)
    return config


def load_config(path: str | Path) -> dict:
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"{path}: config file not found")
    if path.is_dir():
        raise ConfigError(f"{path}: is a folder, not a config file (TOML)")
    data = path.read_bytes()
    try:
        user = tomllib.loads(data.decode("utf-8"))
    except UnicodeDecodeError as err:
        line = data[:err.start].count(b"\n") + 1
        raise ConfigError(f"{path}: line {line} is not UTF-8 text (byte 0x{data[err.start]:02x}); "
                          "save the file as UTF-8") from None
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{path}: not valid TOML: {err}") from None
    return resolve_config(user, source=str(path), base_dir=path.resolve().parent)


def _tables_dir_errors(config: dict, base_dir: Path | None) -> list[str]:
    """Check ``data.tables_dir`` and make it absolute (relative to the config file's folder)."""
    value = config["data"]["tables_dir"]
    if not isinstance(value, str):
        return [f"data.tables_dir = {value!r}: must be a folder path (a string)"]
    if not value:
        return []
    folder = Path(value).expanduser()
    if not folder.is_absolute():
        folder = (base_dir or Path.cwd()) / folder
    folder = folder.resolve()
    if not folder.is_dir():
        return [f"data.tables_dir = {value!r}: no such folder ({folder})"]
    config["data"]["tables_dir"] = str(folder)
    return []


def _exclude_countries_errors(value) -> list[str]:
    """``data.exclude_countries`` must list distinct COW codes; whether each is a state of the
    panel is checked against the panel itself when the sample is drawn (models/sample.py)."""
    if not isinstance(value, list) or not all(isinstance(c, int) and not isinstance(c, bool) and c > 0 for c in value):
        return [f"data.exclude_countries = {value!r}: must be a list of COW country codes (positive integers), "
                "e.g. [255, 200]"]
    if len(set(value)) != len(value):
        return [f"data.exclude_countries = {value!r}: lists a country more than once"]
    return []


def use_tables_dir(config: dict, override: str | Path | None = None) -> Path:
    """The tables a run reads: ``override`` (the CLI's ``--tables``) > ``data.tables_dir`` > bundled.

    The choice is written back into ``config["data"]["tables_dir"]`` so the saved config says
    where the data came from (the run id ignores the path: the data hash covers the content).
    """
    if override is not None:
        folder = Path(override).expanduser().resolve()
        if not folder.is_dir():
            raise ConfigError(f"--tables {override}: no such folder")
    elif config["data"]["tables_dir"]:
        folder = Path(config["data"]["tables_dir"])
    else:
        folder = TABLES_DIR
    config["data"]["tables_dir"] = str(folder)
    return folder


def model_options(config: dict) -> ModelOptions:
    m = config["model"]
    return ModelOptions(
        family=m["family"],
        preference=m["preference"],
        projection=m["projection"],
        depth_aggregation=m["depth_aggregation"],
        softmax_temperature=float(m["softmax_temperature"]),
        country_effects=bool(m["country_effects"]),
        year_effects=bool(m["year_effects"]),
        parameterisation=m["parameterisation"],
        centring=m["centring"],
    )


def priors_from_config(config: dict):
    """The resolved priors of a config (already merged, so no overrides are applied again)."""
    from allypot.priors import Prior

    return {c: {p: Prior.from_dict(spec) for p, spec in params.items()} for c, params in config["priors"].items()}
