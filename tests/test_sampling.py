"""Interrupted sampling never passes as a posterior (issue 7, Runs)."""

import os
import signal
import threading

import arviz as az
import numpy as np
import nutpie
import pymc as pm
import pytest
from allypot.inference.sampling import (
    SamplingInterrupted,
    check_complete,
    finished_draws,
    sample_model,
)


def _trace(chains=2, draws=20, nan_tail=0):
    """A trace shaped like nutpie's: ``nan_tail`` unfinished draws at the end of chain 1."""
    x = np.random.default_rng(0).normal(size=(chains, draws, 3))
    if nan_tail:
        x[1, draws - nan_tail:] = np.nan
    return az.from_dict({"posterior": {"x": x, "y": np.zeros((chains, draws))}})


def test_complete_trace_passes():
    idata = _trace()
    assert finished_draws(idata, ["x", "y"]) == 40
    check_complete(idata, ["x", "y"], chains=2, draws=20)


@pytest.mark.parametrize(
    ("idata", "made"),
    [
        (_trace(nan_tail=7), 33),  # interrupted while drawing: padded with NaN
        (_trace(draws=12), 24),  # fewer draws than requested
        (_trace(draws=0), 0),  # interrupted while tuning: no draws at all
    ],
)
def test_partial_trace_is_detected(idata, made):
    assert finished_draws(idata, ["x"]) == made
    with pytest.raises(SamplingInterrupted, match=f"{made} of 2 x 20 draws"):
        check_complete(idata, ["x"], chains=2, draws=20)


def test_nan_in_a_deterministic_is_not_mistaken_for_an_interruption():
    idata = _trace()
    idata["posterior"]["ratio"] = idata["posterior"]["x"] * np.nan
    check_complete(idata, ["x"], chains=2, draws=20)


@pytest.fixture
def interrupt_after(monkeypatch):
    """Send this process SIGINT ``seconds`` after nutpie starts sampling (compilation excluded),
    and again every ``seconds`` until sampling returns: one lost signal must not leave a
    two-million-draw fit running (a full suite on a loaded machine once hung here)."""
    # a handler left behind by an earlier test must not swallow the signal
    signal.signal(signal.SIGINT, signal.default_int_handler)

    def arm(seconds):
        original = nutpie.sample

        def sample_then_interrupt(*args, **kwargs):
            done = threading.Event()

            def interrupt():
                for _ in range(30):
                    if done.wait(seconds):
                        return
                    os.kill(os.getpid(), signal.SIGINT)

            threading.Thread(target=interrupt, daemon=True).start()
            try:
                return original(*args, **kwargs)
            finally:  # a fit that ends first makes the test fail, not pytest stop
                done.set()

        monkeypatch.setattr(nutpie, "sample", sample_then_interrupt)

    return arm


def _slow_model():
    with pm.Model() as model:
        x = pm.Normal("x", 0.0, 1.0, shape=30)
        pm.Normal("y", pm.math.sum(pm.math.sin(x[:, None] * x[None, :]), axis=1), 1.0, observed=np.zeros(30))
    return model


@pytest.mark.slow
@pytest.mark.parametrize(("phase", "tune", "draws"), [("drawing", 50, 2_000_000), ("tuning", 2_000_000, 100)])
def test_ctrl_c_during_a_real_fit_raises_instead_of_returning_a_partial_trace(interrupt_after, phase, tune, draws):
    interrupt_after(2.0)
    sampler = {"backend": "nutpie", "chains": 2, "draws": draws, "tune": tune, "target_accept": 0.8,
               "adaptation": "diag"}
    with pytest.raises(SamplingInterrupted, match=r"interrupted \(Ctrl-C\) after \d+ of 2 x") as err:
        sample_model(_slow_model(), sampler, seed=1, progress=False, quiet=True)
    made = int(str(err.value).split("after ")[1].split(" of")[0])
    assert (made > 0) if phase == "drawing" else (made == 0)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # handler restored


@pytest.mark.slow
def test_interrupted_cli_fit_exits_non_zero_and_leaves_no_run(interrupt_after, tmp_path, capsys):
    import tomllib

    import tomli_w
    from allypot.cli import main
    from conftest import SMALL_RUN_YEARS, SMOKE_CONFIG

    user = tomllib.loads(SMOKE_CONFIG.read_text())
    # the data of the session's shared small run (conftest): the graph that fit compiled, so
    # PyTensor's compilation cache serves it (this test: 45 s with a warm cache, 270 s cold)
    user["data"] = {"first_year": SMALL_RUN_YEARS[0], "last_year": SMALL_RUN_YEARS[1]}
    # nutpie reserves trace memory for the requested draws: enough to outlast the timer, no more
    user["sampler"] |= {"draws": 1500, "tune": 20}
    config = tmp_path / "long.toml"
    config.write_text(tomli_w.dumps(user))
    runs = tmp_path / "runs"
    interrupt_after(3.0)
    assert main(["fit", str(config), "--runs", str(runs), "--quiet"]) == 130
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("allypot: sampling interrupted (Ctrl-C)")
    assert not runs.exists() or list(runs.iterdir()) == []


def test_sampler_options_go_to_nuts_and_adaptation_only_to_nutpie():
    from allypot.inference.sampling import nuts_options

    assert nuts_options({"backend": "nutpie", "target_accept": 0.95, "adaptation": "low_rank"}) == {
        "target_accept": 0.95, "adaptation": "low_rank"}
    assert nuts_options({"backend": "numpyro", "target_accept": 0.95, "adaptation": "low_rank"}) == {
        "target_accept": 0.95}


@pytest.mark.slow  # a nutpie compilation
def test_a_nutpie_fit_raises_no_deprecation_warning():
    """PyMC 6 deprecates ``nuts_sampler_kwargs``; the NUTS options go through ``nuts=``."""
    import warnings

    with pm.Model() as model:
        pm.Normal("x", 0.0, 1.0)
    sampler = {"backend": "nutpie", "chains": 1, "draws": 20, "tune": 20, "target_accept": 0.8, "adaptation": "diag"}
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)
        idata, _ = sample_model(model, sampler, seed=1, progress=False, quiet=True)
    assert idata["posterior"]["x"].shape == (1, 20)
