"""The raw files the build reads, and their checksums, checked before anything is built.

A truncated or edited raw file otherwise builds without a murmur (half of
``transcribed_troops.csv`` still makes a panel, with 41 fewer contributing state-years). Each
file the build reads must match its sha256 in a ``MANIFEST.sha256`` of the raw tree (the
Afghanistan folder has one) or, for files no such manifest covers, in the project's own
``data/raw_manifest.sha256``. That file is regenerated only on request
(``allypot data manifest``), and never records a file that disagrees with the checksum its
``SOURCES.md`` entry gives.
"""

from __future__ import annotations

import re
from pathlib import Path

from allypot.data.pipeline import alliances, casualties, covariates, crosswalk, published, troops, unvotes
from allypot.data.schema import sha256_file

# every raw file a build step reads, relative to the raw folder
RAW_INPUTS: tuple[Path, ...] = tuple(sorted({
    crosswalk.COW_STATES, crosswalk.GW_PANEL, crosswalk.IDEAL_POINTS, crosswalk.UN_VOTES,
    crosswalk.UN_ROLL_CALLS, crosswalk.PLACEMATS,
    troops.PLACEMATS, troops.IISS_DEPLOYMENT, troops.IISS_TROOPS, troops.COW_SYSTEM, troops.COW_NMC,
    casualties.CASUALTIES,
    alliances.ALLIANCE_FILE, alliances.MEMBER_FILE, alliances.PHASE_FILE, alliances.INSTITUTION_FILE, alliances.BC_SCORE_FILE, alliances.BC_DRAWS_FILE,
    alliances.KENT_SCORE_FILE,
    unvotes.VOTES_FILE, unvotes.ROLL_CALLS_FILE, unvotes.IDEAL_FILE, unvotes.SYSTEM_FILE,
    covariates.SYSTEM_FILE, covariates.DEMOCRACY_FILE, covariates.NMC_FILE, covariates.GDPPOP_FILE,
    covariates.COW_CAPITALS_FILE, covariates.GW_CAPITALS_FILE,
    published.RAW_FILE,
}))

PROJECT_MANIFEST = Path(__file__).resolve().parent.parent / "raw_manifest.sha256"
SHARED_MANIFEST_NAME = "MANIFEST.sha256"

_LINE = re.compile(r"^([0-9a-f]{64}) [ *](.+)$")
# a SOURCES.md entry: a "### `path`" heading, then a "sha256 `hex`" line before the next heading
_SOURCES_ENTRY = re.compile(r"^### `([^`]+)`\s*$(.*?)(?=^### |\Z)", re.M | re.S)
_SOURCES_SHA = re.compile(r"sha256 `([0-9a-f]{64})`")


class RawInputError(ValueError):
    """A raw file the build reads is missing, changed, or has no checksum to check it against."""


def read_manifest(path: Path) -> dict[str, str]:
    """``sha256sum`` lines of ``path`` as {path relative to the manifest's folder: sha256}."""
    entries = {}
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        match = _LINE.match(line)
        if match is None:
            raise RawInputError(f"{path}: row {number} is not '<sha256>  <file>': {line[:80]!r}")
        entries[match.group(2)] = match.group(1)
    return entries


def shared_checksums(raw_dir: Path) -> dict[str, tuple[str, Path]]:
    """{path relative to ``raw_dir``: (sha256, manifest)} from every MANIFEST.sha256 in the raw tree."""
    raw_dir = Path(raw_dir)
    found = {}
    for manifest in sorted(raw_dir.rglob(SHARED_MANIFEST_NAME)):
        folder = manifest.parent.relative_to(raw_dir)
        for name, digest in read_manifest(manifest).items():
            found[(folder / name).as_posix()] = (digest, manifest)
    return found


def sources_checksums(raw_dir: Path) -> dict[str, tuple[str, Path]]:
    """{path relative to ``raw_dir``: (sha256, SOURCES.md)} for the entries of the raw tree's
    SOURCES.md files that give a checksum."""
    raw_dir = Path(raw_dir)
    found = {}
    for sources in sorted(raw_dir.rglob("SOURCES.md")):
        folder = sources.parent.relative_to(raw_dir)
        for name, body in _SOURCES_ENTRY.findall(sources.read_text(encoding="utf-8")):
            sha = _SOURCES_SHA.search(body)
            if sha:
                found[(folder / name).as_posix()] = (sha.group(1), sources)
    return found


def expected_checksums(raw_dir: Path, project_manifest: Path = PROJECT_MANIFEST) -> dict[str, tuple[str, Path]]:
    """The checksum each raw file must have: a shared manifest's, else the project's."""
    expected = {}
    if Path(project_manifest).is_file():
        expected = {name: (digest, Path(project_manifest)) for name, digest in read_manifest(project_manifest).items()}
    return expected | shared_checksums(raw_dir)


def check_raw_inputs(
    raw_dir: Path, files: tuple[Path, ...] = RAW_INPUTS, project_manifest: Path = PROJECT_MANIFEST
) -> dict[str, str]:
    """Check every file in ``files`` against its manifest; return {file: sha256}.

    Raises :class:`RawInputError`, one line naming every missing, changed or unlisted file,
    before the build writes anything.
    """
    raw_dir = Path(raw_dir)
    expected = expected_checksums(raw_dir, project_manifest)
    digests, problems = {}, []
    for relative in files:
        name, path = Path(relative).as_posix(), raw_dir / relative
        if not path.is_file():
            problems.append(f"{path} not found")
            continue
        digests[name] = sha256_file(path)
        if name not in expected:
            problems.append(f"{path} is in no manifest (record it with `allypot data manifest`)")
        elif digests[name] != expected[name][0]:
            problems.append(
                f"{path} has sha256 {digests[name][:12]}..., {expected[name][1]} says {expected[name][0][:12]}..."
                " (truncated or edited?)"
            )
    if problems:
        raise RawInputError(
            f"raw input check failed, nothing built: {'; '.join(problems)}"
        )
    return digests


def write_project_manifest(
    raw_dir: Path, out_path: Path = PROJECT_MANIFEST, files: tuple[Path, ...] = RAW_INPUTS
) -> Path:
    """Record the sha256 of every file in ``files`` that no shared manifest covers.

    Refuses (naming the file) when a file is missing or disagrees with the checksum its
    SOURCES.md entry or a shared manifest gives, so the project's manifest is only ever made
    from the files as published.
    """
    raw_dir = Path(raw_dir)
    shared = shared_checksums(raw_dir)
    published = sources_checksums(raw_dir)
    lines, problems = [], []
    for relative in files:
        name, path = Path(relative).as_posix(), raw_dir / relative
        if not path.is_file():
            problems.append(f"{path} not found")
            continue
        digest = sha256_file(path)
        for source in (shared, published):
            if name in source and source[name][0] != digest:
                problems.append(f"{path} has sha256 {digest[:12]}..., {source[name][1]} says {source[name][0][:12]}...")
        if name not in shared:
            lines.append(f"{digest}  {name}")
    if problems:
        raise RawInputError(f"manifest not written: {'; '.join(problems)}")
    header = (
        "# sha256 of the raw files the data build reads that no MANIFEST.sha256 of the raw tree covers;\n"
        "# paths relative to the raw folder. Regenerate with `allypot data manifest`.\n"
    )
    out_path = Path(out_path)
    out_path.write_text(header + "\n".join(lines) + "\n", encoding="utf-8")
    return out_path
