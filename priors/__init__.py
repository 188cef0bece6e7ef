"""Priors as data.

One TOML file per model component (``irt``, ``preference``, ``contribution``, ``hurdle``),
one section per parameter, shaped ``{dist, kwargs, centered}``. Each default is justified in a
comment in its file. Precedence, once: run-config override > file default.

Every prior is validated when it is loaded, before any model compiles: the distribution must be
a continuous PyMC distribution, its keywords must be ones that distribution takes, the values
must be finite numbers that satisfy the distribution's own parameter constraints (PyMC's, e.g.
``sigma > 0``), and a parameter that must be positive (a scale, the IRT loading) must get a
prior on positive values. A bad value otherwise passes the prior predictive (draws
sign-flipped) and crashes the sampler after compilation.
"""

from __future__ import annotations

import copy
import difflib
import functools
import inspect
import json
import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import pymc as pm

PRIORS_DIR = Path(__file__).resolve().parent
COMPONENTS = ("irt", "preference", "contribution", "hurdle")
PRIOR_FIELDS = ("dist", "kwargs", "centered")
# parameters that are scales (or, for the IRT loading, fix the direction of depth): their prior
# must put no mass on values <= 0
POSITIVE_PARAMETERS = {
    ("irt", "loading"),
    ("preference", "walk_sigma"),
    ("contribution", "sigma"), ("contribution", "country_sigma"), ("contribution", "year_sigma"),
    ("hurdle", "sigma_log"), ("hurdle", "country_sigma"), ("hurdle", "year_sigma"),
}


class PriorConfigError(ValueError):
    """A prior file or override is malformed; ``problems`` lists each one with its key path."""

    def __init__(self, problems: list[str] | str):
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__("\n".join(self.problems))


def _suggest(name: str, known) -> str:
    close = difflib.get_close_matches(name, list(known), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


@functools.cache
def continuous_distributions() -> tuple[str, ...]:
    """Names of the PyMC distributions a prior may use: the continuous ones."""
    return tuple(sorted(
        name for name in dir(pm)
        if isinstance(getattr(pm, name), type) and issubclass(getattr(pm, name), pm.Continuous)
        and getattr(pm, name) is not pm.Continuous
    ))


def distribution_keywords(dist: str) -> tuple[str, ...]:
    """The parameters ``pm.<dist>.dist`` takes by name (not ``**kwargs``, which are for PyMC)."""
    signature = inspect.signature(getattr(pm, dist).dist)
    return tuple(
        name for name, p in signature.parameters.items()
        if p.kind not in (inspect.Parameter.VAR_KEYWORD, inspect.Parameter.VAR_POSITIONAL)
    )


def _is_finite_number(value) -> bool:
    if isinstance(value, list):
        return len(value) > 0 and all(_is_finite_number(v) for v in value)
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


@functools.cache
def _support_problem(dist: str, kwargs_json: str, positive: bool) -> str | None:
    """PyMC's own parameter checks, run on the distribution's log density at its central point.

    The graph is evaluated with the pure-Python linker and no rewrites (a few ms, nothing is
    compiled to C). Returns what is wrong, or None.
    """
    import pytensor
    from pymc.distributions.distribution import support_point
    from pymc.logprob.utils import ParameterValueError

    mode = pytensor.compile.mode.Mode(linker="py", optimizer=None)
    try:
        rv = getattr(pm, dist).dist(**json.loads(kwargs_json))
        centre = support_point(rv)
        logp_centre = pytensor.function([], pm.logp(rv, centre), mode=mode)()
        logp_negative = pytensor.function([], pm.logp(rv, -1.0 + 0.0 * centre), mode=mode)() if positive else None
    except ParameterValueError as err:
        return f"violates {dist}'s parameter constraint {err}"
    except Exception as err:  # PyMC's own message for a missing or ill-shaped parameter
        return f"{dist} cannot be built from these keywords: {err}"
    if not all(math.isfinite(v) for v in logp_centre.ravel()):
        return f"{dist} has no finite density at its centre with these values"
    if positive and any(math.isfinite(v) for v in logp_negative.ravel()):
        return f"this parameter must be positive, but {dist} puts prior mass below 0 (use e.g. HalfNormal)"
    return None


def prior_problems(spec, where: str, positive: bool = False) -> list[str]:
    """Everything wrong with one prior entry ``{dist, kwargs, centered}``, each with its key path."""
    if not isinstance(spec, dict):
        return [f"{where} = {spec!r}: expected a table with keys {', '.join(PRIOR_FIELDS)}"]
    problems = [f"{where}.{key}: unknown key{_suggest(key, PRIOR_FIELDS)}; allowed: {', '.join(PRIOR_FIELDS)}"
                for key in spec if key not in PRIOR_FIELDS]
    if "centered" in spec and not isinstance(spec["centered"], bool):
        problems.append(f"{where}.centered = {spec['centered']!r}: must be true or false")
    dist, kwargs = spec.get("dist"), spec.get("kwargs", {})
    if dist is None:
        return problems + [f"{where}: missing 'dist'"]
    if dist not in continuous_distributions():
        return problems + [f"{where}.dist = {dist!r}: unknown PyMC distribution{_suggest(str(dist), continuous_distributions())}; "
                           "a prior must be a continuous PyMC distribution"]
    if not isinstance(kwargs, dict):
        return problems + [f"{where}.kwargs = {kwargs!r}: expected a table of {dist}'s parameters"]
    known = distribution_keywords(dist)
    for key, value in kwargs.items():
        if key not in known:
            problems.append(f"{where}.kwargs.{key}: {dist} takes no keyword {key!r}{_suggest(key, known)}; "
                            f"it takes {', '.join(known)}")
        elif not _is_finite_number(value):
            problems.append(f"{where}.kwargs.{key} = {value!r}: must be a finite number")
    if problems:
        return problems
    support = _support_problem(dist, json.dumps(kwargs, sort_keys=True), positive)
    return [f"{where} = {dist}({', '.join(f'{k}={v!r}' for k, v in kwargs.items())}): {support}"] if support else []


@dataclass(frozen=True)
class Prior:
    """A serialisable prior: a PyMC distribution name and its keyword arguments."""

    dist: str
    kwargs: dict = field(default_factory=dict)
    centered: bool = True

    def __post_init__(self):
        if self.dist not in continuous_distributions():
            raise PriorConfigError(f"unknown PyMC distribution {self.dist!r}")

    def create(self, name: str, **dims_or_shape):
        """Register the prior as a named random variable in the current model."""
        return getattr(pm, self.dist)(name, **self.kwargs, **dims_or_shape)

    def to_dict(self) -> dict:
        return {"dist": self.dist, "kwargs": dict(self.kwargs), "centered": self.centered}

    @classmethod
    def from_dict(cls, d: dict, where: str = "prior") -> "Prior":
        """Build a prior from its table; every problem is reported with ``where`` as key path."""
        problems = prior_problems(d, where)
        if problems:
            raise PriorConfigError(problems)
        return cls(d["dist"], dict(d.get("kwargs", {})), d.get("centered", True))


def load_priors(overrides: dict | None = None, priors_dir: Path = PRIORS_DIR) -> dict[str, dict[str, Prior]]:
    """Read every component's prior file, apply run-config overrides, and validate the result.

    ``overrides`` has the shape ``{component: {parameter: {dist?, kwargs?, centered?}}}``; an
    override may change only some fields (e.g. just ``kwargs.sigma``). Unknown components,
    parameters, distributions and keywords and out-of-support values are all reported together
    with their key paths, so a typo cannot silently keep a default.
    """
    raw: dict[str, dict] = {}
    for comp in COMPONENTS:
        with open(priors_dir / f"{comp}.toml", "rb") as fh:
            raw[comp] = tomllib.load(fh)
    merged = copy.deepcopy(raw)
    problems = []
    if overrides is not None and not isinstance(overrides, dict):
        raise PriorConfigError(f"priors = {overrides!r}: expected a table of components {list(COMPONENTS)}")
    for comp, params in (overrides or {}).items():
        if comp not in merged:
            problems.append(f"priors.{comp}: unknown component{_suggest(comp, COMPONENTS)}; known: {list(COMPONENTS)}")
            continue
        if not isinstance(params, dict):
            problems.append(f"priors.{comp} = {params!r}: expected a table of parameters, e.g. "
                            f"[priors.{comp}.{next(iter(merged[comp]))}]")
            continue
        for param, spec in params.items():
            where = f"priors.{comp}.{param}"
            if param not in merged[comp]:
                problems.append(f"{where}: unknown parameter{_suggest(param, merged[comp])}; known: {sorted(merged[comp])}")
                continue
            if not isinstance(spec, dict):
                problems.append(f"{where} = {spec!r}: expected a table with keys {', '.join(PRIOR_FIELDS)}")
                continue
            if "kwargs" in spec and not isinstance(spec["kwargs"], dict):
                problems.append(f"{where}.kwargs = {spec['kwargs']!r}: expected a table of the distribution's parameters")
                continue
            target = merged[comp][param]
            if "dist" in spec and spec["dist"] != target["dist"]:
                target["kwargs"] = {}
            for key, value in spec.items():
                if key == "kwargs":
                    target.setdefault("kwargs", {}).update(value)
                else:
                    target[key] = value
    for comp, params in merged.items():
        for param, spec in params.items():
            problems += prior_problems(spec, f"priors.{comp}.{param}", positive=(comp, param) in POSITIVE_PARAMETERS)
    if problems:
        raise PriorConfigError(problems)
    return {
        comp: {param: Prior.from_dict(spec, where=f"priors.{comp}.{param}") for param, spec in params.items()}
        for comp, params in merged.items()
    }


def priors_to_dict(priors: dict[str, dict[str, Prior]]) -> dict:
    """The resolved priors as plain data, for the run's saved config."""
    return {comp: {p: prior.to_dict() for p, prior in params.items()} for comp, params in priors.items()}


def require(priors: dict[str, Prior], component: str, needed: set[str]) -> None:
    """Check a component's prior section against the parameters it declares."""
    missing = needed - set(priors)
    unexpected = set(priors) - needed
    if missing or unexpected:
        raise PriorConfigError(
            f"priors for {component!r}: missing {sorted(missing)}, unexpected {sorted(unexpected)}"
        )
