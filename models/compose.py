"""Composition of the parts into PyMC models.

The builders share one signature ``(inputs, options, priors, **extra) -> pm.Model``:

- ``build_joint_model``: Parts A-D at once; potential is latent, so the measurement
  uncertainty of depth and preference reaches ``potential_effect`` (and the outcome can feed
  back on the measures: report it, MODEL.md "Feedback between parts").
- ``build_measurement_model``: Parts A-C only; its posterior of ``potential`` is the input of
  the cut and plug-in modes.
- ``build_contribution_model``: Part D with potential fixed as data (``pm.Data``), so the cut
  mode can swap in one measurement draw after another without rebuilding.
- ``build_smi_stage_one_model``: Parts A-D with Part D's outcome likelihood raised to a power
  eta (``eta``, in [0, 1]): the first stage of semi-modular inference (MODEL.md, "Modular
  inference between cut and joint").

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
    FAMILY_TO_OUTCOME_VAR,
    FAMILY_TO_PRIOR_COMPONENT,
    FAMILY_TO_REGRESSION,
)
from pymc.model.fgraph import fgraph_from_model, model_from_fgraph, model_potential
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


# name of the tempered outcome term in the SMI stage-one model
TEMPERED_OUTCOME = "contribution_tempered"


def build_smi_stage_one_model(inputs: ModelInputs, options: ModelOptions, priors: dict, eta: float) -> pm.Model:
    """Parts A-C plus Part D whose outcome log likelihood is multiplied by ``eta``.

    The density is p(measures) p(regression) p(outcome | measures, regression)^eta. Part D's
    parameters here are the auxiliary copy of Carmona & Nicholls (2020): they let the outcome
    pull on the measures with weight eta, and are discarded after stage one. The outcome
    enters as the potential ``contribution_tempered``, not as an observed variable, so
    nothing downstream (log likelihood, predictive checks) mistakes stage one for a posterior
    of the outcome model. Built by rewriting the joint model, so both share every part.
    """
    if not 0.0 <= eta <= 1.0:
        raise ValueError(f"model.eta = {eta!r}: must be in [0, 1]")
    joint = build_joint_model(inputs, options, priors)
    outcome = joint[FAMILY_TO_OUTCOME_VAR[options.family]]
    # the IRT's cut-points start spread out; PyMC cannot rewrite a model with initial values,
    # so they are lifted for the rewrite and put back on the rewritten model by name
    initial = {rv.name: value for rv, value in joint.rvs_to_initial_values.items() if value is not None}
    joint.rvs_to_initial_values.update(dict.fromkeys(joint.rvs_to_initial_values))
    fgraph, memo = fgraph_from_model(joint)
    observed = memo[outcome]
    rv, value = observed.owner.inputs[:2]
    tempered = model_potential(eta * pm.logp(rv, value).sum(), TEMPERED_OUTCOME)
    fgraph.remove_output(fgraph.outputs.index(observed))
    fgraph.add_output(tempered)
    model = model_from_fgraph(fgraph, mutate_fgraph=True)
    for name, value in initial.items():
        model.set_initval(model[name], value)
    return model
