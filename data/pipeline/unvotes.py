"""UN General Assembly agreement with the US and Bailey-Strezhnev-Voeten ideal points, 2001-2014.

Two tables feed Part B of the model (``MODEL.md``):

* ``un_agreement.csv`` -- per state-year, ``n_votes`` = roll calls on which both the state
  and the US cast yes/no/abstain and ``n_agree`` = those where the state voted exactly as
  the US did (the binomial data ``n_it, k_it`` of the "agreement" measure). Abstention is a
  vote: a state abstaining when the US abstains agrees, abstaining when the US says no does
  not. Absences are not in the source (the unvotes package dropped them), so they cannot
  count against agreement. State-years with no joint vote are absent (logged).
* ``ideal_points.csv`` -- the published ideal points with their quantiles and the distance
  from the US ideal point of the same session (the "idealpoint" alternative and the
  "UN voting" control).

Year = session + 1945 (session 56 = 2001, the convention of SOURCES.md and of the ideal-point
file). Sessions run September-December and some roll calls fall in the following January
-- August; they still count for the session's year.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from allypot.data.pipeline.crosswalk import ALIASES_PATH, CountryResolver, load_resolver
from allypot.data.schema import (
    Column,
    ExclusionLog,
    TableSchema,
    sha256_file,
    write_table,
)

from allypot.paths import TABLES_DIR

UN_DIR = Path("unvotes") / "cran__unvotes"
VOTES_FILE = UN_DIR / "un_votes.csv"
ROLL_CALLS_FILE = UN_DIR / "un_roll_calls.csv"
IDEAL_FILE = Path("idealpoints") / "tongyu03__DSE3101-Predictive-Modelling-of-Global-Trade-Flows" / "IdealpointestimatesAll_Jun2024.csv"
SYSTEM_FILE = Path("cow") / "jandresgannon__DoDL" / "system2016.csv"

US_CCODE = 2
US_ISO2 = "US"
SESSION_YEAR_OFFSET = 1945
START_YEAR, END_YEAR = 2001, 2014
VOTES = ("yes", "no", "abstain")
# ideal-point file column -> table column
IDEAL_COLUMNS = {
    "IdealPointAll": "ideal_point",
    "Q5%All": "ideal_q05",
    "Q10%All": "ideal_q10",
    "Q50%All": "ideal_q50",
    "Q90%All": "ideal_q90",
    "Q95%All": "ideal_q95",
    "NVotesAll": "n_votes_ideal",
}

_VOTES_SRC = "unvotes 0.3.0 un_votes.csv + un_roll_calls.csv (Voeten)"
UN_AGREEMENT_SCHEMA = TableSchema(
    name="un_agreement",
    description=(
        "UNGA roll-call agreement with the US per COW state-year 2001-2014: n_votes roll calls on which "
        "both voted yes/no/abstain, n_agree of them with the identical vote."
    ),
    columns=(
        Column("ccode", "int", "COW state code (from ISO2 country_code via the crosswalk)", source=_VOTES_SRC, nullable=False),
        Column("year", "int", "session + 1945", unit="year", source=_VOTES_SRC, nullable=False, min=START_YEAR, max=END_YEAR),
        Column("n_votes", "int", "roll calls on which both the state and the US voted yes/no/abstain", unit="roll calls",
               source=_VOTES_SRC, nullable=False, min=1),
        Column("n_agree", "int", "of n_votes, roll calls where the state's vote equals the US vote", unit="roll calls",
               source=_VOTES_SRC, nullable=False, min=0),
    ),
    key=("ccode", "year"),
    row_checks=(
        ("n_agree exceeds n_votes", lambda df: df["n_agree"] > df["n_votes"]),
        ("the US cannot be compared with itself", lambda df: df["ccode"] == US_CCODE),
    ),
)

_IDEAL_SRC = "Bailey, Strezhnev & Voeten ideal points, IdealpointestimatesAll_Jun2024.csv"
_IP_UNIT = "ideal-point scale (dynamic, comparable across sessions)"
IDEAL_POINTS_SCHEMA = TableSchema(
    name="ideal_points",
    description="UNGA ideal points (all votes) per COW state-year 2001-2014, their quantiles and the distance from the US.",
    columns=(
        Column("ccode", "int", "COW state code (checked against the COW system list)", source=_IDEAL_SRC, nullable=False),
        Column("year", "int", "session + 1945", unit="year", source=_IDEAL_SRC, nullable=False, min=START_YEAR, max=END_YEAR),
        Column("ideal_point", "float", "posterior point estimate (IdealPointAll)", unit=_IP_UNIT, source=_IDEAL_SRC, nullable=False),
        Column("ideal_q05", "float", "5% posterior quantile (Q5%All)", unit=_IP_UNIT, source=_IDEAL_SRC),
        Column("ideal_q10", "float", "10% posterior quantile (Q10%All)", unit=_IP_UNIT, source=_IDEAL_SRC),
        Column("ideal_q50", "float", "posterior median (Q50%All)", unit=_IP_UNIT, source=_IDEAL_SRC),
        Column("ideal_q90", "float", "90% posterior quantile (Q90%All)", unit=_IP_UNIT, source=_IDEAL_SRC),
        Column("ideal_q95", "float", "95% posterior quantile (Q95%All)", unit=_IP_UNIT, source=_IDEAL_SRC),
        Column("n_votes_ideal", "int", "votes the estimate is based on (NVotesAll)", unit="votes", source=_IDEAL_SRC, min=0),
        Column("us_ideal_point", "float", "US ideal point in the same session", unit=_IP_UNIT, source=_IDEAL_SRC),
        Column("ideal_distance", "float", "|ideal_point - us_ideal_point|; NaN if the US has no estimate that session",
               unit=_IP_UNIT, source=_IDEAL_SRC, min=0),
    ),
    key=("ccode", "year"),
    row_checks=(("quantiles out of order", lambda df: (df["ideal_q05"] > df["ideal_q50"]) | (df["ideal_q50"] > df["ideal_q95"])),),
)


def read_votes(raw_dir: Path) -> pd.DataFrame:
    """Read ``un_votes.csv`` with every identifier as text and low memory.

    ``keep_default_na=False`` is essential: Namibia's ISO2 code is the string "NA", which
    pandas would otherwise read as missing. Categorical columns keep the 870k rows small.
    """
    return pd.read_csv(
        raw_dir / VOTES_FILE,
        dtype={"rcid": "int64", "country": "category", "country_code": "category", "vote": "category"},
        keep_default_na=False,
        na_values=[],
    )


def agreement_counts(votes: pd.DataFrame, roll_calls: pd.DataFrame, log: ExclusionLog,
                     start: int = START_YEAR, end: int = END_YEAR) -> pd.DataFrame:
    """Count joint votes and agreements with the US per state and year.

    Parameters
    ----------
    votes : DataFrame
        ``rcid, ccode, vote`` with ``ccode`` already COW-coded and ``vote`` in yes/no/abstain;
        the US is ``ccode == 2``.
    roll_calls : DataFrame
        ``rcid, session``.
    log : ExclusionLog
        Receives every vote row that does not enter a count, with the reason.
    start, end : int
        Year window (inclusive), year = session + 1945.

    Returns
    -------
    DataFrame
        ``ccode, year, n_votes, n_agree`` (int64), only state-years with ``n_votes > 0``.
    """
    bad = ~votes["vote"].isin(VOTES)
    if bad.any():
        raise ValueError(f"un_votes.csv: vote values {sorted(set(votes.loc[bad, 'vote'].astype(str)))} not in {VOTES}")
    if roll_calls["rcid"].duplicated().any():
        raise ValueError("un_roll_calls.csv: duplicate rcid")
    merged = votes.merge(roll_calls[["rcid", "session"]], on="rcid", how="left", validate="many_to_one")
    orphan = merged["session"].isna()
    log.exclude(str(VOTES_FILE), "rcid not in un_roll_calls.csv (no session/year)", merged[orphan], ["rcid"])
    merged = merged[~orphan]
    merged["year"] = merged["session"].astype("int64") + SESSION_YEAR_OFFSET
    outside = ~merged["year"].between(start, end)
    log.exclude(str(VOTES_FILE), f"vote outside {start}-{end}", int(outside.sum()))
    merged = merged[~outside]
    dup = merged.duplicated(["rcid", "ccode"], keep=False)
    if dup.any():
        raise ValueError(f"un_votes.csv: several votes of one state on one roll call: {merged.loc[dup, ['rcid', 'ccode']].head().to_dict('records')}")
    is_us = merged["ccode"] == US_CCODE
    us = merged.loc[is_us, ["rcid", "vote"]].rename(columns={"vote": "us_vote"})
    log.exclude(str(VOTES_FILE), "US's own vote (reference, not a state-year of the table)", merged[is_us], ["rcid"])
    others = merged[~is_us].merge(us, on="rcid", how="left")
    no_us = others["us_vote"].isna()
    log.exclude(str(VOTES_FILE), "the US did not vote on this roll call (no comparison possible)", others[no_us], ["rcid", "ccode"])
    others = others[~no_us]
    others["agree"] = (others["vote"].astype(str) == others["us_vote"].astype(str)).astype("int64")
    out = others.groupby(["ccode", "year"], sort=True).agg(n_votes=("rcid", "size"), n_agree=("agree", "sum")).reset_index()
    return out.astype("int64")


def build_un_agreement(raw_dir: Path, log: ExclusionLog, resolver: CountryResolver | None = None,
                       start: int = START_YEAR, end: int = END_YEAR) -> pd.DataFrame:
    """Build ``un_agreement`` from the raw roll calls (ISO2 -> COW via the crosswalk).

    Rows without an ISO2 code (historical entities, e.g. Zanzibar) are logged; any ISO2
    code the crosswalk cannot place is an error, not a silent drop. Only codes of votes in
    the window are resolved, so a pre-2001 entity missing from the crosswalk cannot fail
    the build. A COW state-year of the system list with no joint vote is logged too.
    """
    raw_dir = Path(raw_dir)
    resolver = resolver or load_resolver()
    votes = read_votes(raw_dir)
    calls = pd.read_csv(raw_dir / ROLL_CALLS_FILE, usecols=["rcid", "session"])
    window_rcids = calls.loc[(calls["session"] + SESSION_YEAR_OFFSET).between(start, end), "rcid"]
    in_window = votes["rcid"].isin(window_rcids)
    log.exclude(str(VOTES_FILE), f"vote outside {start}-{end}", int((~in_window).sum()))
    no_code = in_window & (votes["country_code"].astype(str) == "")
    log.exclude(str(VOTES_FILE), "empty country_code in window (not a state)", votes[no_code], ["country"])
    votes = votes[in_window & ~no_code].copy()
    codes = votes["country_code"].astype(str)
    lookup = pd.Series(sorted(codes.unique()))
    mapped = dict(zip(lookup, resolver.to_ccode(lookup, "iso2", str(VOTES_FILE), "country_code")))
    votes["ccode"] = codes.map(mapped).astype("int64")
    out = agreement_counts(votes[["rcid", "ccode", "vote"]], calls, log, start, end)
    system = pd.read_csv(raw_dir / SYSTEM_FILE)
    system = system.loc[system["year"].between(start, end) & (system["ccode"] != US_CCODE), ["ccode", "year"]]
    absent = system.merge(out, on=["ccode", "year"], how="left", indicator=True)
    log.exclude("un_agreement", "COW state-year with no roll call voted jointly with the US (absent from table)",
                absent[absent["_merge"] == "left_only"], ["ccode", "year"])
    return out


def build_ideal_points(raw_dir: Path, log: ExclusionLog, start: int = START_YEAR, end: int = END_YEAR) -> pd.DataFrame:
    """Build ``ideal_points`` for the window, with the distance from the US.

    The ``ccode`` column is checked against the COW state list (``system2016.csv``): a code
    that is not a COW state in that year is an error naming it, since a silent mismatch here
    would misplace a country's preferences.
    """
    raw_dir = Path(raw_dir)
    ip = pd.read_csv(raw_dir / IDEAL_FILE, keep_default_na=False, na_values=["", "NA"])
    ip = ip.rename(columns=IDEAL_COLUMNS)
    ip["year"] = ip["session"] + SESSION_YEAR_OFFSET
    outside = ~ip["year"].between(start, end)
    log.exclude(str(IDEAL_FILE), f"session outside {start}-{end}", int(outside.sum()))
    ip = ip[~outside]
    system = pd.read_csv(raw_dir / SYSTEM_FILE)
    known = system[["ccode", "year"]].drop_duplicates()
    check = ip.merge(known, on=["ccode", "year"], how="left", indicator=True)
    unknown = check[check["_merge"] == "left_only"]
    if len(unknown):
        raise ValueError(
            f"{IDEAL_FILE}: ccode(s) not COW state-years: "
            f"{unknown[['ccode', 'year', 'Countryname']].drop_duplicates('ccode').head(10).to_dict('records')}"
        )
    us = ip.loc[ip["ccode"] == US_CCODE, ["year", "ideal_point"]].rename(columns={"ideal_point": "us_ideal_point"})
    ip = ip.merge(us, on="year", how="left", validate="many_to_one")
    ip["ideal_distance"] = (ip["ideal_point"] - ip["us_ideal_point"]).abs()
    return ip[IDEAL_POINTS_SCHEMA.column_names].reset_index(drop=True)


def write_unvote_tables(raw_dir: Path, out_dir: Path, log: ExclusionLog, resolver: CountryResolver | None = None) -> dict[str, str]:
    """Build and write ``un_agreement.csv`` and ``ideal_points.csv``; returns name -> sha256."""
    raw_dir, out_dir = Path(raw_dir), Path(out_dir)
    agreement = build_un_agreement(raw_dir, log, resolver)
    ideal = build_ideal_points(raw_dir, log)
    vote_sources = {str(f): sha256_file(raw_dir / f) for f in (VOTES_FILE, ROLL_CALLS_FILE, SYSTEM_FILE)}
    if resolver is None:  # the default resolver reads these two files; record what it read
        vote_sources["data/tables/crosswalk.csv"] = sha256_file(TABLES_DIR / "crosswalk.csv")
        vote_sources["data/country_aliases.csv"] = sha256_file(ALIASES_PATH)
    ideal_sources = {str(f): sha256_file(raw_dir / f) for f in (IDEAL_FILE, SYSTEM_FILE)}
    return {
        "un_agreement": write_table(agreement, out_dir / "un_agreement.csv", UN_AGREEMENT_SCHEMA, vote_sources),
        "ideal_points": write_table(ideal, out_dir / "ideal_points.csv", IDEAL_POINTS_SCHEMA, ideal_sources),
    }
