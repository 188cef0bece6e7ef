"""The build checks its raw inputs before it writes anything, and replaces the tables (and
the codebook) all at once or not at all.

The raw trees here are copies of ../shared/data/raw made of symlinks, with one file removed
or cut in half; every destination is under tmp_path.
"""

import json
import os
import shutil
from pathlib import Path

import pytest
from allypot.data.pipeline import build_all
from allypot.data.pipeline import published
from allypot.data.pipeline.raw_inputs import (
    PROJECT_MANIFEST,
    RAW_INPUTS,
    RawInputError,
    check_raw_inputs,
    write_project_manifest,
)

from allypot.cli import main
from allypot.paths import TABLES_DIR

TROOPS = Path("afghanistan/transcribed_troops.csv")  # covered by the shared MANIFEST.sha256
ATOP = Path("atop/jandresgannon__DoDL/atop5_1a.csv")  # covered by the project's manifest and SOURCES.md


def _raw_copy(raw_dir: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "raw"
    shutil.copytree(raw_dir, copy, copy_function=os.symlink)
    return copy


def _truncate(raw: Path, relative: Path) -> None:
    data = (raw / relative).read_bytes()
    (raw / relative).unlink()
    (raw / relative).write_bytes(data[: len(data) // 2])


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def destination(tmp_path) -> Path:
    """A copy of the committed tables and codebook, as an earlier build left them."""
    dest = tmp_path / "out" / "tables"
    shutil.copytree(TABLES_DIR, dest)
    shutil.copy(TABLES_DIR.parent / "CODEBOOK.md", dest.parent / "CODEBOOK.md")
    return dest


def test_raw_inputs_are_the_files_the_tables_record():
    """RAW_INPUTS lists exactly the raw files the committed tables say they were built from."""
    recorded = set()
    for meta in TABLES_DIR.glob("*.meta.json"):
        recorded |= {s for s in json.loads(meta.read_text())["sources"] if not s.startswith("data/")}
    assert recorded == {p.as_posix() for p in RAW_INPUTS}


def test_committed_manifest_is_current(raw_dir, tmp_path):
    digests = check_raw_inputs(raw_dir)
    assert set(digests) == {p.as_posix() for p in RAW_INPUTS}
    regenerated = write_project_manifest(raw_dir, tmp_path / "manifest.sha256")
    assert regenerated.read_bytes() == PROJECT_MANIFEST.read_bytes()


@pytest.mark.parametrize("relative", [TROOPS, ATOP], ids=["shared_manifest", "project_manifest"])
def test_truncated_raw_file_is_refused_by_name_before_anything_is_built(relative, raw_dir, tmp_path, destination, capsys):
    raw = _raw_copy(raw_dir, tmp_path)
    _truncate(raw, relative)
    before = _snapshot(destination.parent)
    steps = []
    with pytest.raises(RawInputError, match=str(relative)):
        build_all(raw, destination, progress=steps.append, codebook_path=destination.parent / "CODEBOOK.md")
    assert steps == [] and _snapshot(destination.parent) == before
    assert main(["data", "build", "--raw", str(raw), "--out", str(destination)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(raw / relative) in err[0] and "sha256" in err[0]


def test_file_in_no_manifest_is_refused(raw_dir, tmp_path):
    empty = tmp_path / "empty.sha256"
    empty.write_text("")
    with pytest.raises(RawInputError) as info:
        check_raw_inputs(raw_dir, project_manifest=empty)
    assert str(ATOP) in str(info.value) and "no manifest" in str(info.value)
    assert str(TROOPS) not in str(info.value)  # the shared manifest still covers it


def test_manifest_is_not_regenerated_from_a_file_its_sources_entry_contradicts(raw_dir, tmp_path):
    raw = _raw_copy(raw_dir, tmp_path)
    _truncate(raw, ATOP)
    out = tmp_path / "manifest.sha256"
    with pytest.raises(RawInputError, match="SOURCES.md"):
        write_project_manifest(raw, out)
    assert not out.exists()


def test_step_failing_half_way_leaves_destination_byte_identical(raw_dir, tmp_path, destination):
    """Step 7 (the published panel) finds its raw file gone after six steps have written
    tables: the old tables and codebook stay exactly as they were, no staging folder stays."""
    raw = _raw_copy(raw_dir, tmp_path)
    (raw / published.RAW_FILE).unlink()
    with pytest.raises(RawInputError, match=published.RAW_FILE.name):
        build_all(raw, destination, progress=lambda _: None)  # checked: refused up front
    before = _snapshot(destination.parent)
    steps = []
    with pytest.raises(FileNotFoundError):
        build_all(raw, destination, progress=steps.append, codebook_path=destination.parent / "CODEBOOK.md",
                  check_raw=False)
    assert steps[-1] == "[7/9] published panel"
    assert _snapshot(destination.parent) == before
    assert sorted(p.name for p in destination.parent.iterdir()) == ["CODEBOOK.md", "tables"]


def test_build_replaces_tables_and_writes_codebook_beside_out(raw_dir, tmp_path, destination, capsys):
    """A successful build swaps the whole folder in (a stale table goes) and, without
    --codebook, writes the codebook beside --out, not into the repository."""
    repo_codebook = TABLES_DIR.parent / "CODEBOOK.md"
    repo_before = (repo_codebook.read_bytes(), repo_codebook.stat().st_mtime_ns)
    (destination / "stale_table.csv").write_text("a\n1\n")
    (destination.parent / "CODEBOOK.md").write_text("old")
    assert main(["data", "build", "--out", str(destination)]) == 0
    assert "stale_table.csv" not in {p.name for p in destination.iterdir()}
    assert (destination / "panel.csv").read_bytes() == (TABLES_DIR / "panel.csv").read_bytes()
    codebook = (destination.parent / "CODEBOOK.md").read_text()
    assert codebook.startswith("# Codebook") and "## `panel`" in codebook
    assert (repo_codebook.read_bytes(), repo_codebook.stat().st_mtime_ns) == repo_before
    assert sorted(p.name for p in destination.parent.iterdir()) == ["CODEBOOK.md", "tables"]
    assert str(destination.parent / "CODEBOOK.md") in capsys.readouterr().out


def test_folder_holding_other_files_is_not_replaced(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    (out / "panel.csv").write_text("a\n1\n")
    with pytest.raises(FileExistsError, match="notes.txt"):
        build_all(tmp_path, out, progress=lambda _: None)
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt", "panel.csv"]


def test_staging_folder_of_a_killed_build_is_removed_and_reported(raw_dir, tmp_path, destination):
    """A SIGKILL mid-build leaves its staging folder; the next build removes it and says so."""
    raw = _raw_copy(raw_dir, tmp_path)
    (raw / "cow/svmiller__peacesciencer/cow_states.csv").unlink()  # the first step's input: fail fast
    stale = destination.parent / f".{destination.name}.building-killed"
    stale.mkdir()
    (stale / "panel.csv").write_text("half")
    steps = []
    with pytest.raises(FileNotFoundError):
        build_all(raw, destination, progress=steps.append, check_raw=False)
    assert not stale.exists() and any(str(stale) in line for line in steps)
    assert sorted(p.name for p in destination.parent.iterdir()) == ["CODEBOOK.md", "tables"]
