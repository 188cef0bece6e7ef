"""The ``primary`` depth aggregation: each state-year's US alliance chosen once, from Part A alone.

The choice must not depend on the outcome (or the joint model could pick the treaty that
suits the regression), so it is made before any mode runs: the IRT of Part A is fitted on
its own (the measurement-only posterior of theta, which no other part informs), each
state-year keeps the alliance with the highest posterior mean of theta, and every mode
then sees an ally matrix with one column (:func:`~allypot.models.dyad_depth.primary_ally_matrix`).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pymc as pm
from allypot.inference.sampling import sample_model
from allypot.models.dyad_depth import primary_ally_matrix
from allypot.models.inputs import ModelInputs
from allypot.models.irt import ordered_logit_irt


def measurement_theta_means(inputs: ModelInputs, irt_priors: dict, sampler: dict, seed: int) -> np.ndarray:
    """Posterior mean of theta per alliance from the IRT alone (Part A, no other part)."""
    with pm.Model(coords={"alliance": inputs.alliances, "item": list(inputs.item_names)}) as model:
        ordered_logit_irt(inputs.items, inputs.item_names, irt_priors)
    idata, _ = sample_model(model, sampler, seed, progress=False, quiet=True)
    return idata["posterior"]["depth_theta"].mean(("chain", "draw")).to_numpy()


def with_primary_alliances(inputs: ModelInputs, irt_priors: dict, sampler: dict, seed: int) -> ModelInputs:
    """``inputs`` with one alliance per state-year: the deepest by measurement-only posterior mean."""
    theta_mean = measurement_theta_means(inputs, irt_priors, sampler, seed)
    return replace(inputs, ally_matrix=primary_ally_matrix(inputs.ally_matrix, theta_mean))
