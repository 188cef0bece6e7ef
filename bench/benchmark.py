"""Benchmark the default joint model with each NUTS backend on the bundled real data.

Prints, per backend: wall time (model build + compile + sampling), sampling time,
divergences, max R-hat and min bulk ESS over every sampled parameter, mean leapfrog steps
per draw, and bulk ESS and ESS per second of the alliance-potential effect.

Target (issue "joint model"): 4 chains x 1000 draws on 2 cores in at most 3 minutes, no
divergences, R-hat <= 1.01, bulk ESS of the effect >= 1000.

    python bench/benchmark.py [--backends nutpie numpyro pymc] [--draws 1000] [--tune 1000]
"""

from __future__ import annotations

import argparse
import time
from datetime import datetime, timezone
from pathlib import Path

import arviz as az
import pandas as pd
from allypot.diagnostics.summary import sampler_health
from allypot.inference.config import load_config, model_options, priors_from_config
from allypot.inference.fit import load_inputs
from allypot.inference.sampling import sample_model
from allypot.models.compose import build_joint_model

from allypot.paths import CONFIGS_DIR, REPO_ROOT, TABLES_DIR

TARGET_SECONDS = 180
TARGET_ESS = 1000


def benchmark(config: dict, backend: str) -> dict:
    started = time.perf_counter()
    inputs = load_inputs(config, TABLES_DIR)
    model = build_joint_model(inputs, model_options(config), priors_from_config(config))
    sampler = dict(config["sampler"], backend=backend)
    idata, sampling_s = sample_model(model, sampler, config["run"]["seed"], progress=True)
    wall = time.perf_counter() - started
    health = sampler_health(idata)
    ess_effect = float(az.ess(idata, var_names=["potential_effect"])["potential_effect"])
    rhat_effect = float(az.rhat(idata, var_names=["potential_effect"])["potential_effect"])
    return {
        "backend": backend,
        "seed": config["run"]["seed"],
        "chains": sampler["chains"],
        "draws": sampler["draws"],
        "wall_s": round(wall, 1),
        "sampling_s": round(sampling_s, 1),
        "divergences": health["divergences"],
        "max_rhat": round(health["max_rhat"], 3),
        "min_ess_bulk": round(health["min_ess_bulk"], 1),
        "min_ess_per_s": round(health["min_ess_bulk"] / wall, 2),
        "mean_leapfrog_steps": round(health["mean_leapfrog_steps"], 1),
        "effect_ess_bulk": round(ess_effect, 1),
        "effect_ess_per_s": round(ess_effect / wall, 2),
        "effect_rhat": round(rhat_effect, 3),
        "effect_mean": float(idata["posterior"]["potential_effect"].mean()),
        "meets_target": bool(wall <= TARGET_SECONDS and health["divergences"] == 0
                             and health["max_rhat"] <= 1.01 and ess_effect >= TARGET_ESS),
    }


def main(argv=None) -> pd.DataFrame:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default=str(CONFIGS_DIR / "joint_default.toml"))
    parser.add_argument("--backends", nargs="+", default=["nutpie", "numpyro", "pymc"])
    parser.add_argument("--chains", type=int)
    parser.add_argument("--draws", type=int)
    parser.add_argument("--tune", type=int)
    parser.add_argument("--seed", type=int, help="override run.seed (the joint posterior is bimodal: chains' modes depend on it)")
    args = parser.parse_args(argv)
    config = load_config(args.config)
    for key in ("chains", "draws", "tune"):
        if getattr(args, key) is not None:
            config["sampler"][key] = getattr(args, key)
    if args.seed is not None:
        config["run"]["seed"] = args.seed
    rows = []
    for backend in args.backends:
        print(f"\n=== {backend} ===", flush=True)
        rows.append(benchmark(config, backend))
        print(pd.DataFrame(rows).to_string(index=False), flush=True)
    table = pd.DataFrame(rows)
    out = REPO_ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{datetime.now(timezone.utc):%Y%m%dT%H%M%SZ}-{Path(args.config).stem}.csv"
    table.to_csv(path, index=False)
    print(f"\n{table.to_string(index=False)}\nsaved to {path}")
    return table


if __name__ == "__main__":
    main()
