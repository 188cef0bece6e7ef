"""Run folders: one config -> one folder, written atomically, never overwritten.

``runs/<utc-stamp>-<mode>-<name>-<id>/`` holds

- ``posterior.nc``: the ArviZ DataTree (posterior, sample_stats, observed_data,
  log_likelihood (pointwise for the contribution part; per-draw totals of the treaty items and
  vote agreement in joint runs), log_prior (latent fields as per-draw totals), and mode-specific
  groups; see ``inference.sampling``);
- ``config.toml``: the fully resolved config (priors included);
- ``meta.json``: run id, seed, data hash and the tables it covers, package versions,
  timings, sample sizes and every excluded row count;
- ``summary.csv``: the headline parameters.

The folder is assembled under ``runs/.partial-<pid>-*`` and renamed into place only when
complete, so an interrupted run leaves nothing that looks like a run. A process killed while
writing (SIGKILL, power loss) cannot clean up; the next :func:`write_run` in that runs folder
removes the partial folders of processes that are no longer running and says so.

``meta.json`` stores the sha256 of ``posterior.nc``, ``config.toml``, ``summary.csv`` and of its
own content (without the ``checksums`` field); the posterior's attrs carry the same ``id`` as
``meta.json``. :func:`load_run` refuses a folder where any of these disagree, so an edited
posterior, seed or sampler-health record cannot pass as the run that was made.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import tomli_w
import xarray as xr

RUN_TABLES = ("panel.csv", "alliance_items.csv", "us_alliance_membership.csv", "un_agreement.csv", "ideal_points.csv")
PACKAGES = ("allypot", "pymc", "pytensor", "arviz", "arviz-base", "arviz-stats", "nutpie", "numpyro", "jax",
            "bambi", "numpy", "pandas", "xarray", "scipy")


CHECKSUMMED_FILES = ("posterior.nc", "config.toml", "summary.csv")
PARTIAL_PREFIX = ".partial-"
# a partial folder named without a pid (older allypot) counts as stale when it predates this process
PROCESS_STARTED = time.time()


class RunMismatchError(ValueError):
    """A run folder's contents do not belong to its metadata (edited, replaced or truncated)."""


def run_data_files(config: dict) -> tuple[str, ...]:
    """The tables a fit of ``config`` reads and hashes: its panel plus the measurement tables."""
    return (config["data"]["panel"],) + tuple(name for name in RUN_TABLES if name != "panel.csv")


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
    """Identify a run by what determines its result: the resolved config and the data.

    The tables' folder is left out: the data hash already covers their content, and the same
    analysis of the same data keeps its id in another checkout. An empty
    ``data.exclude_countries`` is left out too, so runs saved before the key existed keep their ids.
    """
    data = {k: v for k, v in config.get("data", {}).items()
            if k != "tables_dir" and not (k == "exclude_countries" and not v)}
    located = {**config, "data": data}
    payload = json.dumps(located, sort_keys=True, default=str) + data_digest
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
            # per variable: Dataset.astype with a dict must name every variable, and a group may also
            # hold float32 or integer ones
            ds = ds.assign({v: ds[v].astype("float32") for v in ds.data_vars if ds[v].dtype == "float64"})
        groups[node.path] = ds
        encoding[node.path] = {v: {"compression": "gzip", "compression_opts": 4} for v in ds.data_vars}
    return xr.DataTree.from_dict(groups), encoding


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def meta_digest(meta: dict) -> str:
    """sha256 of meta.json's content without its ``checksums`` field (canonical JSON)."""
    content = {k: v for k, v in meta.items() if k != "checksums"}
    return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def stale_partials(runs_dir: Path) -> list[Path]:
    """Partial run folders whose writer is gone: its pid is not running (or, for a folder
    without a pid in its name, it is older than this process)."""
    stale = []
    for folder in Path(runs_dir).glob(f"{PARTIAL_PREFIX}*"):
        pid = folder.name[len(PARTIAL_PREFIX):].split("-", 1)[0]
        if pid.isdigit():
            if int(pid) != os.getpid() and not _process_alive(int(pid)):
                stale.append(folder)
        elif folder.stat().st_mtime < PROCESS_STARTED:
            stale.append(folder)
    return sorted(stale)


def remove_stale_partials(runs_dir: Path) -> list[Path]:
    """Delete the partial folders of killed writers, one line on stderr for each."""
    removed = []
    for folder in stale_partials(runs_dir):
        shutil.rmtree(folder, ignore_errors=True)
        print(f"allypot: removed {folder}, an unfinished run folder left by a process that was killed while "
              "writing it", file=sys.stderr)
        removed.append(folder)
    return removed


def write_run(idata: xr.DataTree, config: dict, meta: dict, summary, runs_dir: Path) -> Path:
    """Write a complete run folder atomically and return its path.

    ``meta`` is stored with a ``checksums`` field added (the caller's dict is not changed).
    """
    runs_dir = Path(runs_dir)
    runs_dir.mkdir(parents=True, exist_ok=True)
    remove_stale_partials(runs_dir)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    base = f"{stamp}-{config['model']['mode']}-{config['run']['name']}-{meta['id']}"
    partial = Path(tempfile.mkdtemp(prefix=f"{PARTIAL_PREFIX}{os.getpid()}-", dir=runs_dir))
    try:
        idata, encoding = _netcdf_safe(idata)
        idata.attrs.update(
            id=meta["id"], model_type=config["model"]["mode"], version=meta["versions"]["allypot"],
            model_config=json.dumps(config["model"]), sampler_config=json.dumps(config["sampler"]),
            data_hash=meta["data_hash"], seed=config["run"]["seed"],
        )
        idata.to_netcdf(partial / "posterior.nc", engine="h5netcdf", encoding=encoding)
        (partial / "config.toml").write_text(tomli_w.dumps(config))
        summary.to_csv(partial / "summary.csv")
        stored = json.loads(json.dumps({k: v for k, v in meta.items() if k != "checksums"}, default=str))
        stored["checksums"] = {name: _sha256(partial / name) for name in CHECKSUMMED_FILES}
        stored["checksums"]["meta.json"] = meta_digest(stored)
        (partial / "meta.json").write_text(json.dumps(stored, indent=2) + "\n")
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


def verify_checksums(path: Path, meta: dict) -> None:
    """Raise :class:`RunMismatchError` naming every file whose content changed since the run."""
    stored = meta.get("checksums")
    if not isinstance(stored, dict):
        raise RunMismatchError(f"{path}: meta.json has no checksums (written by an older allypot or edited); "
                               "load_run(path, verify=False) loads it unchecked")
    changed = [name for name in CHECKSUMMED_FILES if stored.get(name) != _sha256(path / name)]
    if stored.get("meta.json") != meta_digest(meta):
        changed.append("meta.json")
    if changed:
        raise RunMismatchError(f"{path}: {', '.join(changed)} changed since the run was saved (sha256 mismatch)")


def load_run(path: str | Path, verify: bool = True) -> tuple[xr.DataTree, dict, dict]:
    """Reload a run folder: (posterior, resolved config, meta).

    With ``verify`` (the default) the stored checksums and ids must match the files; ``False``
    is for inspecting a damaged or old folder, never for analysis.
    """
    import tomllib

    path = Path(path)
    for name in ("posterior.nc", "config.toml", "meta.json", "summary.csv"):
        if not (path / name).exists():
            raise FileNotFoundError(f"{path}: not a complete run folder ({name} missing)")
    try:
        meta = json.loads((path / "meta.json").read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise RunMismatchError(f"{path}: meta.json is not valid JSON ({err})") from None
    if verify:
        verify_checksums(path, meta)
    config = tomllib.loads((path / "config.toml").read_text())
    idata = xr.open_datatree(path / "posterior.nc", engine="h5netcdf").load()
    if not verify:
        return idata, config, meta
    if idata.attrs.get("id") != meta["id"]:
        raise RunMismatchError(f"{path}: posterior id {idata.attrs.get('id')!r} != meta id {meta['id']!r}")
    if compute_run_id(config, meta["data_hash"]) != meta["id"]:
        raise RunMismatchError(f"{path}: config.toml or data hash changed since the run (id mismatch)")
    return idata, config, meta


def find_runs(runs_dir: str | Path, run_id: str) -> list[Path]:
    """Run folders in ``runs_dir`` whose ``meta.json`` carries ``run_id``, newest first.

    Unfinished (hidden ``.partial-*``) folders and unreadable meta files are skipped; whether a
    hit is intact is for :func:`load_run` to say.
    """
    runs_dir = Path(runs_dir)
    if not runs_dir.is_dir():
        return []
    hits = []
    for meta in runs_dir.glob(f"*{run_id}*/meta.json"):
        if meta.parent.name.startswith("."):
            continue
        try:
            if json.loads(meta.read_text()).get("id") == run_id:
                hits.append(meta.parent)
        except (json.JSONDecodeError, UnicodeDecodeError, OSError):
            continue
    return sorted(hits, reverse=True)

