"""The ``allypot`` command line: thin wrappers over functions importable from Python."""

from __future__ import annotations

import argparse
import sys
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


def _audit(args) -> int:
    from datetime import datetime, timezone

    from allypot.sensitivity.audit import run_audit

    out = Path(args.out) if args.out else Path(args.runs) / f"audit-{datetime.now(timezone.utc):%Y%m%dT%H%M%SZ}"
    run_audit(Path(args.tables), out, Path(args.runs), bayes=args.bayes, fit=args.fit, quick=args.quick,
              mcmc_specs=tuple(args.mcmc_specs), draws=args.draws, chains=args.chains, seed=args.seed)
    return 0


def _priors_check(args) -> int:
    from allypot.inference.config import load_config
    from allypot.inference.prior_check import write_prior_check

    path = write_prior_check(load_config(args.config), Path(args.tables), Path(args.out), draws=args.draws)
    print(f"prior predictive check written to {path}")
    return 0


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

    p = sub.add_parser("audit", help="published Table 1 -> joint model, one repair at a time (sensitivity/audit.py)")
    p.add_argument("--tables", default=str(TABLES_DIR))
    p.add_argument("--runs", default=str(RUNS_DIR), help="run folders to reuse (and where --fit writes)")
    p.add_argument("--out", default=None, help="output folder (default runs/audit-<stamp>; `--out reports` "
                   "regenerates the committed reports/audit.md)")
    p.add_argument("--bayes", action="store_true", help="also fit the Bambi twin of every OLS cell (slow)")
    p.add_argument("--fit", action="store_true", help="fit the MCMC steps that have no matching run folder")
    p.add_argument("--quick", action="store_true", help="MCMC steps with the light sampler (stated in the output)")
    p.add_argument("--mcmc-specs", nargs="+", default=["political"],
                   choices=["baseline", "political", "all_controls", "fixed_effects"])
    p.add_argument("--draws", type=int, default=1000, help="Bambi draws (and tuning steps)")
    p.add_argument("--chains", type=int, default=4, help="Bambi chains")
    p.add_argument("--seed", type=int, default=20011007)
    p.set_defaults(func=_audit)

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
