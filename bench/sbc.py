"""The full simulation-based calibration of the default joint model, timed.

Runs ``allypot sbc`` (sensitivity/sbc.py) at benchmark size and prints how long it took in
total and per simulation. The output folder goes to bench/results/sbc-<utc-stamp>/ (not
committed) unless --out is given.

    python bench/sbc.py [--config FILE] [--sims 100] [--draws 400] [--tune 400] [--chains 2]
                        [--years 2013-2014] [--seed N] [--scheduler tcp://host:port] [--workers N]
"""

from __future__ import annotations

import argparse
import time
from datetime import datetime, timezone
from pathlib import Path

from allypot.inference.config import load_config, use_tables_dir
from allypot.paths import CONFIGS_DIR, REPO_ROOT, RUNS_DIR
from allypot.sensitivity.grid import dask_client
from allypot.sensitivity.sbc import SbcSettings, parse_years, run_sbc


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default=str(CONFIGS_DIR / "joint_default.toml"))
    parser.add_argument("--sims", type=int, default=100)
    parser.add_argument("--draws", type=int, default=400)
    parser.add_argument("--tune", type=int, default=400)
    parser.add_argument("--chains", type=int, default=2)
    parser.add_argument("--years", default="2013-2014")
    parser.add_argument("--seed", type=int, help="default: the config's run.seed")
    parser.add_argument("--tables", help="derived tables (default: the config's, else the bundled ones)")
    parser.add_argument("--out", help="output folder (default: bench/results/sbc-<utc-stamp>/)")
    parser.add_argument("--scheduler", help="address of an existing Dask scheduler; default: a local cluster")
    parser.add_argument("--workers", type=int, help="local cluster: worker processes (default: one per two cores)")
    args = parser.parse_args(argv)

    config = load_config(args.config)
    first, last = parse_years(args.years)
    settings = SbcSettings(args.sims, args.draws, args.tune, args.chains, first, last,
                           args.seed if args.seed is not None else config["run"]["seed"])
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    results = (REPO_ROOT / "bench" / "results") if REPO_ROOT else RUNS_DIR / "bench"
    out = Path(args.out) if args.out else results / f"sbc-{stamp}"
    started = time.perf_counter()
    with dask_client(args.scheduler, args.workers) as client:
        outcome = run_sbc(config, use_tables_dir(config, args.tables), settings, client, out)
    wall = time.perf_counter() - started
    finished = settings.sims - len(outcome.failures)
    print((outcome.path / "summary.md").read_text())
    print(f"SBC benchmark: {settings.sims} simulations ({len(outcome.failures)} failed) in {wall:.0f} s wall time, "
          f"{wall / max(finished, 1):.0f} s per finished simulation (compilation included); results in {outcome.path}")
    return 1 if len(outcome.failures) else 0


if __name__ == "__main__":
    raise SystemExit(main())
