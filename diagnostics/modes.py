"""Chain-mode detection: do the chains of a multi-chain fit describe one posterior?

A posterior with several modes shows up as chains that each look converged on their own but
settle in different places (the joint model's NATO/OAS modes, README). A slowly mixing
posterior shows up as chains that are each unhealthy. The two need different remedies
(better measurement vs a better parameterisation), so each scalar quantity gets a verdict:

- ``split``: the chain means are further apart than ``max_gap_sd`` pooled within-chain SDs,
  or the rank-normalised R-hat exceeds ``max_rhat`` while every chain is healthy on its own
  (within-chain split R-hat <= ``max_within_rhat`` and bulk ESS >= ``min_chain_ess``) and the
  means are further apart than ``max_gap_mcse`` Monte Carlo standard errors;
- ``slow``: R-hat exceeds ``max_rhat`` but some chain is unhealthy (not enough information to
  call it modes; run longer or reparameterise);
- ``agree``: neither.

The chains of a split quantity are grouped into modes by single linkage on their means (a gap
larger than ``max_gap_sd`` pooled SDs starts a new mode), so a report can say "chains 0, 3 vs
1, 2". Computing only; printing and plotting live elsewhere.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import xarray as xr
from arviz_stats.base import array_stats

# the quantities whose disagreement matters (issue 6): the effect, the projection, the
# regression coefficients, and (when the caller names the US treaties) their depth thetas
SPLIT_QUANTITIES = (
    "potential_effect", "projection_slope", "projection_intercept",
    "beta", "gamma", "logit_beta", "logit_gamma", "log_beta", "log_gamma",
)


@dataclass(frozen=True)
class ModeThresholds:
    """Defaults: 3 pooled SDs is far outside what four mixing chains produce (the expected range
    of four chain means is about 2 / sqrt(ESS per chain) SDs); R-hat 1.01 as in Vehtari et al.
    (2021); a chain with 50 effective draws and split R-hat 1.05 on its own halves is trusted."""

    max_gap_sd: float = 3.0
    # healthy chains whose means differ by less than this many Monte Carlo standard errors only mix
    # slowly: the range of four chain means exceeds 6 MCSE with probability below 0.001 by chance
    max_gap_mcse: float = 6.0
    max_rhat: float = 1.01
    max_within_rhat: float = 1.05
    min_chain_ess: float = 50.0


@dataclass
class ChainModes:
    """``table``: one row per scalar quantity; ``chains``: one row per quantity and chain."""

    table: pd.DataFrame
    chains: pd.DataFrame

    @property
    def any_split(self) -> bool:
        return bool(self.table["split"].any())

    @property
    def split_parameters(self) -> list[str]:
        return self.table.loc[self.table["split"], "parameter"].tolist()

    def describe(self) -> str:
        """One sentence for a run summary or a compare report."""
        split = self.table[self.table["split"]]
        slow = self.table[self.table["verdict"] == "slow"]
        if len(split):
            worst = split.sort_values("gap_sd", ascending=False).iloc[0]
            return (f"Chains disagree (modes) on {len(split)} quantities: {', '.join(split['parameter'])}; "
                    f"largest gap {worst['gap_sd']:.1f} pooled SDs on {worst['parameter']}, chain groups {worst['modes']}.")
        if len(slow):
            return f"No separate modes, but {len(slow)} quantities mix slowly (R-hat > threshold): {', '.join(slow['parameter'])}."
        return f"Chains agree on all {len(self.table)} quantities checked."


def _within_chain(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Split R-hat of each chain on its own two halves, and each chain's bulk ESS. values: (chain, draw)."""
    half = values.shape[1] // 2
    halves = np.stack([values[:, :half], values[:, half: 2 * half]], axis=1)  # (chain, 2, half)
    rhat = array_stats.rhat(halves, chain_axis=-2, draw_axis=-1, method="rank")
    ess = array_stats.ess(values[:, None, :], chain_axis=-2, draw_axis=-1, method="bulk")
    return np.asarray(rhat), np.asarray(ess)


def group_chains(means: np.ndarray, pooled_sd: float, max_gap_sd: float) -> list[list[int]]:
    """Single-linkage groups of chains: sorted means, a new group after every gap > max_gap_sd SDs."""
    order = np.argsort(means)
    groups = [[int(order[0])]]
    for previous, current in zip(order[:-1], order[1:]):
        if means[current] - means[previous] > max_gap_sd * pooled_sd:
            groups.append([])
        groups[-1].append(int(current))
    return [sorted(g) for g in groups]


def _scalar_draws(posterior: xr.Dataset, name: str, where: dict):
    """Yield (parameter label, element label, (chain, draw) array) for every scalar of a variable."""
    da = posterior[name]
    if where:
        da = da.sel({dim: values for dim, values in where.items() if dim in da.dims})
    extra = [d for d in da.dims if d not in ("chain", "draw")]
    if not extra:
        yield name, "", da.transpose("chain", "draw").to_numpy()
        return
    stacked = da.stack(element=extra).transpose("element", "chain", "draw")
    for k, label in enumerate(stacked["element"].to_numpy()):
        label = label if isinstance(label, tuple) else (label,)
        element = ",".join(str(v) for v in label)
        yield f"{name}[{element}]", element, stacked.isel(element=k).to_numpy()


def detect_chain_modes(
    idata: xr.DataTree,
    var_names=None,
    us_alliances=None,
    thresholds: ModeThresholds = ModeThresholds(),
) -> ChainModes:
    """Check every scalar of ``var_names`` (default: :data:`SPLIT_QUANTITIES` present in the
    posterior, plus ``depth_theta`` of ``us_alliances`` when given) for chains in different modes."""
    posterior = idata["posterior"].to_dataset() if isinstance(idata, xr.DataTree) else idata["posterior"]
    if posterior.sizes.get("chain", 1) < 2:
        raise ValueError("mode detection needs at least two chains")
    if var_names is None:
        var_names = [v for v in SPLIT_QUANTITIES if v in posterior.data_vars]
        if us_alliances is not None and "depth_theta" in posterior.data_vars:
            var_names.append("depth_theta")
    missing = [v for v in var_names if v not in posterior.data_vars]
    if missing:
        raise KeyError(f"not in the posterior: {missing}")
    where = {"alliance": list(us_alliances)} if us_alliances is not None else {}
    rows, chain_rows = [], []
    for name in var_names:
        for parameter, element, values in _scalar_draws(posterior, name, where):
            means, sds = values.mean(axis=1), values.std(axis=1, ddof=1)
            pooled_sd = float(np.sqrt(np.mean(sds**2)))
            within_rhat, chain_ess = _within_chain(values)
            rhat = float(array_stats.rhat(values, chain_axis=-2, draw_axis=-1, method="rank"))
            gap_sd = float((means.max() - means.min()) / pooled_sd) if pooled_sd > 0 else 0.0
            pooled_mcse = float(np.sqrt(np.mean(sds**2 / np.maximum(chain_ess, 1.0))))
            gap_mcse = float((means.max() - means.min()) / pooled_mcse) if pooled_mcse > 0 else 0.0
            healthy = bool(np.all(within_rhat <= thresholds.max_within_rhat) and np.all(chain_ess >= thresholds.min_chain_ess))
            # far apart in posterior SDs, or (healthy chains, high R-hat) further apart than their own
            # Monte Carlo error allows: a small gap with a high R-hat is slow mixing, not modes
            apart_by_mcse = rhat > thresholds.max_rhat and healthy and gap_mcse > thresholds.max_gap_mcse
            split = gap_sd > thresholds.max_gap_sd or apart_by_mcse
            verdict = "split" if split else ("slow" if rhat > thresholds.max_rhat else "agree")
            if gap_sd > thresholds.max_gap_sd:
                groups = group_chains(means, pooled_sd, thresholds.max_gap_sd)
            elif split:
                groups = group_chains(means, pooled_mcse, thresholds.max_gap_mcse)
            else:
                groups = [list(range(len(means)))]
            rows.append({
                "parameter": parameter, "quantity": name, "element": element, "rhat": rhat, "gap_sd": gap_sd, "gap_mcse": gap_mcse,
                "chains_healthy": healthy, "split": split, "verdict": verdict,
                "modes": " | ".join(",".join(map(str, g)) for g in groups),
            })
            for chain in range(len(means)):
                chain_rows.append({"parameter": parameter, "chain": chain, "mean": float(means[chain]),
                                   "sd": float(sds[chain]), "ess_bulk": float(chain_ess[chain]),
                                   "within_rhat": float(within_rhat[chain])})
    return ChainModes(pd.DataFrame(rows), pd.DataFrame(chain_rows))
