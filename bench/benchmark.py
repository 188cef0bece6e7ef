"""Benchmark the default joint model with each NUTS backend on the bundled real data.

Prints, per backend and parameterisation: wall time (model build + compile + sampling),
sampling time, divergences, max R-hat and min bulk ESS over every sampled parameter, mean
leapfrog steps per draw, bulk ESS of the alliance-potential effect, its ESS per second of
sampling and per 1000 leapfrog steps (the machine-independent efficiency: the machine is
shared, so seconds vary with its load), and whether the chains split into modes
(diagnostics/modes.py).

Target (issue 6): 4 chains x 1000 draws after 1000 tuning on 2 cores, bulk ESS of the effect
>= 1000 in at most 3 minutes of sampling, no divergences, R-hat <= 1.01.

    python bench/benchmark.py [--backends nutpie numpyro pymc] [--parameterisations orthogonal direct]
                              [--adaptation diag low_rank] [--centring by_data_meansplit by_data prior]
                              [--draws 1000] [--tune 1000] [--seed N]
"""

from __future__ import annotations

import argparse
import time
from itertools import product
from datetime import datetime, timezone
from pathlib import Path

import arviz as az
import numpy as np
import pandas as pd
from allypot.diagnostics.modes import detect_chain_modes
from allypot.diagnostics.summary import sampler_health
from allypot.inference.config import ADAPTATIONS, load_config, model_options, priors_from_config
from allypot.inference.fit import load_inputs
from allypot.inference.sampling import sample_model
from allypot.models.compose import build_joint_model
from allypot.models.contribution import CENTRINGS, PARAMETERISATIONS

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
    us_alliances = np.unique(inputs.alliances[inputs.ally_matrix[inputs.ally_matrix >= 0]])
    modes = detect_chain_modes(idata, us_alliances=us_alliances)
    total_steps = health["mean_leapfrog_steps"] * sampler["chains"] * sampler["draws"]
    return {
        "backend": backend,
        "parameterisation": config["model"]["parameterisation"],
        "centring": config["model"]["centring"],
        "adaptation": sampler["adaptation"] if backend == "nutpie" else "",
        "seed": config["run"]["seed"],
        "chains": sampler["chains"],
        "draws": sampler["draws"],
        "wall_s": round(wall, 1),
        "sampling_s": round(sampling_s, 1),
        "divergences": health["divergences"],
        "max_rhat": round(health["max_rhat"], 3),
        "min_ess_bulk": round(health["min_ess_bulk"], 1),
        "mean_leapfrog_steps": round(health["mean_leapfrog_steps"], 1),
        "effect_ess_bulk": round(ess_effect, 1),
        "effect_ess_per_s": round(ess_effect / sampling_s, 2),
        "effect_ess_per_1000_steps": round(1000 * ess_effect / total_steps, 2),
        "effect_rhat": round(rhat_effect, 3),
        "effect_median": float(idata["posterior"]["potential_effect"].median()),
        "chains_split": ", ".join(modes.split_parameters),
        "meets_target": bool(sampling_s <= TARGET_SECONDS and health["divergences"] == 0
                             and health["max_rhat"] <= 1.01 and ess_effect >= TARGET_ESS),
    }


def main(argv=None) -> pd.DataFrame:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default=str(CONFIGS_DIR / "joint_default.toml"))
    parser.add_argument("--backends", nargs="+", default=["nutpie", "numpyro", "pymc"])
    parser.add_argument("--parameterisations", nargs="+", choices=PARAMETERISATIONS,
                        help="default: the config's model.parameterisation")
    parser.add_argument("--adaptation", nargs="+", choices=ADAPTATIONS, help="nutpie mass-matrix adaptation(s)")
    parser.add_argument("--centring", nargs="+", choices=CENTRINGS, help="default: the config's model.centring")
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
        for parameterisation in args.parameterisations or [config["model"]["parameterisation"]]:
            adaptations = (args.adaptation or [config["sampler"]["adaptation"]]) if backend == "nutpie" else ["diag"]
            for adaptation, centring in product(adaptations, args.centring or [config["model"]["centring"]]):
                print(f"\n=== {backend}, {parameterisation}, {adaptation}, {centring} ===", flush=True)
                cell = config | {"model": config["model"] | {"parameterisation": parameterisation, "centring": centring},
                                 "sampler": config["sampler"] | {"adaptation": adaptation}}
                rows.append(benchmark(cell, backend))
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
