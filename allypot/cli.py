"""The ``allypot`` command line: thin wrappers over functions importable from Python."""

from __future__ import annotations

import argparse
import sys
from datetime import datetime, timezone
import time
from pathlib import Path

from allypot.paths import DEFAULT_CONFIG, DEFAULT_RAW_DIR, REPORT_DIR, RUNS_DIR, TABLES_DIR

WHERE_COMMANDS_WRITE = f"""\
where commands write:
  fit, compare       a new run folder per fit under --runs (default: {RUNS_DIR}/ in the current directory)
  priors check       a new folder {RUNS_DIR}/<utc-stamp>-priors-<config>/ unless --out is given
  replicate          a new folder {RUNS_DIR}/<utc-stamp>-replicate/ unless --out is given
  sensitivity        a new folder {RUNS_DIR}/<utc-stamp>-sensitivity-<run>/ unless --out is given
  sensitivity --eta  smi run folders under --runs and a new folder --runs/<utc-stamp>-<name>-eta-path/
  influence          a new folder {RUNS_DIR}/<utc-stamp>-influence-<run id>/ unless --out is given;
                     --refit adds run folders under --runs
  sbc                a new folder {RUNS_DIR}/<utc-stamp>-sbc-<config>/ unless --out is given
  data build/report  the repository's data/tables, data/CODEBOOK.md and data/report (developer commands)
Nothing else writes into the repository; `make reports` regenerates the committed reports/ on purpose."""


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Shows every option's default (unless its help already says it) and keeps the epilog's layout."""

    def _get_help_string(self, action):
        text = action.help or ""
        if "default" in text or action.default in (None, False, argparse.SUPPRESS):
            return text
        return f"{text} (default: %(default)s)"


class Parser(argparse.ArgumentParser):
    """Every (sub)command shows its defaults."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)


def _stamp() -> str:
    return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")


def _data_build(args) -> int:
    from allypot.data.pipeline import build_all

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
    from allypot.data.pipeline.raw_inputs import write_project_manifest

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
    from allypot.diagnostics.summary import format_warnings
    from allypot.inference.config import load_config, use_tables_dir
    from allypot.inference.fit import fit_config

    config = load_config(args.config)
    outcome = fit_config(config, use_tables_dir(config, args.tables), Path(args.runs), progress=not args.quiet)
    print(outcome.summary.to_string(float_format=lambda x: f"{x:.5g}"))
    if outcome.warnings:
        print(format_warnings(outcome.warnings, f"this {config['model']['mode']} fit"), file=sys.stderr)
    print(f"run saved to {outcome.path}")
    return 0


def _compare(args) -> int:
    from allypot.inference.config import load_config, use_tables_dir
    from allypot.inference.fit import compare_modes

    config = load_config(args.config)
    compare_modes(config, use_tables_dir(config, args.tables), Path(args.runs), progress=not args.quiet)
    return 0


def _replicate(args) -> int:
    from allypot.inference.replicate_cli import run_replication

    out = Path(args.out) if args.out else RUNS_DIR / f"{_stamp()}-replicate"
    run_replication(Path(args.tables), out, bayes=not args.no_bayes, draws=args.bambi_draws, seed=args.seed,
                    alliance_universe=args.alliance_universe, item_set=args.items)
    return 0


def _audit(args) -> int:
    from datetime import datetime, timezone

    from allypot.sensitivity.audit import run_audit

    out = Path(args.out) if args.out else Path(args.runs) / f"audit-{datetime.now(timezone.utc):%Y%m%dT%H%M%SZ}"
    run_audit(Path(args.tables), out, Path(args.runs), bayes=args.bayes, fit=args.fit, quick=args.quick,
              mcmc_specs=tuple(args.mcmc_specs), draws=args.bambi_draws, chains=args.bambi_chains, seed=args.seed)
    return 0


def _priors_check(args) -> int:
    from allypot.inference.config import load_config, use_tables_dir
    from allypot.inference.prior_check import write_prior_check

    config = load_config(args.config)
    out = Path(args.out) if args.out else RUNS_DIR / f"{_stamp()}-priors-{Path(args.config).stem}"
    path = write_prior_check(config, use_tables_dir(config, args.tables), out, draws=args.prior_draws)
    print(f"prior predictive check written to {path}")
    return 0


TABLES_HELP = f"derived tables folder (default: the config's data.tables_dir, else {TABLES_DIR})"


def _diagnose(args) -> int:
    from allypot.diagnostics.checks import Thresholds
    from allypot.diagnostics.report import diagnose, format_verdict

    thresholds = Thresholds(**{name: getattr(args, name) for name in Thresholds.names()})
    reviews, paths = diagnose([Path(r) for r in args.runs], Path(args.tables), Path(args.out) if args.out else None,
                              thresholds, ppc_draws=args.ppc_draws)
    print(format_verdict(reviews, paths["html"]))
    return 1 if any(review.verdict == "FAIL" for review in reviews) else 0


def _figures(args) -> int:
    from allypot.diagnostics.figures import write_figures

    paths = write_figures(Path(args.run), Path(args.tables), Path(args.out) if args.out else None, states=args.states)
    print(f"{len(paths)} figures written to {paths[0].parent}")
    return 0


def _grid(args) -> int:
    from allypot.sensitivity.grid import (
        NOT_RUN, collect_grid, dask_client, load_grid, parse_overrides, plan_grid, run_grid, write_grid_outputs,
    )

    plan = plan_grid(load_grid(args.grid, parse_overrides(args.set)), Path(args.tables))
    print(f"{args.grid}: {len(plan.cells)} cells to run, {len(plan.excluded)} combinations excluded")
    if args.dry_run:
        for cell in plan.cells:
            print(f"  {cell.run_id}  {cell.label}")
        return 0
    started = time.perf_counter()
    if args.collect:
        table = collect_grid(plan, Path(args.runs))
        folder = write_grid_outputs(plan, table, Path(args.out), Path(args.tables), time.perf_counter() - started,
                                    "none (--collect)")
        print(f"{(table['status'] == NOT_RUN).sum()} of {len(table)} cells not run yet; "
              f"effect table, forest plot and report of the others written to {folder}")
        return 0
    with dask_client(args.scheduler, args.workers, args.threads) as client:
        table = run_grid(plan, client, Path(args.tables), Path(args.runs))
    folder = write_grid_outputs(plan, table, Path(args.out), Path(args.tables), time.perf_counter() - started,
                                args.scheduler or "LocalCluster")
    print(f"effect table, forest plot and report written to {folder}")
    return 1 if (table["status"] == "failed").any() else 0


def sensitivity_command(args) -> int:
    """Power-scaling sensitivity of a run folder by prior group and likelihood component (no refit)."""
    from allypot.sensitivity.power_scaling import summary_lines, write_sensitivity

    if args.eta:
        return eta_path_command(args)
    run = Path(args.run)
    out = Path(args.out) if args.out else Path(args.runs) / f"{_stamp()}-sensitivity-{run.name}"
    result, paths = write_sensitivity(run, Path(args.tables), out, progress=not args.quiet)
    print(f"power-scaling sensitivity of {run.name} ({paths['seconds']:.0f} s)")
    for note in result.notes:
        print(f"note: {note}")
    print("\n".join(summary_lines(result)))
    print(f"table (csv, markdown) and {len(paths['png'])} plots written to {out}")
    return 0


def add_sensitivity_parser(sub) -> argparse.ArgumentParser:
    """The ``sensitivity`` subcommand (kept in one place so other options can join it)."""
    p = sub.add_parser("sensitivity", help="power-scaling sensitivity of a run's effect and key parameters to each "
                       "prior group and likelihood component (no refit); with --eta, the path from cut to joint",
                       description="Power-scaling (Kallioinen et al. 2024, arviz_stats.psense) of each prior group and "
                       "each likelihood component of RUN; writes sensitivity.csv, sensitivity.md and psense-*.png to a "
                       "new folder. Older run folders get the missing log densities computed from their posterior. "
                       "With --eta: RUN's analysis in smi mode at each eta (semi-modular inference, 0 = cut, "
                       "1 = joint), a table and a plot of the effect against eta.")
    p.add_argument("run", metavar="RUN", help="run folder made by fit or compare")
    p.add_argument("--eta", help="comma-separated influence values in [0, 1], e.g. 0,0.25,0.5,0.75,1: fit RUN's "
                   "config in smi mode at each (run folders with the same run id in --runs are reused)")
    p.add_argument("--tables", default=str(TABLES_DIR), help="the tables the run was fitted on (hash-checked)")
    p.add_argument("--runs", default=str(RUNS_DIR), help="where output folders (and --eta's smi run folders) go "
                   "when --out is not given (default: %(default)s)")
    p.add_argument("--out", help="output folder, created new (default: <runs>/<utc-stamp>-sensitivity-<RUN name>, "
                   "or <runs>/<utc-stamp>-<run name>-eta-path with --eta)")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.set_defaults(func=sensitivity_command)
    return p


def _influence(args) -> int:
    from allypot.diagnostics.rundata import open_run
    from allypot.sensitivity.influence import apply_refits, format_summary, influence_of_run, write_influence

    run = open_run(Path(args.run), Path(args.tables))
    influence = influence_of_run(run, args.k_threshold)
    if args.refit:
        influence = apply_refits(influence, run.config, Path(args.tables), Path(args.runs), args.max_refits,
                                 progress=not args.quiet)
    out = Path(args.out) if args.out else RUNS_DIR / f"{_stamp()}-influence-{run.meta['id']}"
    paths = write_influence(influence, out, args.top)
    print(format_summary(influence, args.top))
    print(f"table, report and figure written to {paths['md'].parent}")
    return 0


def eta_path_command(args) -> int:
    """``allypot sensitivity RUN --eta ...``: the smi effect along eta (sensitivity/eta_path.py)."""
    from allypot.inference.config import use_tables_dir
    from allypot.inference.runs import load_run
    from allypot.sensitivity.eta_path import eta_path, parse_etas, write_eta_path

    etas = parse_etas(args.eta)
    _, config, _ = load_run(Path(args.run))
    tables = use_tables_dir(config, args.tables)
    table = eta_path(config, etas, tables, Path(args.runs), progress=not args.quiet)
    out = Path(args.out) if args.out else Path(args.runs) / f"{_stamp()}-{config['run']['name']}-eta-path"
    print(f"eta path (table, markdown, plot) written to {write_eta_path(table, Path(args.run), config, out)}")
    return 0 if table["converged"].astype(bool).all() else 1
def _sbc(args) -> int:
    from allypot.inference.config import load_config, use_tables_dir
    from allypot.sensitivity.grid import dask_client
    from allypot.sensitivity.sbc import SbcSettings, parse_years, run_sbc

    first, last = parse_years(args.years)
    config = load_config(args.config)
    settings = SbcSettings(sims=args.sims, draws=args.draws, tune=args.tune, chains=args.chains,
                           first_year=first, last_year=last, seed=args.seed if args.seed is not None else config["run"]["seed"])
    out = Path(args.out) if args.out else RUNS_DIR / f"{_stamp()}-sbc-{Path(args.config).stem}"
    with dask_client(args.scheduler, args.workers) as client:
        outcome = run_sbc(config, use_tables_dir(config, args.tables), settings, client, out)
    print((outcome.path / "summary.md").read_text())
    print(f"ranks, calibration table, rank ECDF plot and summary written to {outcome.path}")
    return 1 if len(outcome.failures) else 0


def build_parser() -> argparse.ArgumentParser:
    from allypot.data.pipeline.raw_inputs import PROJECT_MANIFEST

    parser = Parser(prog="allypot", description=__doc__, epilog=WHERE_COMMANDS_WRITE)
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
    p.add_argument("--tables", default=str(TABLES_DIR), help="the derived tables to report on")
    p.add_argument("--out", default=str(REPORT_DIR), help="report folder (in a checkout: the committed data/report)")
    p.set_defaults(func=_data_report)
    p = data.add_parser("validate", help="check a user's table against a bundled table's schema")
    p.add_argument("table", help="table name, e.g. panel")
    p.add_argument("file", help="the CSV file to check")
    p.add_argument("--tables", default=str(TABLES_DIR),
                   help="folder whose crosswalk.csv lists the known country codes (default: %(default)s)")
    p.set_defaults(func=_data_validate)

    tables_help = "folder of the derived tables to read (default: the bundled ones)"
    for name, func, help_text in [
        ("fit", _fit, "fit one analysis described by a config file into a new run folder; print its summary "
                      "(median, 90%% interval, R-hat, ESS) and a warning for every failed convergence check"),
        ("compare", _compare, "fit the measurement model once, then plug-in, cut and joint (cheapest first), "
                              "print each effect as soon as it is ready and a comparison report at the end"),
    ]:
        p = sub.add_parser(name, help=help_text, description=help_text.replace("%%", "%"))
        p.add_argument("config", nargs="?", default=str(DEFAULT_CONFIG), help=f"run config (TOML; default: the bundled {DEFAULT_CONFIG.name})")
        p.add_argument("--tables", default=None, help=TABLES_HELP)
        p.add_argument("--runs", default=str(RUNS_DIR), help="folder that receives the new run folder(s), relative to the current directory")
        p.add_argument("--quiet", action="store_true", help="no progress bars or step messages")
        p.set_defaults(func=func)

    help_text = "Table 1 of Gannon & Kent: OLS and Bambi, published vs rebuilt panel"
    p = sub.add_parser("replicate", help=help_text, description=help_text)
    p.add_argument("--tables", default=str(TABLES_DIR), help=tables_help)
    p.add_argument("--out", help=f"output folder (default: a new {RUNS_DIR}/<utc-stamp>-replicate/; "
                                 "`make reports` writes the committed reports/)")
    p.add_argument("--no-bayes", action="store_true", help="OLS only (skip the Bambi twin)")
    p.add_argument("--bambi-draws", type=int, default=1000,
                   help="draws per chain of each Bambi fit (4 chains, as many tuning steps)")
    p.add_argument("--seed", type=int, default=20011007, help="seeds the measurement fit and Bambi")
    p.add_argument("--alliance-universe", default="defence_offence", choices=["defence_offence", "all"],
                   help="which US alliances count (model.alliance_universe; default: %(default)s)")
    p.add_argument("--items", default="with_institutions", choices=["with_institutions", "benson_clinton"],
                   help="IRT item set (model.items; default: %(default)s)")
    p.set_defaults(func=_replicate)

    p = sub.add_parser("audit", help="published Table 1 -> joint model, one repair at a time (sensitivity/audit.py)")
    p.add_argument("--tables", default=str(TABLES_DIR), help=tables_help)
    p.add_argument("--runs", default=str(RUNS_DIR), help="run folders to reuse (and where --fit writes)")
    p.add_argument("--out", default=None, help="output folder (default runs/audit-<stamp>; `--out reports` "
                   "regenerates the committed reports/audit.md)")
    p.add_argument("--bayes", action="store_true", help="also fit the Bambi twin of every OLS cell (slow)")
    p.add_argument("--fit", action="store_true", help="fit the MCMC steps that have no matching run folder")
    p.add_argument("--quick", action="store_true", help="MCMC steps with the light sampler (stated in the output)")
    p.add_argument("--mcmc-specs", nargs="+", default=["political"],
                   choices=["baseline", "political", "all_controls", "fixed_effects"],
                   help="specifications of the MCMC steps (plug-in hurdle, cut, joint), read from --runs or fitted")
    p.add_argument("--bambi-draws", type=int, default=1000, help="draws per chain of each Bambi fit (and as many tuning steps)")
    p.add_argument("--bambi-chains", type=int, default=4, help="chains of each Bambi fit")
    p.add_argument("--seed", type=int, default=20011007, help="seeds the measurement fit, the MCMC steps and Bambi")
    p.set_defaults(func=_audit)


    p = sub.add_parser("grid", help="fit every combination of a grid file's axes on Dask; effect table and forest plot",
                       description="Validate every cell of GRID, fit the cells not already in --runs (cached by run id) "
                       "on a Dask cluster, and write effects.csv, effects.md and forest.png to --out/<grid name>/.")
    p.add_argument("grid", help="grid file, e.g. sensitivity/grids/default.toml")
    p.add_argument("--tables", default=str(TABLES_DIR), help=tables_help)
    p.add_argument("--runs", default=str(RUNS_DIR), help="run folders of the cells, reused when present (default: %(default)s)")
    p.add_argument("--out", default=str(RUNS_DIR / "grids"), help="where the grid's table and plot go (default: %(default)s)")
    p.add_argument("--scheduler", help="address of an existing Dask scheduler (tcp://host:port); default: a local cluster")
    p.add_argument("--workers", type=int, help="local cluster: worker processes (default: one per two cores)")
    p.add_argument("--threads", type=int, default=1, help="local cluster: threads per worker (default: %(default)s)")
    p.add_argument("--dry-run", action="store_true", help="validate and list the cells, fit nothing")
    p.add_argument("--collect", action="store_true",
                   help="fit nothing: write the table and forest plot from the cells already in --runs, the "
                        "others marked 'not run' (a look at a grid still running or stopped part-way)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="change every cell's base config, e.g. --set sampler.draws=500 (repeatable); "
                   "the grid's name then gets a suffix so the result never passes for the grid as written")
    p.set_defaults(func=_grid)

    add_sensitivity_parser(sub)
    help_text = ("simulation-based calibration of the joint model: simulate from its prior predictive on the real "
                 "design, refit each simulation on Dask, rank the truth among the posterior draws")
    p = sub.add_parser("sbc", help=help_text, description=help_text + ". Writes ranks.csv, calibration.csv, "
                       "rank_ecdf.png, summary.md and settings.json into --out.")
    p.add_argument("config", nargs="?", default=str(DEFAULT_CONFIG),
                   help=f"run config whose model and priors to check; fitted in joint mode (default: the bundled {DEFAULT_CONFIG.name})")
    p.add_argument("--sims", type=int, default=20, help="number of simulated data sets")
    p.add_argument("--draws", type=int, default=200, help="draws per chain of each fit")
    p.add_argument("--tune", type=int, default=200, help="tuning steps per chain of each fit")
    p.add_argument("--chains", type=int, default=2, help="chains of each fit")
    p.add_argument("--years", default="2013-2014", help="the design's years, FIRST-LAST")
    p.add_argument("--seed", type=int, default=None, help="seed of the simulations and fits (default: the config's run.seed)")
    p.add_argument("--tables", default=None, help=TABLES_HELP)
    p.add_argument("--out", help=f"output folder (default: a new {RUNS_DIR}/<utc-stamp>-sbc-<config>/)")
    p.add_argument("--scheduler", help="address of an existing Dask scheduler (tcp://host:port); default: a local cluster")
    p.add_argument("--workers", type=int, help="local cluster: worker processes (default: one per two cores)")
    p.set_defaults(func=_sbc)

    priors = sub.add_parser("priors", help="prior predictive checks").add_subparsers(dest="action", required=True)
    help_text = "draw from the prior predictive and plot shares, depths and agreement"
    p = priors.add_parser("check", help=help_text, description=help_text)
    p.add_argument("config", nargs="?", default=str(DEFAULT_CONFIG), help=f"run config (TOML) whose model and priors to check (default: the bundled {DEFAULT_CONFIG.name})")
    p.add_argument("--tables", default=None, help=TABLES_HELP)
    p.add_argument("--out", help=f"output folder (default: a new {RUNS_DIR}/<utc-stamp>-priors-<config>/; "
                                 "`make reports` writes the committed reports/priors/)")
    p.add_argument("--prior-draws", type=int, default=500, help="number of prior predictive draws (in total)")
    p.set_defaults(func=_priors_check)
    p = sub.add_parser("diagnose", help="review run folders: convergence, modes, sampler health, predictive checks, "
                       "LOO; HTML + markdown report and a verdict (exit status 1 when a run fails)")
    p.add_argument("runs", nargs="+", metavar="RUN", help="run folder(s) made by fit or compare")
    p.add_argument("--tables", default=str(TABLES_DIR), help="the tables the runs were fitted on")
    p.add_argument("--out", help="report folder (default: RUN/diagnose of the first run)")
    p.add_argument("--ppc-draws", type=int, default=200, help="posterior draws per chain for predictive checks")
    from allypot.diagnostics.checks import Thresholds

    for name, default in vars(Thresholds()).items():
        p.add_argument(f"--{name.replace('_', '-')}", dest=name, type=type(default), default=default,
                       help="threshold (default: %(default)s)")
    p.set_defaults(func=_diagnose)

    help_text = ("leave-one-state-out change of the alliance-potential effect by PSIS (Pareto k per state); "
                 "--refit refits the states whose k is above the threshold")
    p = sub.add_parser("influence", help=help_text, description=help_text)
    p.add_argument("run", metavar="RUN", help="run folder made by fit or compare")
    p.add_argument("--tables", default=str(TABLES_DIR), help="the tables the run was fitted on")
    p.add_argument("--out", help=f"new output folder (default: {RUNS_DIR}/<utc-stamp>-influence-<run id>/)")
    p.add_argument("--refit", action="store_true", help="refit the run's config without each state whose k is "
                   "above --k-threshold (largest PSIS change first); refits are run folders under --runs, reused when present")
    p.add_argument("--k-threshold", type=float, default=0.7, help="Pareto k above which PSIS is not trusted")
    p.add_argument("--max-refits", type=int, default=None, help="refit at most this many states (default: all above the threshold)")
    p.add_argument("--runs", default=str(RUNS_DIR), help="where refit run folders go and are looked up")
    p.add_argument("--top", type=int, default=15, help="states shown in the summary, report and figure")
    p.add_argument("--quiet", action="store_true", help="no progress messages from refits")
    p.set_defaults(func=_influence)

    p = sub.add_parser("figures", help="the study's figures (PNG and PDF) from a run folder")
    p.add_argument("run", metavar="RUN", help="run folder made by fit or compare")
    p.add_argument("--tables", default=str(TABLES_DIR), help="the tables the run was fitted on")
    p.add_argument("--out", help="figure folder (default: RUN/figures)")
    p.add_argument("--states", nargs="+", help="state abbreviations for the preference paths "
                   "(default: the six largest contributors by mean share)")
    p.set_defaults(func=_figures)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except KeyboardInterrupt as err:
        print(f"allypot: {err}" if str(err) else "allypot: interrupted; no partial run folder was left behind",
              file=sys.stderr)
        return 130
    except (ValueError, FileNotFoundError, KeyError) as err:
        # str() of a KeyError is the repr of its message, quotes and all
        message = err.args[0] if isinstance(err, KeyError) and err.args else err
        print(f"allypot: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
