"""The data build: raw public files -> the derived tables committed under data/tables/.

``build_all`` first checks every raw file it will read against its sha256 (see
:mod:`allypot.data.pipeline.raw_inputs`), then runs the steps in dependency order (the crosswalk
first: every other step maps country names and codes through it) into a temporary folder
beside the destination, and swaps that folder in only when every table (and the codebook)
is written: a build that fails half-way leaves the old tables as they were. It writes
``exclusions.csv``, the count and reason of every raw row left out, which the data report shows.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

from allypot.data.schema import ExclusionLog

from allypot.paths import DEFAULT_RAW_DIR, TABLES_DIR

# what a folder of built tables holds; a destination holding anything else is not replaced
BUILT_SUFFIXES = (".csv", ".meta.json")


def build_all(
    raw_dir: Path = DEFAULT_RAW_DIR,
    out_dir: Path = TABLES_DIR,
    progress=print,
    codebook_path: Path | None = None,
    check_raw: bool = True,
) -> ExclusionLog:
    """Build every table from ``raw_dir`` into ``out_dir`` all at once, or not at all.

    Parameters
    ----------
    raw_dir, out_dir : Path
        The raw data folder and the folder of tables to (re)place.
    progress : callable
        Receives one line per step.
    codebook_path : Path, optional
        Also write the codebook there, swapped in with the tables.
    check_raw : bool
        Check the raw files against their manifests first (off only to test what a build
        does when a step fails).
    """
    from allypot.data.pipeline import (
        alliances,
        casualties,
        covariates,
        crosswalk,
        panel,
        panel_variants,
        published,
        troops,
        unvotes,
    )
    from allypot.data.pipeline.raw_inputs import check_raw_inputs

    raw_dir, out_dir = Path(raw_dir), Path(out_dir)
    if not raw_dir.is_dir():
        raise FileNotFoundError(
            f"raw data folder {raw_dir} not found: pass --raw DIR (the folder holding afghanistan/, atop/, cow/ ...)"
        )
    _check_replaceable(out_dir)
    checked = check_raw_inputs(raw_dir) if check_raw else None
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    for stale in sorted(out_dir.parent.glob(f".{out_dir.name}.building-*")):
        progress(f"removing {stale}, left by a build that was killed")
        shutil.rmtree(stale)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.building-", dir=out_dir.parent))
    staged_codebook = None
    try:
        log = ExclusionLog()
        steps = [
            ("crosswalk", lambda: crosswalk.write_crosswalk(raw_dir, staging, log)),
            ("troops and armed forces", lambda: troops.write_troop_tables(
                raw_dir, staging, troops.load_rules(), crosswalk.load_resolver(staging), log)),
            ("casualties", lambda: casualties.write_casualties(raw_dir, staging, crosswalk.load_resolver(staging), log)),
            ("alliances", lambda: alliances.write_alliance_tables(raw_dir, staging, log)),
            ("UN votes and ideal points", lambda: unvotes.write_unvote_tables(
                raw_dir, staging, log, crosswalk.load_resolver(staging))),
            ("covariates", lambda: covariates.write_covariate_tables(raw_dir, staging, log)),
            ("published panel", lambda: published.write_published_panel(raw_dir, staging, log)),
            ("rebuilt panel", lambda: panel.write_panel(staging, staging, log)),
            ("alternative panels", lambda: panel_variants.write_panel_variants(staging, staging)),
        ]
        for i, (name, step) in enumerate(steps, 1):
            progress(f"[{i}/{len(steps)}] {name}")
            step()
        log.to_frame().to_csv(staging / "exclusions.csv", index=False, lineterminator="\n")
        if checked is not None:
            _check_sources_were_checked(staging, checked)
        if codebook_path is not None:
            from allypot.data.codebook import write_codebook

            codebook_path = Path(codebook_path)
            codebook_path.parent.mkdir(parents=True, exist_ok=True)
            handle, name = tempfile.mkstemp(prefix=f".{codebook_path.name}.", dir=codebook_path.parent)
            os.close(handle)
            staged_codebook = write_codebook(Path(name), staging)
        _swap_in(staging, out_dir)
        if staged_codebook is not None:
            os.chmod(staged_codebook, 0o666 & ~_umask())
            os.replace(staged_codebook, codebook_path)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        if staged_codebook is not None and staged_codebook.exists():
            staged_codebook.unlink()
    return log


def _check_replaceable(out_dir: Path) -> None:
    """Refuse to replace a folder that holds anything but the files of an earlier build."""
    if not out_dir.exists():
        return
    if not out_dir.is_dir():
        raise FileExistsError(f"{out_dir} is a file, not a folder of tables: give --out a folder")
    foreign = sorted(p.name for p in out_dir.iterdir() if not (p.is_file() and p.name.endswith(BUILT_SUFFIXES)))
    if foreign:
        raise FileExistsError(
            f"{out_dir} holds {foreign[:3]}, which the build does not write; refusing to replace it"
            " (give --out a new folder or one an earlier build wrote)"
        )


def _check_sources_were_checked(tables_dir: Path, checked: dict[str, str]) -> None:
    """Every raw file a step recorded as read was among those checked, with the same sha256.

    Guards the list of raw inputs: a step that starts reading a new file fails here until
    the file is added to ``RAW_INPUTS`` (and so to a manifest).
    """
    from allypot.data.pipeline import raw_inputs

    for meta_path in sorted(tables_dir.glob("*.meta.json")):
        for source, digest in json.loads(meta_path.read_text())["sources"].items():
            if source.startswith("data/"):
                continue  # the project's own files, tracked by git
            if source not in checked:
                raise RuntimeError(
                    f"{meta_path.name}: the build read raw file {source}, which is not in RAW_INPUTS"
                    f" ({raw_inputs.__file__}) and so was never checked against a manifest"
                )
            if digest != checked[source]:
                raise RuntimeError(f"raw file {source} changed while the build was reading it")


def _swap_in(staging: Path, out_dir: Path) -> None:
    """Put ``staging`` where ``out_dir`` is: two renames, with the old folder restored if
    the second fails, then the old folder removed."""
    os.chmod(staging, 0o777 & ~_umask())
    if not out_dir.exists():
        os.rename(staging, out_dir)
        return
    retired = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.replaced-", dir=out_dir.parent))
    retired.rmdir()
    os.rename(out_dir, retired)
    try:
        os.rename(staging, out_dir)
    except OSError:
        os.rename(retired, out_dir)
        raise
    shutil.rmtree(retired)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
