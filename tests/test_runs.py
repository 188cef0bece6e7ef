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


def test_tampered_config_is_refused(tmp_path):
    idata, config, meta, summary = _fake_run()
    path = write_run(idata, config, meta, summary, tmp_path)
    text = (path / "config.toml").read_text().replace("seed = 0", "seed = 99")
    (path / "config.toml").write_text(text)
    with pytest.raises(RunMismatchError, match="id mismatch"):
        load_run(path)


def test_mismatched_posterior_is_refused(tmp_path):
    idata, config, meta, summary = _fake_run()
    path = write_run(idata, config, meta, summary, tmp_path)
    stored = json.loads((path / "meta.json").read_text())
    stored["id"] = "0" * 12
    (path / "meta.json").write_text(json.dumps(stored))
    with pytest.raises(RunMismatchError, match="posterior id"):
        load_run(path)
