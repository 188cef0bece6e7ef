"""Feedback of the outcome on the measures (MODEL.md "Feedback between parts").

In the joint mode the contribution outcome can pull depth and preference away from what
treaties and votes alone say. This compares each measured quantity's joint posterior with
its measurement-only (cut) posterior and flags shifts larger than ``threshold`` measurement
posterior SDs. The depth (theta) of every alliance shared with the US is compared too: each is
measured by nine treaty items only, while hundreds of state-year outcomes depend on it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

QUANTITIES = ("depth", "pref_row", "potential")


def compute_feedback(joint: xr.DataTree, measurement: xr.DataTree, us_alliances=(), threshold: float = 1.0,
                     quantities=QUANTITIES) -> pd.DataFrame:
    """One row per element: measurement and joint mean/SD, and the shift in measurement SDs."""
    selections = [(name, {}) for name in quantities]
    if len(us_alliances):
        selections.append(("depth_theta", {"alliance": list(us_alliances)}))
    frames = []
    for name, where in selections:
        m = measurement["posterior"][name].sel(where)
        j = joint["posterior"][name].sel(where)
        m_mean, m_sd = m.mean(("chain", "draw")).to_numpy(), m.std(("chain", "draw")).to_numpy()
        j_mean, j_sd = j.mean(("chain", "draw")).to_numpy(), j.std(("chain", "draw")).to_numpy()
        # quantities fixed at 0 (depth of non-allies) have no SD and cannot move
        scale = np.where(m_sd > 1e-9, m_sd, np.nan)
        frames.append(pd.DataFrame({
            "quantity": name,
            "element": m[m.dims[-1]].to_numpy(),
            "measurement_mean": m_mean, "measurement_sd": m_sd,
            "joint_mean": j_mean, "joint_sd": j_sd,
            "shift_sd": (j_mean - m_mean) / scale,
        }))
    table = pd.concat(frames, ignore_index=True)
    table["flag"] = table["shift_sd"].abs() > threshold
    return table
