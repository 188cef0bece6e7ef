"""Run folders: one config -> one folder, written atomically, never overwritten.

``runs/<utc-stamp>-<mode>-<name>-<id>/`` holds

- ``posterior.nc``: the ArviZ DataTree (posterior, sample_stats, observed_data,
  log_likelihood of the contribution part, log_prior, and mode-specific groups);
- ``config.toml``: the fully resolved config (priors included);
- ``meta.json``: run id, seed, data hash and the tables it covers, package versions,
  timings, sample sizes and every excluded row count;
- ``summary.csv``: the headline parameters.

The folder is assembled under ``runs/.partial-*`` and renamed into place only when complete,
so an interrupted run leaves nothing that looks like a run. The posterior's attrs carry the
same ``id`` as ``meta.json``; :func:`load_run` refuses a folder whose two disagree.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import platform
import shutil
import tempfile
from datetime import datetime, timezone
from pathlib import Path

import tomli_w
import xarray as xr

RUN_TABLES = ("panel.csv", "alliance_items.csv", "us_alliance_membership.csv", "un_agreement.csv", "ideal_points.csv")
PACKAGES = ("allypot", "pymc", "pytensor", "arviz", "arviz-base", "arviz-stats", "nutpie", "numpyro", "jax",
            "bambi", "numpy", "pandas", "xarray", "scipy")


class RunMismatchError(ValueError):
    """A run folder's posterior does not belong to its metadata."""


def data_hash(tables_dir: Path, files=RUN_TABLES) -> tuple[str, dict[str, str]]:
    """sha256 over the bytes of the tables a fit reads, plus each file's own hash."""
    per_file = {}
    combined = hashlib.sha256()
    for name in files:
        digest = hashlib.sha256((Path(tables_dir) / name).read_bytes()).hexdigest()
        per_file[name] = digest
        combined.update(f"{name}:{digest}\n".encode())
    return combined.hexdigest(), per_file


def compute_run_id(config: dict, data_digest: str) -> str:
    """Identify a run by what determines its result: the resolved config and the data."""
    payload = json.dumps(config, sort_keys=True, default=str) + data_digest
    return hashlib.sha256(payload.encode()).hexdigest()[:12]


def package_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


# Draws of these groups are stored as float32: 7 significant digits are far below Monte Carlo
# error, and a joint posterior with its per-row deterministics and pointwise log likelihood
# otherwise takes ~0.5 GB per run.
SINGLE_PRECISION_GROUPS = ("posterior", "log_likelihood", "measurement")


def _netcdf_safe(idata: xr.DataTree) -> tuple[xr.DataTree, dict]:
    """Drop object-typed sampler messages (netCDF cannot store them), shrink draws, compress."""
    groups, encoding = {}, {}
    for node in idata.subtree:
        ds = node.to_dataset(inherit=False)
        ds = ds.drop_vars([v for v in ds.data_vars if ds[v].dtype == object])
        if node.name in SINGLE_PRECISION_GROUPS:
            ds = ds.astype({v: "float32" for v in ds.data_vars if ds[v].dtype == "float64"})
        groups[node.path] = ds
        encoding[node.path] = {v: {"compression": "gzip", "compression_opts": 4} for v in ds.data_vars}
    return xr.DataTree.from_dict(groups), encoding


def write_run(idata: xr.DataTree, config: dict, meta: dict, summary, runs_dir: Path) -> Path:
    """Write a complete run folder atomically and return its path."""
    runs_dir = Path(runs_dir)
    runs_dir.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    base = f"{stamp}-{config['model']['mode']}-{config['run']['name']}-{meta['id']}"
    partial = Path(tempfile.mkdtemp(prefix=".partial-", dir=runs_dir))
    try:
        idata, encoding = _netcdf_safe(idata)
        idata.attrs.update(
            id=meta["id"], model_type=config["model"]["mode"], version=meta["versions"]["allypot"],
            model_config=json.dumps(config["model"]), sampler_config=json.dumps(config["sampler"]),
            data_hash=meta["data_hash"], seed=config["run"]["seed"],
        )
        idata.to_netcdf(partial / "posterior.nc", engine="h5netcdf", encoding=encoding)
        (partial / "config.toml").write_text(tomli_w.dumps(config))
        (partial / "meta.json").write_text(json.dumps(meta, indent=2, default=str) + "\n")
        summary.to_csv(partial / "summary.csv")
        final = _claim(partial, runs_dir, base)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    return final


def _claim(partial: Path, runs_dir: Path, base: str) -> Path:
    """Rename the finished folder into place; the same config run twice in one second gets a suffix.

    ``os.rename`` onto an existing non-empty folder fails, so an existing run is never replaced.
    """
    for attempt in range(1, 1000):
        final = runs_dir / (base if attempt == 1 else f"{base}-{attempt}")
        if final.exists():
            continue
        try:
            os.rename(partial, final)
            return final
        except OSError:
            continue
    raise FileExistsError(f"{runs_dir}: could not find a free folder name for {base}")


def load_run(path: str | Path) -> tuple[xr.DataTree, dict, dict]:
    """Reload a run folder: (posterior, resolved config, meta)."""
    import tomllib

    path = Path(path)
    for name in ("posterior.nc", "config.toml", "meta.json"):
        if not (path / name).exists():
            raise FileNotFoundError(f"{path}: not a complete run folder ({name} missing)")
    meta = json.loads((path / "meta.json").read_text())
    config = tomllib.loads((path / "config.toml").read_text())
    idata = xr.open_datatree(path / "posterior.nc", engine="h5netcdf").load()
    if idata.attrs.get("id") != meta["id"]:
        raise RunMismatchError(f"{path}: posterior id {idata.attrs.get('id')!r} != meta id {meta['id']!r}")
    if compute_run_id(config, meta["data_hash"]) != meta["id"]:
        raise RunMismatchError(f"{path}: config.toml or data hash changed since the run (id mismatch)")
    return idata, config, meta
