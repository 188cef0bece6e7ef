"""Part A: latent alliance depth from treaty provisions (ordered-logit graded-response IRT).

Generative model (MODEL.md Part A), for alliance ``a`` and item ``j``::

    theta_a           ~ Normal(0, 1)                      dims: alliance
    loading_j         ~ HalfNormal(.)   (> 0)             one per item
    cutpoints_j       ~ Normal(.), ordered                 K_j - 1 per item
    P(x_aj <= k)      = logistic(cutpoints_jk - loading_j * theta_a)

Identification: the N(0, 1) prior on theta fixes location and scale, positive loadings fix
the direction (deeper = higher), so depth needs no post-hoc sign flip. Missing items are
skipped (each item's likelihood uses only the alliances that code it). Items keep their own
number of categories, so each item gets its own ordered cut-point vector and one
``OrderedLogistic`` term: nine small vectorised terms instead of a ragged array.
"""

from __future__ import annotations

import numpy as np
import pymc as pm
import pytensor.tensor as pt
from allypot.priors import Prior, require

PRIOR_PARAMETERS = {"loading", "cutpoints"}


def ordered_logit_irt(items: np.ndarray, item_names: list[str], priors: dict[str, Prior], prefix: str = "depth"):
    """Register the IRT in the current model and return ``theta`` (dims ``alliance``).

    Parameters
    ----------
    items : (n_alliance, n_item) float array of category codes 0..K_j-1, NaN = not coded.
    item_names : names of the columns, used for the ``item`` coordinate.
    priors : the ``irt`` prior section.
    """
    require(priors, "irt", PRIOR_PARAMETERS)
    theta = pm.Normal(f"{prefix}_theta", 0.0, 1.0, dims="alliance")
    loading = priors["loading"].create(f"{prefix}_loading", dims="item")
    for j, name in enumerate(item_names):
        column = items[:, j]
        coded = np.flatnonzero(~np.isnan(column))
        codes = column[coded].astype("int64")
        n_cut = int(codes.max())
        if n_cut < 1:
            raise ValueError(f"item {name!r} has a single category among coded alliances; it carries no information")
        cut = priors["cutpoints"].create(
            f"{prefix}_cutpoints_{name}",
            shape=n_cut,
            transform=pm.distributions.transforms.ordered,
            initval=np.linspace(-1.0, 1.0, n_cut) if n_cut > 1 else np.zeros(1),
        )
        pm.OrderedLogistic(
            f"{prefix}_item_{name}",
            eta=loading[j] * theta[coded],
            cutpoints=cut,
            observed=codes,
            compute_p=False,
        )
    return theta


def simulate_items(theta: np.ndarray, loadings: np.ndarray, cutpoints: list[np.ndarray], rng) -> np.ndarray:
    """Draw item codes from the same generative model (for recovery tests)."""
    out = np.empty((theta.size, loadings.size))
    for j, cuts in enumerate(cutpoints):
        # P(x <= k) = logistic(c_k - eta); x = number of cut-points the latent logistic exceeds
        latent = loadings[j] * theta + rng.logistic(size=theta.size)
        out[:, j] = (latent[:, None] > np.asarray(cuts)[None, :]).sum(axis=1)
    return out


def depth_probability(theta):
    """Depth on the paper's 0..1 scale: the standard normal CDF of theta."""
    return 0.5 * (1.0 + pt.erf(theta / np.sqrt(2.0)))
