"""A run folder opened for review: posterior, config, meta and the model inputs it was fitted on.

Diagnostics never refit. What they need beyond the stored posterior (which state-year a row
is, which alliances the US belongs to, the outcome's centring) is rebuilt from the run's
resolved config and the bundled tables. Everything here looks variables up by name and
dims, because run folders are slimmed and models reparameterised over time.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

SAMPLE_DIMS = ("chain", "draw")


@dataclass
class RunData:
    path: Path
    idata: xr.DataTree
    config: dict
    meta: dict
    tables_dir: Path

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def mode(self) -> str:
        return self.config["model"]["mode"]

    @property
    def family(self) -> str:
        return self.config["model"]["family"]

    @property
    def posterior(self) -> xr.Dataset:
        return self.idata["posterior"].to_dataset()

    def group(self, name: str) -> xr.Dataset | None:
        """A group of the run's DataTree as a Dataset, or None when the folder lacks it."""
        return self.idata[name].to_dataset() if name in self.idata.children else None

    @cached_property
    def inputs(self):
        """The model inputs of the run, rebuilt from its resolved config and the tables."""
        from allypot.inference.fit import load_inputs

        inputs = load_inputs(self.config, self.tables_dir)
        n_rows = self.posterior.sizes.get("row")
        if n_rows is not None and n_rows != len(inputs.rows):
            raise ValueError(f"{self.path}: the posterior has {n_rows} rows but the tables in {self.tables_dir} give "
                             f"{len(inputs.rows)} for this config; diagnose it with the tables it was fitted on (--tables)")
        return inputs

    @cached_property
    def panel(self) -> pd.DataFrame:
        from allypot.data.loaders import load_table

        return load_table("panel", self.tables_dir, filename=self.config["data"]["panel"])

    @cached_property
    def row_labels(self) -> pd.DataFrame:
        """ccode, year and state abbreviation of every regression row."""
        names = self.panel[["ccode", "stateabb"]].drop_duplicates("ccode")
        return self.inputs.rows.merge(names, on="ccode", how="left")

    @cached_property
    def us_alliances(self) -> np.ndarray:
        """atopids of the alliances any sample state shares with the US."""
        inputs = self.inputs
        return np.unique(inputs.alliances[inputs.ally_matrix[inputs.ally_matrix >= 0]])

    @cached_property
    def chain_groups(self) -> list[np.ndarray]:
        """Chains that sample the same posterior.

        A cut run pools independent regression fits, one per measurement draw of potential,
        as consecutive chains: between-fit spread is the measurement uncertainty, not a
        convergence failure, so convergence is judged within each fit.
        """
        chains = np.arange(self.posterior.sizes["chain"])
        cut = self.group("cut_potential")
        if cut is None or "fit" not in cut.sizes:
            return [chains]
        n_fits = cut.sizes["fit"]
        if len(chains) % n_fits:
            raise ValueError(f"{self.path}: {len(chains)} chains do not split into {n_fits} cut fits")
        return list(chains.reshape(n_fits, -1))


def open_run(path: str | Path, tables_dir: str | Path) -> RunData:
    """Load a run folder (``load_run`` checks that its posterior, config and data hash agree)."""
    from allypot.inference.runs import load_run

    idata, config, meta = load_run(path)
    return RunData(Path(path), idata, config, meta, Path(tables_dir))


def potential_draws(run: RunData) -> xr.DataArray:
    """Posterior draws of alliance potential per row (dims chain, draw, row), whatever the mode.

    joint: a latent quantity in the posterior; cut: the measurement draw each fit was given
    (group ``cut_potential``, one per fit); plug-in: the two-step point estimate, recomputed
    from the measurement group's posterior means.
    """
    post = run.posterior
    if "potential" in post.data_vars:
        return post["potential"]
    shape = {"chain": post.sizes["chain"], "draw": post.sizes["draw"]}
    cut = run.group("cut_potential")
    if cut is not None:
        per_fit = cut["potential"].to_numpy()
        fit_of_chain = np.concatenate([np.full(len(g), k) for k, g in enumerate(run.chain_groups)])
        values = np.broadcast_to(per_fit[fit_of_chain][:, None, :], (shape["chain"], shape["draw"], per_fit.shape[1]))
        return xr.DataArray(values, dims=("chain", "draw", "row"), coords={"chain": post["chain"], "draw": post["draw"]})
    measurement = run.group("measurement")
    if measurement is not None and {"depth", "pref_row"} <= set(measurement.data_vars):
        from allypot.models.potential import potential_from_point_estimates

        point = potential_from_point_estimates(
            measurement["depth"].mean(SAMPLE_DIMS).to_numpy(), measurement["pref_row"].mean(SAMPLE_DIMS).to_numpy(),
            run.inputs.us_ally, run.config["model"]["projection"],
        )
        values = np.broadcast_to(point, (shape["chain"], shape["draw"], point.size))
        return xr.DataArray(values, dims=("chain", "draw", "row"), coords={"chain": post["chain"], "draw": post["draw"]})
    raise ValueError(f"{run.path}: no potential in the posterior, no cut_potential group and no measurement group "
                     "with depth and pref_row: alliance potential cannot be recovered without a refit")
