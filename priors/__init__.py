"""Priors as data.

One TOML file per model component (``irt``, ``preference``, ``contribution``, ``hurdle``),
one section per parameter, shaped ``{dist, kwargs, centered}``. Each default is justified in a
comment in its file. Precedence, once: run-config override > file default.
"""

from __future__ import annotations

import copy
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import pymc as pm

PRIORS_DIR = Path(__file__).resolve().parent
COMPONENTS = ("irt", "preference", "contribution", "hurdle")


class PriorConfigError(ValueError):
    """A prior file or override is malformed; the message names the key path."""


@dataclass(frozen=True)
class Prior:
    """A serialisable prior: a PyMC distribution name and its keyword arguments."""

    dist: str
    kwargs: dict = field(default_factory=dict)
    centered: bool = True

    def __post_init__(self):
        if not isinstance(getattr(pm, self.dist, None), type):
            raise PriorConfigError(f"unknown PyMC distribution {self.dist!r}")

    def create(self, name: str, **dims_or_shape):
        """Register the prior as a named random variable in the current model."""
        return getattr(pm, self.dist)(name, **self.kwargs, **dims_or_shape)

    def to_dict(self) -> dict:
        return {"dist": self.dist, "kwargs": dict(self.kwargs), "centered": self.centered}

    @classmethod
    def from_dict(cls, d: dict, where: str = "") -> "Prior":
        unknown = set(d) - {"dist", "kwargs", "centered"}
        if unknown:
            raise PriorConfigError(f"{where}: unknown key(s) {sorted(unknown)}; allowed: dist, kwargs, centered")
        if "dist" not in d:
            raise PriorConfigError(f"{where}: missing 'dist'")
        try:
            return cls(d["dist"], dict(d.get("kwargs", {})), bool(d.get("centered", True)))
        except PriorConfigError as err:
            raise PriorConfigError(f"{where}: {err}") from None


def load_priors(overrides: dict | None = None, priors_dir: Path = PRIORS_DIR) -> dict[str, dict[str, Prior]]:
    """Read every component's prior file and apply run-config overrides.

    ``overrides`` has the shape ``{component: {parameter: {dist?, kwargs?, centered?}}}``; an
    override may change only some fields (e.g. just ``kwargs.sigma``). Unknown components or
    parameters are rejected with their key path, so a typo cannot silently keep a default.
    """
    raw: dict[str, dict] = {}
    for comp in COMPONENTS:
        with open(priors_dir / f"{comp}.toml", "rb") as fh:
            raw[comp] = tomllib.load(fh)
    merged = copy.deepcopy(raw)
    errors = []
    for comp, params in (overrides or {}).items():
        if comp not in merged:
            errors.append(f"priors.{comp}: unknown component; known: {list(COMPONENTS)}")
            continue
        for param, spec in params.items():
            if param not in merged[comp]:
                errors.append(f"priors.{comp}.{param}: unknown parameter; known: {sorted(merged[comp])}")
                continue
            if not isinstance(spec, dict):
                errors.append(f"priors.{comp}.{param}: expected a table, got {spec!r}")
                continue
            target = merged[comp][param]
            if "dist" in spec and spec["dist"] != target["dist"]:
                target["kwargs"] = {}
            for key, value in spec.items():
                if key == "kwargs":
                    target.setdefault("kwargs", {}).update(value)
                else:
                    target[key] = value
    if errors:
        raise PriorConfigError("\n".join(errors))
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
