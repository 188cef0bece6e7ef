"""The ``allypot`` command line: thin wrappers over functions importable from Python."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from allypot.paths import DEFAULT_RAW_DIR, REPORT_DIR, RUNS_DIR, TABLES_DIR


def _data_build(args) -> int:
    from allypot.data.build import build_all

    out = Path(args.out)
    codebook = Path(args.codebook) if args.codebook else out.parent / "CODEBOOK.md"
    try:
        log = build_all(Path(args.raw), out, codebook_path=codebook)
    except FileExistsError as err:
        print(f"allypot: error: {err}", file=sys.stderr)
        return 2
    print(f"codebook written to {codebook}")
    frame = log.to_frame()
    print(f"tables written to {out}; {int(frame['n_rows'].sum()) if len(frame) else 0} raw rows excluded "
          f"for {len(frame)} documented reasons (see exclusions.csv)")
    return 0


def _data_manifest(args) -> int:
    from allypot.data.build.raw_inputs import write_project_manifest

    path = write_project_manifest(Path(args.raw), Path(args.out))
    print(f"sha256 of the raw inputs no MANIFEST.sha256 covers written to {path}")
    return 0


def _data_report(args) -> int:
    from allypot.data.report import write_data_report

    path = write_data_report(Path(args.tables), Path(args.out))
    print(f"data report written to {path}")
    return 0


def _data_validate(args) -> int:
    from allypot.data.loaders import load_table

    frame = load_table(args.table, Path(args.tables), path=Path(args.file))
    print(f"{args.file}: valid {args.table} table, {len(frame)} rows")
    return 0


def _fit(args) -> int:
    from allypot.inference.config import load_config
    from allypot.inference.fit import fit_config

    config = load_config(args.config)
    path, summary = fit_config(config, Path(args.tables), Path(args.runs), progress=not args.quiet)
    print(summary.to_string())
    print(f"run saved to {path}")
    return 0


def _compare(args) -> int:
    from allypot.inference.config import load_config
    from allypot.inference.fit import compare_modes

    compare_modes(load_config(args.config), Path(args.tables), Path(args.runs), progress=not args.quiet)
    return 0


def _replicate(args) -> int:
    from allypot.inference.replicate_cli import run_replication

    run_replication(Path(args.tables), Path(args.out), bayes=not args.no_bayes, draws=args.draws, seed=args.seed)
    return 0


def _priors_check(args) -> int:
    from allypot.inference.config import load_config
    from allypot.inference.prior_check import write_prior_check

    path = write_prior_check(load_config(args.config), Path(args.tables), Path(args.out), draws=args.draws)
    print(f"prior predictive check written to {path}")
    return 0


def _grid(args) -> int:
    from allypot.sensitivity.grid import dask_client, load_grid, plan_grid, run_grid, write_grid_outputs

    plan = plan_grid(load_grid(args.grid), Path(args.tables))
    print(f"{args.grid}: {len(plan.cells)} cells to run, {len(plan.excluded)} combinations excluded")
    if args.dry_run:
        for cell in plan.cells:
            print(f"  {cell.run_id}  {cell.label}")
        return 0
    started = time.perf_counter()
    with dask_client(args.scheduler, args.workers, args.threads) as client:
        table = run_grid(plan, client, Path(args.tables), Path(args.runs))
    folder = write_grid_outputs(plan, table, Path(args.out), Path(args.tables), time.perf_counter() - started,
                                args.scheduler or "LocalCluster")
    print(f"effect table, forest plot and report written to {folder}")
    return 1 if (table["status"] == "failed").any() else 0


def build_parser() -> argparse.ArgumentParser:
    from allypot.data.build.raw_inputs import PROJECT_MANIFEST

    parser = argparse.ArgumentParser(prog="allypot", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    data = sub.add_parser("data", help="build, validate and report on the derived tables").add_subparsers(dest="action", required=True)
    p = data.add_parser(
        "build",
        help="raw public files -> data/tables/ (writes into the repository by default)",
        description="Check every raw file against its sha256, build all tables into a temporary folder, "
        "and replace --out (and the codebook) only when every table is built.",
    )
    p.add_argument("--raw", default=str(DEFAULT_RAW_DIR), help="raw data folder (default: %(default)s)")
    p.add_argument("--out", default=str(TABLES_DIR), help="folder of tables to replace (default: %(default)s)")
    p.add_argument("--codebook", help="where to write the codebook (default: CODEBOOK.md beside --out)")
    p.set_defaults(func=_data_build)
    p = data.add_parser(
        "manifest",
        help="record the sha256 of the raw files the build reads (rewrites data/raw_manifest.sha256)",
        description="Regenerate the project's manifest of raw-file checksums, for the files no MANIFEST.sha256 "
        "of the raw tree covers; refuses a file that disagrees with its SOURCES.md checksum.",
    )
    p.add_argument("--raw", default=str(DEFAULT_RAW_DIR), help="raw data folder (default: %(default)s)")
    p.add_argument("--out", default=str(PROJECT_MANIFEST), help="manifest to write (default: %(default)s)")
    p.set_defaults(func=_data_manifest)
    p = data.add_parser("report", help="markdown report with figures on coverage and published-vs-rebuilt")
    p.add_argument("--tables", default=str(TABLES_DIR))
    p.add_argument("--out", default=str(REPORT_DIR))
    p.set_defaults(func=_data_report)
    p = data.add_parser("validate", help="check a user's table against a bundled table's schema")
    p.add_argument("table", help="table name, e.g. panel")
    p.add_argument("file", help="the CSV file to check")
    p.add_argument("--tables", default=str(TABLES_DIR),
                   help="folder whose crosswalk.csv lists the known country codes (default: %(default)s)")
    p.set_defaults(func=_data_validate)

    for name, func, help_text in [
        ("fit", _fit, "fit one analysis described by a config file into a new run folder"),
        ("compare", _compare, "fit joint, cut and plug-in modes of one config and print the effect side by side"),
    ]:
        p = sub.add_parser(name, help=help_text)
        p.add_argument("config")
        p.add_argument("--tables", default=str(TABLES_DIR))
        p.add_argument("--runs", default=str(RUNS_DIR))
        p.add_argument("--quiet", action="store_true", help="no progress bars")
        p.set_defaults(func=func)

    p = sub.add_parser("replicate", help="Table 1 of Gannon & Kent: OLS and Bambi, published vs rebuilt panel")
    p.add_argument("--tables", default=str(TABLES_DIR))
    p.add_argument("--out", default=str(REPORT_DIR.parent.parent / "reports"))
    p.add_argument("--no-bayes", action="store_true", help="OLS only (skip the Bambi twin)")
    p.add_argument("--draws", type=int, default=1000)
    p.add_argument("--seed", type=int, default=20011007)
    p.set_defaults(func=_replicate)

    p = sub.add_parser("grid", help="fit every combination of a grid file's axes on Dask; effect table and forest plot",
                       description="Validate every cell of GRID, fit the cells not already in --runs (cached by run id) "
                       "on a Dask cluster, and write effects.csv, effects.md and forest.png to --out/<grid name>/.")
    p.add_argument("grid", help="grid file, e.g. sensitivity/grids/default.toml")
    p.add_argument("--tables", default=str(TABLES_DIR))
    p.add_argument("--runs", default=str(RUNS_DIR), help="run folders of the cells, reused when present (default: %(default)s)")
    p.add_argument("--out", default=str(RUNS_DIR / "grids"), help="where the grid's table and plot go (default: %(default)s)")
    p.add_argument("--scheduler", help="address of an existing Dask scheduler (tcp://host:port); default: a local cluster")
    p.add_argument("--workers", type=int, help="local cluster: worker processes (default: one per two cores)")
    p.add_argument("--threads", type=int, default=1, help="local cluster: threads per worker (default: %(default)s)")
    p.add_argument("--dry-run", action="store_true", help="validate and list the cells, fit nothing")
    p.set_defaults(func=_grid)

    priors = sub.add_parser("priors", help="prior predictive checks").add_subparsers(dest="action", required=True)
    p = priors.add_parser("check", help="draw from the prior predictive and plot shares, depths and agreement")
    p.add_argument("config")
    p.add_argument("--tables", default=str(TABLES_DIR))
    p.add_argument("--out", default=str(REPORT_DIR.parent.parent / "reports" / "priors"))
    p.add_argument("--draws", type=int, default=500)
    p.set_defaults(func=_priors_check)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print("interrupted; no partial run folder was left behind", file=sys.stderr)
        return 130
    except (ValueError, FileNotFoundError, KeyError) as err:
        print(f"allypot: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
