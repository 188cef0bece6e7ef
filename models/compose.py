"""Composition of the parts into PyMC models.

Three builders share one signature ``(inputs, options, priors, **extra) -> pm.Model``:

- ``build_joint_model``: Parts A-D at once; potential is latent, so the measurement
  uncertainty of depth and preference reaches ``potential_effect`` (and the outcome can feed
  back on the measures: report it, MODEL.md "Feedback between parts").
- ``build_measurement_model``: Parts A-C only; its posterior of ``potential`` is the input of
  the cut and plug-in modes.
- ``build_contribution_model``: Part D with potential fixed as data (``pm.Data``), so the cut
  mode can swap in one measurement draw after another without rebuilding.

Dims: ``alliance``, ``item``, ``country``, ``year``, ``row`` (a regression state-year),
``control``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pymc as pm
from allypot.models.contribution import (
    CENTRINGS,
    FAMILIES,
    PARAMETERISATIONS,
    FAMILY_TO_PRIOR_COMPONENT,
    FAMILY_TO_REGRESSION,
)
from allypot.models.dyad_depth import AGGREGATIONS, us_dyad_depth
from allypot.models.inputs import ModelInputs
from allypot.models.irt import ordered_logit_irt
from allypot.models.potential import PROJECTIONS, alliance_potential
from allypot.models.preference import MEASURES, agreement_walk, idealpoint_measurement


@dataclass(frozen=True)
class ModelOptions:
    """Structural choices of the model (everything that is not a prior or a sampler setting)."""

    family: str = "gaussian"
    preference: str = "agreement"
    projection: str = "linear"
    depth_aggregation: str = "max"
    softmax_temperature: float = 0.05
    country_effects: bool = True
    year_effects: bool = True
    parameterisation: str = "orthogonal"  # measured faster on the real panel (bench/benchmark.py)
    centring: str = "by_data_meansplit"  # log intercept ESS 216 -> 718 on the real panel, same posterior

    def __post_init__(self):
        for value, allowed, name in [
            (self.family, FAMILIES, "family"),
            (self.preference, MEASURES, "preference"),
            (self.projection, PROJECTIONS, "projection"),
            (self.depth_aggregation, AGGREGATIONS, "depth_aggregation"),
            (self.parameterisation, PARAMETERISATIONS, "parameterisation"),
            (self.centring, CENTRINGS, "centring"),
        ]:
            if value not in allowed:
                raise ValueError(f"model.{name} = {value!r}; choose one of {list(allowed)}")

    def to_dict(self) -> dict:
        return asdict(self)


def _measurement(inputs: ModelInputs, options: ModelOptions, priors: dict):
    """Parts A-C in the current model; returns the potential tensor (dims row)."""
    theta = ordered_logit_irt(inputs.items, inputs.item_names, priors["irt"])
    depth = pm.Deterministic(
        "depth",
        us_dyad_depth(theta, inputs.ally_matrix, options.depth_aggregation, options.softmax_temperature),
        dims="row",
    )
    if options.preference == "agreement":
        pref_grid = agreement_walk(inputs.n_votes, inputs.n_agree, priors["preference"])
    else:
        pref_grid = idealpoint_measurement(
            inputs.ideal, inputs.ideal_sd, inputs.us_ideal, inputs.us_ideal_sd, priors["preference"]
        )
    pref = pm.Deterministic("pref_row", pref_grid[inputs.country_idx, inputs.year_idx], dims="row")
    return alliance_potential(depth, pref, inputs.us_ally, options.projection)


def _contribution(potential, inputs: ModelInputs, options: ModelOptions, priors: dict):
    regression = FAMILY_TO_REGRESSION[options.family]
    return regression(
        potential,
        inputs.outcome,
        inputs.controls,
        inputs.country_idx,
        inputs.year_idx,
        priors[FAMILY_TO_PRIOR_COMPONENT[options.family]],
        country_effects=options.country_effects,
        year_effects=options.year_effects,
        parameterisation=options.parameterisation,
        centring=options.centring,
    )


def build_joint_model(inputs: ModelInputs, options: ModelOptions, priors: dict) -> pm.Model:
    with pm.Model(coords=inputs.coords()) as model:
        _contribution(_measurement(inputs, options, priors), inputs, options, priors)
    return model


def build_measurement_model(inputs: ModelInputs, options: ModelOptions, priors: dict) -> pm.Model:
    with pm.Model(coords=inputs.coords()) as model:
        _measurement(inputs, options, priors)
    return model


def build_contribution_model(
    inputs: ModelInputs, options: ModelOptions, priors: dict, potential: np.ndarray
) -> pm.Model:
    with pm.Model(coords=inputs.coords()) as model:
        fixed = pm.Data("potential", np.asarray(potential, dtype="float64"), dims="row")
        _contribution(fixed, inputs, options, priors)
    return model
