"""A built wheel works like a clone: it finds its bundled tables, configs and priors, builds
the model, and writes its outputs under the working directory, not into site-packages."""

import json
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

SOURCE = Path(__file__).resolve().parent.parent
# generated or local folders of a checkout that a source distribution would not carry
LOCAL_TOP_LEVEL = {".venv", ".git", "runs", "build", "dist", ".pytest_cache"}
LOCAL_ANYWHERE = shutil.ignore_patterns("*.egg-info", "__pycache__")


def not_source(folder: str, names: list[str]) -> set[str]:
    top = {n for n in names if n in LOCAL_TOP_LEVEL} if Path(folder) == SOURCE else set()
    return top | LOCAL_ANYWHERE(folder, names)


def run(command: list, **kwargs) -> subprocess.CompletedProcess:
    done = subprocess.run([str(c) for c in command], capture_output=True, text=True, **kwargs)
    assert done.returncode == 0, f"{command}: {done.stderr[-3000:]}"
    return done

SCRIPT = """
import json, sys
from pathlib import Path
import allypot
from allypot import paths
from allypot.data.loaders import load_table
from allypot.inference.config import load_config, model_options, priors_from_config
from allypot.inference.fit import load_inputs
from allypot.models.compose import build_joint_model
from allypot.priors import load_priors

config = load_config(paths.DEFAULT_CONFIG)
inputs = load_inputs(config, paths.TABLES_DIR)
model = build_joint_model(inputs, model_options(config), priors_from_config(config))
print(json.dumps({
    "package": allypot.__file__,
    "tables": str(paths.TABLES_DIR),
    "panel_rows": len(load_table("panel", paths.TABLES_DIR)),
    "configs": sorted(p.name for p in paths.CONFIGS_DIR.glob("*.toml")),
    "prior_components": sorted(load_priors()),
    "model_rows": len(inputs.rows),
    "free_variables": len(model.free_RVs),
    "runs_dir": str(paths.RUNS_DIR.resolve()),
    "report_dir": str(paths.REPORT_DIR.resolve()),
}))
"""


@pytest.mark.slow
def test_wheel_installed_in_a_fresh_venv_builds_the_default_model(tmp_path):
    source = tmp_path / "source"
    shutil.copytree(SOURCE, source, ignore=not_source)
    built = run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--verbose",
                 "-w", tmp_path / "dist", source])
    # the data folders are declared as such in pyproject.toml, so setuptools has nothing to guess
    assert "absent from the `packages` configuration" not in built.stdout + built.stderr
    (wheel,) = (tmp_path / "dist").glob("allypot-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        carried = {name for name in archive.namelist() if not name.endswith("/")}
    bundled = {"data/tables": "allypot/data/tables", "priors": "allypot/priors",
               "inference/configs": "allypot/inference/configs", "sensitivity/grids": "allypot/sensitivity/grids"}
    for folder, packaged in bundled.items():
        files = {f"{packaged}/{p.name}" for p in (SOURCE / folder).iterdir() if p.suffix in {".csv", ".json", ".toml"}}
        assert files and files <= carried, sorted(files - carried)

    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", "--without-pip", venv])
    python = venv / "bin" / "python"
    run([sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "--quiet", wheel])
    fresh_site = Path(run([python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"]).stdout.strip())
    # third-party packages from this venv; its editable allypot is not on the path (a .pth
    # listing a folder does not run the .pth hooks inside that folder)
    (fresh_site / "third_party.pth").write_text(sysconfig.get_path("purelib") + "\n")

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    found = json.loads(run([python, "-c", SCRIPT], cwd=elsewhere, timeout=600).stdout.strip().splitlines()[-1])

    assert Path(found["package"]).is_relative_to(fresh_site)
    assert Path(found["tables"]).is_relative_to(fresh_site)
    assert found["panel_rows"] == len((SOURCE / "data" / "tables" / "panel.csv").read_text().splitlines()) - 1
    assert found["configs"] == sorted(p.name for p in (SOURCE / "inference" / "configs").glob("*.toml"))
    assert {"irt", "preference", "hurdle"} <= set(found["prior_components"])
    assert found["model_rows"] > 2000 and found["free_variables"] > 5
    assert Path(found["runs_dir"]) == elsewhere / "runs"
    assert Path(found["report_dir"]) == elsewhere / "runs" / "data-report"

    assert "compare" in run([venv / "bin" / "allypot", "--help"], cwd=elsewhere).stdout
    assert not any(elsewhere.iterdir()), "importing and building a model wrote into the working directory"
