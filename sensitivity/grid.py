"""Specification grid: every combination of the analyst's choices, fitted on Dask, in one table.

A grid file (TOML) names a base run config and the axes to vary::

    [grid]
    name = "default"
    description = "what the grid is for"
    config = "../../inference/configs/joint_default.toml"   # optional, relative to this file

    design = "factorial"        # or "one_at_a_time" (below)

    [base]                      # optional run-config sections merged over `config`
    sampler = { chains = 2, draws = 500, tune = 500 }

    [axes]                      # a run-config key path -> the values it takes
    "model.specification" = ["baseline", "political"]
    "priors.hurdle.beta_log.kwargs.sigma" = [1.0, 2.5]

    [[exclude]]                 # combinations that make no sense, each with its reason
    reason = "ideal-point preference duplicates the UN-voting control"
    "model.preference" = "idealpoint"
    "model.specification" = ["political", "all"]

``factorial`` (the default) fits every combination. ``one_at_a_time`` fits the reference cell
(the first value of every axis) and then moves one axis at a time to each of its other values:
1 + sum(values - 1) cells instead of the product, which answers "which choice moves the effect
most" at a cost one machine can pay.

Every cell's config is resolved and validated before any fit starts (all invalid cells are
reported at once). One cell is one :func:`allypot.inference.fit.fit_config` call, a pure
function of (config, tables) that writes a run folder; the folder's run id (config + data
hash) is the cache key, so cells whose folder exists are read back, not refitted, and an
interrupted grid resumes where it stopped. Every cell's run is named ``grid`` (the name is part
of the id), so grids that share a cell share its fit. Cells run on a Dask cluster: a ``LocalCluster`` by
default, or any scheduler by address (the tables and runs folders must then be visible to
the workers at the same paths). A cell that fails is recorded with its error; the others go on.
"""

from __future__ import annotations

import copy
import hashlib
import difflib
import itertools
import json
import os
import time
import tomllib
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from datetime import datetime, timezone
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import xarray as xr
from allypot.diagnostics.checks import NATO, OAS_CHARTER, Thresholds, compute_depth_order
from allypot.inference.config import DEFAULTS, ConfigError, resolve_config
from allypot.inference.fit import fit_config, read_effect
from allypot.inference.runs import RunMismatchError, compute_run_id, data_hash, find_runs, package_versions, run_data_files
from allypot.markdown import markdown_table

GRID_SECTIONS = ("grid", "base", "axes", "exclude")
GRID_KEYS = ("name", "description", "config", "design")
DESIGNS = ("factorial", "one_at_a_time")
# every cell's run folder carries this name, so grids that share a cell share its fit
CELL_RUN_NAME = "grid"
# axes the grid refuses, with what to use instead
UNSUPPORTED_AXES = {
    "data.build_rules": "a cell cannot rebuild the tables; the build writes one alternative panel per placemat "
    "rule and one with the published contribution (data/CODEBOOK.md, 'Alternative panels'): vary the axis "
    "data.panel over them, e.g. \"data.panel\" = [\"panel.csv\", \"panel_placemat_max.csv\"] "
    "(sensitivity/grids/data_rules.toml); for any other rule, build a table set with `allypot data build --out DIR` "
    "after editing data/build_config.toml and run the grid with --tables DIR",
    "data.tables_dir": "the table set is chosen per grid with --tables, not per cell",
}
# the columns of the effect table, after the axis columns
EFFECT_COLUMNS = ["median", "q05", "q95", "p_positive", "rhat", "ess_bulk", "divergences", "converged",
                  "p_nato_above_oas", "status", "error", "fit_s", "run_id", "run"]
# the status of a cell without a result: its fit failed, or (``collect_grid``) it has not run yet
NOT_RUN = "not run"
NO_RESULT = ("failed", NOT_RUN)
# a cell "converged" when its run passed every check of the fit (any parameter, not only the effect)
CONVERGED_LABEL = "run passed every convergence check"
NOT_CONVERGED_LABEL = "a check failed (any parameter: R-hat > 1.01, ESS < 100/chain, divergences)"
# a cell whose depth ranks NATO above the OAS Charter less surely than this rests on a face-invalid
# measurement: the floor of `allypot diagnose`'s check
NATO_ABOVE_OAS_MIN = Thresholds().nato_above_oas_p_min


class GridError(ValueError):
    """A grid file or one of its cells is invalid; the message lists every problem."""


@dataclass(frozen=True)
class Exclusion:
    """Cells whose axis values all match ``match`` (a value or any of a list) are left out."""

    reason: str
    match: dict[str, tuple]

    def excludes(self, values: dict) -> bool:
        return all(values[path] in allowed for path, allowed in self.match.items())


@dataclass(frozen=True)
class Grid:
    name: str
    description: str
    base: dict
    axes: dict[str, list]
    exclusions: list[Exclusion]
    source: Path
    design: str = "factorial"
    overrides: dict = field(default_factory=dict)
    text: str = ""  # the file as read: the report keeps it even if the file changes during a long grid

    def combinations(self):
        """The axis values of every cell the design asks for, in a stable order."""
        if self.design == "factorial":
            yield from (dict(zip(self.axes, values)) for values in itertools.product(*self.axes.values()))
            return
        reference = {axis: values[0] for axis, values in self.axes.items()}
        yield reference
        for axis, values in self.axes.items():
            for value in values[1:]:
                yield reference | {axis: value}


@dataclass
class Cell:
    """One combination of axis values, its resolved config and its cache key."""

    values: dict
    config: dict
    run_id: str

    @property
    def label(self) -> str:
        return cell_label(self.values)


def cell_label(values: dict) -> str:
    """``specification=political, mode=cut``: the last part of each key path (priors keep theirs)."""
    return ", ".join(f"{path.removeprefix('priors.') if path.startswith('priors.') else path.split('.')[-1]}={value}"
                     for path, value in values.items())


@dataclass
class GridPlan:
    grid: Grid
    cells: list[Cell]
    excluded: list[tuple[dict, str]] = field(default_factory=list)


def _suggest(key: str, known) -> str:
    close = difflib.get_close_matches(key, list(known), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _flatten(table: dict, prefix: str = "") -> dict[str, object]:
    """Dotted key paths of a parsed TOML table; quoted ("model.family") and nested keys agree."""
    flat = {}
    for key, value in table.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict):
            flat |= _flatten(value, f"{path}.")
        else:
            flat[path] = value
    return flat


def _check_axis_path(path: str) -> str | None:
    """Why ``path`` cannot be an axis, or None if it names a run-config key."""
    for unsupported, why in UNSUPPORTED_AXES.items():
        if path == unsupported or path.startswith(unsupported + "."):
            return f"axes.{path}: not supported yet: {why}"
    section, _, rest = path.partition(".")
    if section not in DEFAULTS:
        return f"axes.{path}: unknown config section {section!r}{_suggest(section, DEFAULTS)}"
    if section == "priors":
        if len(rest.split(".")) < 3:
            return f"axes.{path}: a prior axis is priors.<component>.<parameter>.<field>, e.g. priors.hurdle.beta_log.kwargs.sigma"
        return None
    if rest not in DEFAULTS[section]:
        return f"axes.{path}: unknown key{_suggest(rest, DEFAULTS[section])}"
    return None


def parse_overrides(assignments: list[str]) -> dict[str, object]:
    """``["sampler.draws=500", "model.family='hurdle'"]`` -> key paths and TOML values."""
    overrides, errors = {}, []
    for text in assignments:
        key, sep, value = text.partition("=")
        if not sep or not key.strip():
            errors.append(f"--set {text!r}: expected KEY=VALUE, e.g. sampler.draws=500")
            continue
        try:
            overrides[key.strip()] = tomllib.loads(f"v = {value.strip()}")["v"]
        except tomllib.TOMLDecodeError:
            overrides[key.strip()] = value.strip()  # a bare word is a string: model.mode=cut
    if errors:
        raise GridError("\n".join(errors))
    return overrides


def load_grid(path: str | Path, overrides: dict[str, object] | None = None) -> Grid:
    """Read and check a grid file's structure (cell configs are checked by :func:`plan_grid`).

    ``overrides`` (key path -> value) change the base config of every cell, e.g. a lighter sampler
    for a first pass; the grid's name then carries a digest of them, so its report and its run
    folders never pass for the grid as written."""
    path = Path(path)
    if path.is_dir():
        raise GridError(f"{path}: is a folder, not a grid file (e.g. sensitivity/grids/default.toml)")
    if not path.is_file():
        raise GridError(f"{path}: grid file not found")
    text = path.read_text()
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise GridError(f"{path}: not valid TOML: {err}") from None
    errors = [f"{key}: unknown section{_suggest(key, GRID_SECTIONS)}" for key in raw if key not in GRID_SECTIONS]
    head = raw.get("grid", {})
    errors += [f"grid.{key}: unknown key{_suggest(key, GRID_KEYS)}" for key in head if key not in GRID_KEYS]
    design = head.get("design", "factorial")
    if design not in DESIGNS:
        errors.append(f"grid.design = {design!r}: choose one of {list(DESIGNS)}{_suggest(str(design), DESIGNS)}")
    base: dict = {}
    if "config" in head:
        try:
            with open(path.parent / head["config"], "rb") as fh:
                base = tomllib.load(fh)
        except (OSError, tomllib.TOMLDecodeError) as err:
            errors.append(f"grid.config = {head['config']!r}: cannot read the base config ({err})")
    for section, values in raw.get("base", {}).items():
        if isinstance(values, dict) and isinstance(base.get(section), dict):
            base[section] = _merge(base[section], values)
        else:
            base[section] = values

    axes = _flatten(raw.get("axes", {}))
    if not axes:
        errors.append("axes: the grid has no axes")
    for axis, values in axes.items():
        problem = _check_axis_path(axis)
        if problem:
            errors.append(problem)
        elif not isinstance(values, list) or not values:
            errors.append(f"axes.{axis} = {values!r}: expected a non-empty list of values")
        elif len({json.dumps(v) for v in values}) < len(values):
            errors.append(f"axes.{axis} = {values!r}: a value is listed twice")

    exclusions = []
    for k, entry in enumerate(raw.get("exclude", []), start=1):
        entry = _flatten(entry)
        reason = entry.pop("reason", None)
        if not isinstance(reason, str) or not reason:
            errors.append(f"exclude #{k}: give a reason (reason = \"...\")")
        if not entry:
            errors.append(f"exclude #{k}: names no axis")
        match = {}
        for axis, value in entry.items():
            allowed = tuple(value) if isinstance(value, list) else (value,)
            if axis not in axes:
                errors.append(f"exclude #{k}: {axis!r} is not an axis of this grid{_suggest(axis, axes)}")
            elif unknown := [v for v in allowed if v not in axes[axis]]:
                errors.append(f"exclude #{k}: {axis} value(s) {unknown} are not on the axis {axes[axis]}")
            match[axis] = allowed
        exclusions.append(Exclusion(reason or "", match))
    if errors:
        raise GridError(f"{path}: invalid grid file\n  - " + "\n  - ".join(errors))
    name = head.get("name", path.stem)
    if overrides:
        clash = sorted(set(overrides) & set(axes))
        if clash:
            raise GridError(f"{path}: --set {', '.join(clash)}: an axis of this grid cannot also be set for every cell")
        for key, value in overrides.items():
            _set_path(base, key, value)
        name += "-set-" + hashlib.sha256(json.dumps(overrides, sort_keys=True).encode()).hexdigest()[:6]
    return Grid(name, head.get("description", ""), base, axes, exclusions, path, design, dict(overrides or {}), text)


def _merge(base: dict, override: dict) -> dict:
    merged = copy.deepcopy(base)
    for key, value in override.items():
        merged[key] = _merge(merged[key], value) if isinstance(value, dict) and isinstance(merged.get(key), dict) else value
    return merged


def _set_path(config: dict, path: str, value) -> None:
    *parents, last = path.split(".")
    for key in parents:
        config = config.setdefault(key, {})
    config[last] = value


def plan_grid(grid: Grid, tables_dir: Path) -> GridPlan:
    """Expand the axes, drop excluded cells (keeping them with their reason), resolve and
    validate every cell's config and compute its run id. All invalid cells are reported
    together, before anything is fitted."""
    tables_dir = Path(tables_dir)
    errors, cells, excluded = [], [], []
    hashes: dict[tuple[str, ...], str] = {}
    seen: dict[str, str] = {}
    for values in grid.combinations():
        reasons = [rule.reason for rule in grid.exclusions if rule.excludes(values)]
        if reasons:
            excluded.append((values, "; ".join(reasons)))
            continue
        user = copy.deepcopy(grid.base)
        for path, value in values.items():
            _set_path(user, path, value)
        user.setdefault("run", {})["name"] = CELL_RUN_NAME
        label = cell_label(values)
        try:
            config = resolve_config(user, source=f"cell ({label})")
        except ConfigError as err:
            errors.append(str(err))
            continue
        files = run_data_files(config)
        if files not in hashes:
            try:
                hashes[files] = data_hash(tables_dir, files)[0]
            except FileNotFoundError as err:
                errors.append(f"cell ({label}): table not found: {err.filename}")
                continue
        cell = Cell(values, config, compute_run_id(config, hashes[files]))
        if cell.run_id in seen:
            errors.append(f"cell ({label}) resolves to the same config as cell ({seen[cell.run_id]})")
            continue
        seen[cell.run_id] = label
        cells.append(cell)
    if errors:
        raise GridError(f"{grid.source}: {len(errors)} invalid cell(s); nothing was fitted\n  - " + "\n  - ".join(errors))
    return GridPlan(grid, cells, excluded)


def summarise_run(path: Path) -> dict:
    """The effect on the expected share, its convergence and how surely depth ranks NATO above the
    OAS Charter, read back from a run folder."""
    row, meta = read_effect(path)
    return ({**row, "converged": row.pop("checks_passed"), "p_nato_above_oas": read_nato_above_oas(path)}
            | {"fit_s": meta["timings_s"]["total_s"], "run_id": meta["id"], "run": str(path)})


def read_nato_above_oas(path: Path) -> float:
    """P(NATO deeper than the OAS Charter) from a run folder's depth draws, NaN where it keeps none.

    Read from the folder rather than stored at fit time, so folders written before the column
    existed get it too; opened lazily, so only ``depth_theta`` is loaded (``read_effect`` has
    already verified the file)."""
    with xr.open_datatree(Path(path) / "posterior.nc", engine="h5netcdf") as tree:
        order = compute_depth_order(tree)
    return np.nan if order is None else order.p_nato_above_oas


def cached_summary(runs_dir: Path, run_id: str) -> dict | None:
    """The summary of a complete, loadable run folder with this id; None if there is none.

    A folder with the id that cannot be loaded (damaged, tampered) is not a cache hit: the
    cell is refitted into a new folder and the old one is left for inspection.
    """
    for path in find_runs(runs_dir, run_id):
        try:
            return summarise_run(path)
        except (RunMismatchError, OSError):
            continue
    return None


def cached_row(runs_dir: Path, run_id: str) -> dict | None:
    """A cell's row read back from its run folder (status "cached"); None if it has none."""
    cached = cached_summary(Path(runs_dir), run_id)
    return None if cached is None else cached | {"status": "cached"}


def run_cell(config: dict, run_id: str, tables_dir: str, runs_dir: str) -> dict:
    """One grid cell on a worker: read its cached run folder, or fit it and summarise the result."""
    cached = cached_row(Path(runs_dir), run_id)
    if cached is not None:
        return cached
    path = fit_config(config, Path(tables_dir), Path(runs_dir), progress=False).path
    summary = summarise_run(path)
    if summary["run_id"] != run_id:
        raise GridError(f"{path}: run id {summary['run_id']} differs from the grid's cache key {run_id}; "
                        "the tables a fit hashes changed (see inference.runs.run_data_files)")
    return summary | {"status": "fitted"}


@contextmanager
def dask_client(scheduler: str | None = None, n_workers: int | None = None, threads_per_worker: int = 1,
                processes: bool = True):
    """A Dask client on ``scheduler`` (``tcp://host:port``), or on a new ``LocalCluster``.

    The local default is one single-threaded worker per two cores: every fit already runs
    two chains in parallel (``cores=min(chains, 2)``), so more workers only make fits compete.
    """
    from dask.distributed import Client, LocalCluster

    if scheduler:
        with Client(scheduler) as client:
            yield client
        return
    workers = n_workers or max(1, (os.cpu_count() or 2) // 2)
    with LocalCluster(n_workers=workers, threads_per_worker=threads_per_worker, processes=processes,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        yield client


def _failed_row(error: BaseException) -> dict:
    return {"status": "failed", "error": f"{type(error).__name__}: {error}".replace("\n", " ")}


def run_grid(plan: GridPlan, client, tables_dir: Path, runs_dir: Path,
             report=partial(print, flush=True)) -> pd.DataFrame:
    """Fit (or read back) every cell of ``plan`` on ``client``; one row per cell, failures included.

    Progress goes to ``report`` after each cell: done, in flight, failed, cached, and an
    estimate of the time left from the cells fitted so far.
    """
    from dask.distributed import as_completed

    started = time.perf_counter()
    # a key unique to this call: a key reused while the scheduler still holds the previous pass's
    # future would hand back that pass's result (a "fitted" row for a cell this pass read back)
    batch = uuid.uuid4().hex[:8]
    futures = {
        client.submit(run_cell, cell.config, cell.run_id, str(tables_dir), str(runs_dir),
                      key=f"grid-cell-{cell.run_id}-{batch}", pure=False, retries=0): cell
        for cell in plan.cells
    }
    slots = max(1, sum(client.nthreads().values()))
    rows, counts, fit_seconds = {}, {"fitted": 0, "cached": 0, "failed": 0}, []
    report(f"grid {plan.grid.name}: {len(plan.cells)} cells ({len(plan.excluded)} excluded), {slots} worker thread(s)")
    for future in as_completed(futures):
        cell = futures[future]
        if future.status == "error":
            row = _failed_row(future.exception())
        else:
            row = future.result()
            fit_seconds.append(row["fit_s"])  # a cached cell's own fit time informs the estimate too
        counts[row["status"]] += 1
        rows[cell.run_id] = row
        future.release()
        done = len(rows)
        left = len(plan.cells) - done
        eta = f"~{_duration(left * np.mean(fit_seconds) / slots)} left" if fit_seconds and left else (
            "done" if not left else "time left unknown until a fit finishes")
        report(f"[{done}/{len(plan.cells)}] {cell.label}: {row['status']} | fitted {counts['fitted']}, "
               f"cached {counts['cached']}, failed {counts['failed']}, in flight {min(left, slots)} | "
               f"{_duration(time.perf_counter() - started)} elapsed, {eta}")
    return effect_table(plan, rows)


def collect_grid(plan: GridPlan, runs_dir: Path) -> pd.DataFrame:
    """The effect table from the cells whose run folders exist, fitting nothing; the others are
    "not run". For a look at a grid that is still running, or one stopped part-way."""
    rows = {cell.run_id: cached_row(runs_dir, cell.run_id) or {"status": NOT_RUN} for cell in plan.cells}
    return effect_table(plan, rows)


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m" if seconds >= 3600 else f"{seconds // 60}m{seconds % 60:02d}s"


def effect_table(plan: GridPlan, rows: dict[str, dict]) -> pd.DataFrame:
    """One row per cell in grid order: its axis values, then the effect, convergence and run."""
    records = [cell.values | {column: rows.get(cell.run_id, {}).get(column) for column in EFFECT_COLUMNS}
               for cell in plan.cells]
    table = pd.DataFrame.from_records(records, columns=list(plan.grid.axes) + EFFECT_COLUMNS)
    table["run_id"] = [cell.run_id for cell in plan.cells]
    return table


# an axis that changes the effect's unit: its cells' medians are not comparable with the reference's
UNIT_AXES = ("data.outcome",)


def one_at_a_time_moves(table: pd.DataFrame, axes: list[str]) -> pd.DataFrame:
    """For a one-at-a-time grid (first row = the reference cell): which axis each other row moved,
    and how far its median lies from the reference's, also in reference 90%-interval widths.

    ``standardised`` (median / own 90% width) is unit-free, so it also ranks cells that change
    the outcome (``UNIT_AXES``), whose shifts in the reference's units mean nothing (NaN)."""
    reference = table.iloc[0]
    width = reference["q95"] - reference["q05"]
    reference_standardised = reference["median"] / width if width > 0 else np.nan
    elsewhere = other_unit(table, axes)
    rows = []
    for index, row in table.iloc[1:].iterrows():
        moved = [a for a in axes if row[a] != reference[a]]
        comparable = not elsewhere[index]
        own_width = row["q95"] - row["q05"]
        standardised = row["median"] / own_width if own_width > 0 else np.nan
        shift = row["median"] - reference["median"] if comparable else np.nan
        rows.append({"choice": ", ".join(f"{a.split('.')[-1]}={row[a]}" for a in moved),
                     "median": row["median"], "shift": shift,
                     "shift_in_widths": shift / width if width > 0 else np.nan,
                     "standardised": standardised, "standardised_shift": standardised - reference_standardised,
                     "converged": row["converged"], "status": row["status"]})
    return pd.DataFrame(rows, columns=["choice", "median", "shift", "shift_in_widths", "standardised",
                                       "standardised_shift", "converged", "status"])


def other_unit(table: pd.DataFrame, axes: list[str]) -> pd.Series:
    """Rows whose effect is in another unit than the first row's (another outcome)."""
    unit_axes = [a for a in axes if a in UNIT_AXES]
    if not unit_axes or not len(table):
        return pd.Series(False, index=table.index)
    return (table[unit_axes] != table.iloc[0][unit_axes]).any(axis=1)


def doubtful_depth_order(table: pd.DataFrame) -> pd.Series:
    """Cells whose depth ranks NATO above the OAS Charter with P below NATO_ABOVE_OAS_MIN
    (cells without depth draws, NaN, are not flagged)."""
    return table["p_nato_above_oas"].astype(float) < NATO_ABOVE_OAS_MIN


def _cell_labels(table: pd.DataFrame, axes: list[str], design: str) -> list[str]:
    if design == "one_at_a_time" and len(table):
        return ["reference"] + one_at_a_time_moves(table, axes)["choice"].tolist()
    return [", ".join(f"{row[a]}" for a in axes) for _, row in table.iterrows()]


TEXT_BOX = {"facecolor": "white", "edgecolor": "none", "pad": 1}


def plot_forest(table: pd.DataFrame, axes: list[str], design: str = "factorial"):
    """Forest plot: median and 90% interval of the effect per cell; hollow = not converged,
    failed and not-yet-run cells are named at zero, and cells in another unit than the first
    (another outcome) are written out there instead of drawn on its scale. One-at-a-time grids label each cell by the choice it moved
    and mark the reference cell's median. Cells whose depth does not surely rank NATO above the OAS
    Charter carry their P(NATO>OAS) at the right of the row. Returns the figure."""
    labels = _cell_labels(table, axes, design)
    height = 1.3 + 0.28 * len(table)
    fig, ax = plt.subplots(figsize=(8, height))
    y = np.arange(len(table))[::-1]
    failed = table["status"].isin(NO_RESULT)
    elsewhere = other_unit(table, axes) & ~failed
    converged = table["converged"].fillna(False).astype(bool)
    for mask, style in ((~failed & ~elsewhere & converged, {"color": "C0", "mfc": "C0"}),
                        (~failed & ~elsewhere & ~converged, {"color": "C3", "mfc": "white"})):
        if mask.any():
            ax.errorbar(table.loc[mask, "median"], y[mask.to_numpy()],
                        xerr=[table.loc[mask, "median"] - table.loc[mask, "q05"], table.loc[mask, "q95"] - table.loc[mask, "median"]],
                        fmt="o", capsize=2, **style, label=CONVERGED_LABEL if style["color"] == "C0" else NOT_CONVERGED_LABEL)
    for yi, status in zip(y[failed.to_numpy()], table.loc[failed, "status"]):
        ax.text(0, yi, status, color="C7", va="center", ha="center", fontsize=8, bbox=TEXT_BOX)
    for yi, (_, row) in zip(y[elsewhere.to_numpy()], table[elsewhere].iterrows()):
        ax.text(0, yi, f"other unit: {row['median']:.3g} [{row['q05']:.3g}, {row['q95']:.3g}]", color="C7",
                va="center", ha="center", fontsize=8, bbox=TEXT_BOX)
    doubtful = doubtful_depth_order(table)
    for yi, p in zip(y[doubtful.to_numpy()], table.loc[doubtful, "p_nato_above_oas"]):
        ax.text(1.01, yi, f"P(NATO>OAS) {p:.2f}", transform=ax.get_yaxis_transform(), color="C3", va="center",
                ha="left", fontsize=7)
    ax.axvline(0, color="k", lw=0.8, ls="--")
    if design == "one_at_a_time" and len(table) and table.iloc[0]["status"] not in NO_RESULT:
        ax.axvline(table.iloc[0]["median"], color="C0", lw=0.8, ls=":", label="reference cell's median")
    ax.set_yticks(y, labels, fontsize=8)
    ax.set_ylim(-0.7, len(table) - 0.3)
    ax.set_xlabel("alliance-potential effect on the expected share (median, 90% interval)")
    ax.set_title(" x ".join(a.split(".")[-1] for a in axes), fontsize=9)
    # the legend in a strip of its own below the axes: inside them it covers a row of a small grid
    legend_strip = 0.3 / height if ax.get_legend_handles_labels()[0] else 0.0
    if legend_strip:
        fig.legend(*ax.get_legend_handles_labels(), loc="lower center", ncol=2, fontsize=7, frameon=False)
    fig.tight_layout(rect=(0, legend_strip, 1, 1))
    return fig


def grid_report(plan: GridPlan, table: pd.DataFrame) -> str:
    """Markdown: counts first, then the effect per cell, failures and excluded cells."""
    grid = plan.grid
    axes = list(grid.axes)
    failed = table[table["status"] == "failed"]
    not_run = table[table["status"] == NOT_RUN]
    usable = table[table["converged"].fillna(False).astype(bool)]
    lines = [f"# Specification grid `{grid.name}`", ""]
    if grid.description:
        lines += [grid.description, ""]
    lines += [
        f"{len(table)} cells over {len(axes)} {'axis' if len(axes) == 1 else 'axes'} ({', '.join(f'`{a}`' for a in axes)}); "
        f"{len(plan.excluded)} combinations excluded; {len(failed)} failed; "
        + (f"**{len(not_run)} not run yet** (collected part-way); " if len(not_run) else "")
        + f"{len(usable)} converged "
        "(their runs passed every check: R-hat <= 1.01, bulk ESS >= 100 per chain and no divergences, for every "
        "parameter; the `rhat` column is the effect's own). Effect on the expected outcome (the share of armed "
        "forces unless the cell's outcome says otherwise) per unit of alliance potential, median and 90% "
        "equal-tailed interval.",
        "",
    ]
    usable = usable[~other_unit(table, axes)[usable.index]]
    if len(usable):
        lines += [f"Among converged cells in the first cell's unit the median effect runs from {usable['median'].min():.5f} to "
                  f"{usable['median'].max():.5f}; {int((usable['q05'] > 0).sum())} have a 90% interval above 0 "
                  f"and {int((usable['q95'] < 0).sum())} below 0.", ""]
    lines += [_depth_order_sentence(table, axes, grid.design), ""]
    if grid.design == "one_at_a_time" and table.iloc[0]["status"] not in NO_RESULT:
        moves = one_at_a_time_moves(table, axes)
        moves = moves[~moves["status"].isin(NO_RESULT)].sort_values("standardised_shift", key=np.abs, ascending=False)
        lines += ["One choice at a time from the reference cell (the first row), largest move first. `shift` is the "
                  "change of the median in the effect's units and `shift_in_widths` in the reference's 90% interval "
                  "widths (both empty where the choice changes the outcome, hence the unit); `standardised` is the "
                  "median over its own 90% interval width, unit-free, and the order follows its change from the "
                  "reference (`standardised_shift`).", "",
                  markdown_table(moves.drop(columns="status"), floatfmt="{:.5f}"), ""]
    shown = table.drop(columns=["error", "run", "run_id"]).rename(columns={a: a.split(".")[-1] for a in axes})
    lines += [markdown_table(shown, floatfmt="{:.5f}"), "", "![forest plot](forest.png)", ""]
    if len(failed):
        lines += ["## Failed cells", ""] + [
            f"- {', '.join(str(row[a]) for a in axes)}: {row['error']}" for _, row in failed.iterrows()] + [""]
    if plan.excluded:
        lines += ["## Excluded combinations", ""] + [
            f"- {', '.join(str(v) for v in values.values())}: {reason}" for values, reason in plan.excluded] + [""]
    lines += ["## Run folders", ""] + [f"- `{row['run_id']}`: `{row['run']}`" for _, row in table.iterrows() if pd.notna(row["run"]) and row["run"]]
    return "\n".join(lines) + "\n"


def _depth_order_sentence(table: pd.DataFrame, axes: list[str], design: str) -> str:
    """One sentence: which cells rest on a depth that does not surely rank NATO above the OAS Charter."""
    measured = int(table["p_nato_above_oas"].notna().sum())
    doubtful = doubtful_depth_order(table)
    order = f"NATO ({NATO}) above the OAS Charter ({OAS_CHARTER})"
    if not measured:
        return f"No cell keeps draws of depth, so none shows whether depth ranks {order} (`p_nato_above_oas` is empty)."
    if not doubtful.any():
        return (f"Depth ranks {order} with P >= {NATO_ABOVE_OAS_MIN} (`p_nato_above_oas`) in every cell with draws "
                f"of depth ({measured} of {len(table)}).")
    named = [f"{label} ({p:.2f})" for label, p, flag in
             zip(_cell_labels(table, axes, design), table["p_nato_above_oas"], doubtful) if flag]
    return (f"**Depth ranks {order} with P < {NATO_ABOVE_OAS_MIN} (`p_nato_above_oas`) in {len(named)} of {measured} "
            f"cells with draws of depth**, a face-invalid measurement their effect rests on: {'; '.join(named)}.")


def write_grid_outputs(plan: GridPlan, table: pd.DataFrame, out_dir: Path, tables_dir: Path, seconds: float,
                       scheduler: str) -> Path:
    """Write ``effects.csv``, ``effects.md``, ``forest.png``, the grid file and ``meta.json``
    into ``out_dir/<grid name>/`` (replaced as a whole: a grid report is a function of its runs)."""
    folder = Path(out_dir) / plan.grid.name
    folder.mkdir(parents=True, exist_ok=True)
    table.to_csv(folder / "effects.csv", index=False)
    (folder / "effects.md").write_text(grid_report(plan, table))
    fig = plot_forest(table, list(plan.grid.axes), plan.grid.design)
    try:
        fig.savefig(folder / "forest.png", dpi=120)
    finally:
        plt.close(fig)
    (folder / "grid.toml").write_text(plan.grid.text)
    excluded = [{"values": values, "reason": reason} for values, reason in plan.excluded]
    meta = {
        "grid": plan.grid.name, "design": plan.grid.design, "overrides": plan.grid.overrides, "written": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "tables_dir": str(tables_dir), "scheduler": scheduler, "wall_s": seconds,
        "cells": len(plan.cells), "status": table["status"].value_counts().to_dict(),
        "excluded": excluded, "versions": package_versions(),
    }
    (folder / "meta.json").write_text(json.dumps(meta, indent=2, default=str) + "\n")
    return folder
