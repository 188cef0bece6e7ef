"""Run folders: complete or absent, never overwritten, reloadable, tamper-evident."""

import json

import arviz as az
import numpy as np
import pandas as pd
import pytest
import xarray as xr
from allypot.inference.config import resolve_config
from allypot.inference.runs import (
    RunMismatchError,
    compute_run_id,
    load_run,
    package_versions,
    write_run,
)


def _fake_run(seed=0):
    rng = np.random.default_rng(seed)
    idata = az.from_dict({
        "posterior": {"potential_effect": rng.normal(size=(2, 50))},
        "sample_stats": {"diverging": np.zeros((2, 50), bool)},
        "log_likelihood": {"share_z": rng.normal(size=(2, 50, 3))},
    })
    config = resolve_config({"run": {"name": "unit", "seed": seed}})
    meta = {"id": compute_run_id(config, "abc"), "data_hash": "abc", "versions": package_versions()}
    summary = pd.DataFrame({"mean": [0.0]}, index=["potential_effect"])
    return idata, config, meta, summary


def test_run_round_trips_with_config_and_attrs(tmp_path):
    idata, config, meta, summary = _fake_run()
    path = write_run(idata, config, meta, summary, tmp_path)
    loaded, loaded_config, loaded_meta = load_run(path)
    np.testing.assert_allclose(loaded["posterior"]["potential_effect"], idata["posterior"]["potential_effect"])
    assert loaded_config == config
    assert loaded.attrs["id"] == meta["id"] and loaded.attrs["seed"] == config["run"]["seed"]
    assert loaded.attrs["data_hash"] == "abc"
    assert "log_likelihood" in loaded.children


def test_a_group_with_float32_and_integer_variables_is_saved_in_single_precision(tmp_path):
    rng = np.random.default_rng(1)
    idata = az.from_dict({"posterior": {"potential_effect": rng.normal(size=(2, 50)),
                                        "already_single": rng.normal(size=(2, 50)).astype("float32"),
                                        "count": rng.integers(0, 5, size=(2, 50))}})
    _, config, meta, summary = _fake_run()
    loaded, _, _ = load_run(write_run(idata, config, meta, summary, tmp_path))
    posterior = loaded["posterior"]
    assert posterior["potential_effect"].dtype == "float32" and posterior["already_single"].dtype == "float32"
    assert posterior["count"].dtype.kind == "i"
    np.testing.assert_array_equal(posterior["count"], idata["posterior"]["count"])


def test_run_id_depends_on_config_and_data():
    config = resolve_config({})
    other = resolve_config({"run": {"seed": 1}})
    assert compute_run_id(config, "a") == compute_run_id(config, "a")
    assert compute_run_id(config, "a") != compute_run_id(config, "b")
    assert compute_run_id(config, "a") != compute_run_id(other, "a")


def test_runs_never_overwrite_each_other(tmp_path):
    idata, config, meta, summary = _fake_run()
    first = write_run(idata, config, meta, summary, tmp_path)
    before = (first / "posterior.nc").read_bytes()
    second = write_run(idata, config, meta, summary, tmp_path)
    assert first != second
    assert (first / "posterior.nc").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([first.name, second.name])
    load_run(second)


def test_interrupted_write_leaves_nothing(tmp_path, monkeypatch):
    idata, config, meta, summary = _fake_run()

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(xr.DataTree, "to_netcdf", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_run(idata, config, meta, summary, tmp_path)
    assert list(tmp_path.iterdir()) == []


def _rewrite_meta(path, change):
    meta = json.loads((path / "meta.json").read_text())
    change(meta)
    (path / "meta.json").write_text(json.dumps(meta, indent=2))


def _replace_posterior_values(path):
    tree = xr.open_datatree(path / "posterior.nc", engine="h5netcdf").load()
    tree["posterior"]["potential_effect"] = tree["posterior"]["potential_effect"] + 1.0
    (path / "posterior.nc").unlink()
    tree.to_netcdf(path / "posterior.nc", engine="h5netcdf")  # attrs (the id) kept


@pytest.mark.parametrize(
    ("tamper", "named"),
    [
        (_replace_posterior_values, "posterior.nc"),
        (lambda p: (p / "config.toml").write_text((p / "config.toml").read_text().replace("seed = 0", "seed = 99")),
         "config.toml"),
        (lambda p: (p / "summary.csv").write_text((p / "summary.csv").read_text().replace("0.0", "0.5")), "summary.csv"),
        (lambda p: _rewrite_meta(p, lambda m: m.update(seed=99)), "meta.json"),
        (lambda p: _rewrite_meta(p, lambda m: m["health"].update(divergences=0)), "meta.json"),
        (lambda p: _rewrite_meta(p, lambda m: m.update(id="0" * 12)), "meta.json"),
    ],
    ids=["posterior-values", "config-seed", "summary", "meta-seed", "meta-health", "meta-id"],
)
def test_tampered_contents_are_refused(tmp_path, tamper, named):
    idata, config, meta, summary = _fake_run()
    path = write_run(idata, config, meta | {"seed": 0, "health": {"divergences": 3}}, summary, tmp_path)
    load_run(path)
    tamper(path)
    with pytest.raises(RunMismatchError, match=rf"{named} changed since the run was saved"):
        load_run(path)
    load_run(path, verify=False)  # still inspectable on request


def test_a_folder_without_checksums_is_refused(tmp_path):
    idata, config, meta, summary = _fake_run()
    path = write_run(idata, config, meta, summary, tmp_path)
    _rewrite_meta(path, lambda m: m.pop("checksums"))
    with pytest.raises(RunMismatchError, match="no checksums"):
        load_run(path)


def test_ids_are_still_checked_behind_the_checksums(tmp_path):
    """A posterior from another run, with checksums recomputed to match, is still refused."""
    from allypot.inference.runs import CHECKSUMMED_FILES, meta_digest
    from allypot.inference.runs import _sha256 as sha256

    idata, config, meta, summary = _fake_run()
    path = write_run(idata, config, meta, summary, tmp_path)
    other_config = resolve_config({"run": {"name": "unit", "seed": 5}})
    other = write_run(idata, other_config, meta | {"id": compute_run_id(other_config, "abc")}, summary, tmp_path)
    (path / "posterior.nc").write_bytes((other / "posterior.nc").read_bytes())

    def recompute(m):
        m["checksums"] = {name: sha256(path / name) for name in CHECKSUMMED_FILES}
        m["checksums"]["meta.json"] = meta_digest(m)

    _rewrite_meta(path, recompute)
    with pytest.raises(RunMismatchError, match="posterior id"):
        load_run(path)


def test_meta_passed_in_is_not_changed(tmp_path):
    idata, config, meta, summary = _fake_run()
    before = dict(meta)
    write_run(idata, config, meta, summary, tmp_path)
    assert meta == before


_KILLED_WRITER = """
import sys, time
import xarray as xr
from tests.test_runs import _fake_run
from allypot.inference.runs import write_run

original = xr.DataTree.to_netcdf
def half_written(self, path, *args, **kwargs):
    original(self, path, *args, **kwargs)
    print("WRITING", flush=True)
    time.sleep(600)  # killed here, with posterior.nc on disk and the rest missing
xr.DataTree.to_netcdf = half_written
write_run(*_fake_run(), sys.argv[1])
"""


def test_partial_folder_of_a_killed_writer_is_removed_by_the_next_run(tmp_path, capsys):
    import os
    import signal
    import subprocess
    import sys
    from pathlib import Path

    repo = Path(__file__).resolve().parent.parent
    writer = subprocess.Popen([sys.executable, "-c", _KILLED_WRITER, str(tmp_path)], cwd=repo,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert writer.stdout.readline().strip() == "WRITING"
        (partial,) = tmp_path.glob(".partial-*")
        assert (partial / "posterior.nc").exists() and not (partial / "meta.json").exists()
        writer.send_signal(signal.SIGKILL)
        writer.wait(timeout=30)
    finally:
        if writer.poll() is None:
            writer.kill()
    # a partial folder of a live writer (this process) must survive
    live = tmp_path / f".partial-{os.getpid()}-inprogress"
    live.mkdir()
    path = write_run(*_fake_run(), tmp_path)
    assert not partial.exists() and live.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([path.name, live.name])
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(partial) in err[0] and "killed while writing" in err[0]
