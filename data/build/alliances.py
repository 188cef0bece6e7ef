"""ATOP 5.1 alliance depth items and US alliance membership, 2001-2014.

Two tables feed Part A of the model (``MODEL.md``):

* ``alliance_items.csv`` -- one row per ATOP 5.1 alliance with the nine Benson & Clinton
  (2016) depth items recoded exactly as MODEL.md Part A, identification flags, and the
  published Benson & Clinton depth score (posterior mean and SD) where it exists. The IRT
  is fitted on *all* alliances so the item parameters are well informed, and the B&C score
  is the benchmark the re-estimated depth must correlate with.
* ``us_alliance_membership.csv`` -- (ccode, year, atopid) for every year 2001-2014 in which
  a state and the US are both members of the alliance, from the ATOP member-phase file. The
  dyad depth ``depth_it`` is a max over these rows.

Item coding (value ranges checked on the 5.1 file; the codebook PDF is not in the raw
directory, so the meanings are those listed in SOURCES.md and MODEL.md):

* ``milcon`` 0..3 -> ``milcontact`` = (milcon == 2), ``commondef`` = (milcon == 3); both
  are split from one ATOP variable so B&C's two binary items are reproduced.
* ``intcom``, ``contrib`` 0/1 kept; ``milaid`` 0..4, ``base`` 0..3, ``organ1`` 0..3 kept
  ordinal (as B&C did); ``ecaid`` 0..3 -> (ecaid > 0); ``pubsecr`` 0..2 -> ``secrecy``.
* An item that ATOP leaves empty stays NaN: the IRT skips missing items instead of
  treating "not coded" as "no such provision".

ATOP 5.1 codes NATO (3180) ``intcom`` = 0 (as did B&C's ATOP 3.0 input); its depth
comes from ``base`` = 3 and ``organ1`` = 3. The value is kept as published.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from allypot.data.schema import (
    Column,
    ExclusionLog,
    TableSchema,
    sha256_file,
    write_table,
)

ATOP_DIR = Path("atop") / "jandresgannon__DoDL"
ALLIANCE_FILE = ATOP_DIR / "atop5_1a.csv"
MEMBER_FILE = ATOP_DIR / "atop5_1m.csv"
BC_SCORE_FILE = ATOP_DIR / "AllianceDataScoreJCR_RR.csv"
BC_DRAWS_FILE = ATOP_DIR / "depth_factanal.csv"

US_CCODE = 2
# ATOP 5.1 covers alliances through 2018; ``yrexit == 0`` / ``endyr == 0`` mean "still in
# force at the end of coverage" (SOURCES.md), so an open membership runs to this year.
ATOP_COVERAGE_END = 2018
START_YEAR, END_YEAR = 2001, 2014

ITEMS = ("milcontact", "commondef", "intcom", "milaid", "base", "contrib", "organ1", "ecaid", "secrecy")
FLAGS = ("defense", "offense", "neutral", "nonagg", "consul")
# raw ATOP range of every variable an item is built from; a value outside it is a coding
# the recode does not understand, so the build stops rather than guess.
RAW_RANGES = {"milcon": 3, "intcom": 1, "milaid": 4, "base": 3, "contrib": 1, "organ1": 3, "ecaid": 3, "pubsecr": 2}

_ATOP = "ATOP 5.1 atop5_1a.csv"
ALLIANCE_ITEMS_SCHEMA = TableSchema(
    name="alliance_items",
    description=(
        "One row per ATOP 5.1 alliance: Benson & Clinton depth items (MODEL.md Part A), "
        "obligation flags, membership summary and the published B&C depth score."
    ),
    columns=(
        Column("atopid", "int", "ATOP alliance id", source=_ATOP, nullable=False),
        Column("begyr", "int", "year the alliance began", unit="year", source=_ATOP, nullable=False),
        Column("endyr", "int", "year the alliance ended; 0 = still in force in 2018", unit="year", source=_ATOP, nullable=False),
        Column("milcontact", "int", "peacetime military contact (milcon == 2); NaN if milcon not coded", unit="0/1", source=_ATOP, min=0, max=1),
        Column("commondef", "int", "common defence policy (milcon == 3); NaN if milcon not coded", unit="0/1", source=_ATOP, min=0, max=1),
        Column("intcom", "int", "integrated military command", unit="0/1", source=_ATOP, min=0, max=1),
        Column("milaid", "int", "military aid provision (ATOP milaid)", unit="ordinal 0..4", source=_ATOP, min=0, max=4),
        Column("base", "int", "basing provision (ATOP base; 3 = non-reciprocal stationing)", unit="ordinal 0..3", source=_ATOP, min=0, max=3),
        Column("contrib", "int", "specific contribution of forces/resources", unit="0/1", source=_ATOP, min=0, max=1),
        Column("organ1", "int", "formal organisation (ATOP organ1)", unit="ordinal 0..3", source=_ATOP, min=0, max=3),
        Column("ecaid", "int", "economic aid provision (ATOP ecaid > 0)", unit="0/1", source=_ATOP, min=0, max=1),
        Column("secrecy", "int", "secrecy of the treaty (ATOP pubsecr)", unit="ordinal 0..2", source=_ATOP, min=0, max=2),
        *(Column(f, "int", f"ATOP {f} obligation", unit="0/1", source=_ATOP, nullable=False, min=0, max=1) for f in FLAGS),
        Column("n_members", "int", "distinct member states over all phases", unit="states", source="ATOP 5.1 atop5_1m.csv", nullable=False, min=1),
        Column("us_member", "bool", "the US (ccode 2) is a member in any phase", source="ATOP 5.1 atop5_1m.csv", nullable=False),
        Column("bc_depth", "float", "Benson & Clinton (2016) depth score, posterior mean; NaN if not in their 492-alliance sample",
               unit="latent (B&C factor scale)", source="AllianceDataScoreJCR_RR.csv Depth.score"),
        Column("bc_depth_sd", "float", "posterior SD of the B&C depth score (SD over 1,000 draws of phi_k_1)",
               unit="latent (B&C factor scale)", source="depth_factanal.csv", min=0),
    ),
    key=("atopid",),
)

US_MEMBERSHIP_SCHEMA = TableSchema(
    name="us_alliance_membership",
    description=(
        "State-year-alliance rows, 2001-2014, in which the state and the US are both members of "
        "the ATOP alliance (member-phase years unioned; yrexit == 0 = in force). The US itself is excluded."
    ),
    columns=(
        Column("ccode", "int", "COW code of the US ally", source="ATOP 5.1 atop5_1m.csv member", nullable=False),
        Column("year", "int", "calendar year", unit="year", nullable=False, min=START_YEAR, max=END_YEAR),
        Column("atopid", "int", "ATOP alliance id shared with the US", source="ATOP 5.1 atop5_1m.csv", nullable=False),
    ),
    key=("ccode", "year", "atopid"),
    row_checks=(("the US cannot be its own ally", lambda df: df["ccode"] == US_CCODE),),
)


def recode_items(atop: pd.DataFrame) -> pd.DataFrame:
    """Recode ATOP alliance-level provisions into the nine B&C depth items.

    Parameters
    ----------
    atop : DataFrame
        ATOP alliance rows with at least ``atopid, milcon, intcom, milaid, base, contrib,
        organ1, ecaid, pubsecr``.

    Returns
    -------
    DataFrame
        ``atopid`` plus the items in :data:`ITEMS` as nullable integers; a provision ATOP
        leaves empty stays missing so the IRT skips it rather than reading it as 0.

    Raises
    ------
    ValueError
        If a raw value lies outside the range the recode is written for: an unknown code
        must be looked up in the codebook, not silently binned.
    """
    for var, top in RAW_RANGES.items():
        values = atop[var]
        bad = values.notna() & ~values.isin(range(top + 1))
        if bad.any():
            raise ValueError(
                f"ATOP {var} has value(s) {sorted(values[bad].unique())} outside 0..{top}"
                f" (atopid {atop.loc[bad, 'atopid'].tolist()[:5]})"
            )
    milcon = atop["milcon"].astype("Int64")
    out = pd.DataFrame({"atopid": atop["atopid"].astype("Int64")})
    out["milcontact"] = (milcon == 2).astype("Int64").mask(milcon.isna())
    out["commondef"] = (milcon == 3).astype("Int64").mask(milcon.isna())
    for var in ("intcom", "milaid", "base", "contrib", "organ1"):
        out[var] = atop[var].astype("Int64")
    ecaid = atop["ecaid"].astype("Int64")
    out["ecaid"] = (ecaid > 0).astype("Int64").mask(ecaid.isna())
    out["secrecy"] = atop["pubsecr"].astype("Int64")
    return out


def membership_years(members: pd.DataFrame, coverage_end: int = ATOP_COVERAGE_END) -> pd.DataFrame:
    """Expand ATOP member-phase rows into distinct (atopid, member, year) rows.

    A member is counted in every year from ``yrent`` to ``yrexit`` inclusive (the
    convention of ATOP's own state-year file, which this reproduces); ``yrexit == 0``
    means the membership is still in force and runs to ``coverage_end``. Phase rows of
    one member are unioned, so overlapping phases do not duplicate years.

    Parameters
    ----------
    members : DataFrame
        Rows with ``atopid, member, yrent, yrexit``.
    coverage_end : int
        Last year an open membership (``yrexit == 0``) is counted.

    Returns
    -------
    DataFrame
        Columns ``atopid, member, year``, unique, sorted.
    """
    exit_year = members["yrexit"].where(members["yrexit"] != 0, coverage_end)
    spans = pd.DataFrame(
        {
            "atopid": members["atopid"].to_numpy(),
            "member": members["member"].to_numpy(),
            "year": [np.arange(a, b + 1) for a, b in zip(members["yrent"], exit_year)],
        }
    )
    years = spans.explode("year").dropna(subset=["year"]).astype({"year": "int64"})
    return years.drop_duplicates().sort_values(["atopid", "member", "year"]).reset_index(drop=True)


def us_membership(
    members: pd.DataFrame,
    log: ExclusionLog,
    start: int = START_YEAR,
    end: int = END_YEAR,
    coverage_end: int = ATOP_COVERAGE_END,
) -> pd.DataFrame:
    """State-year-alliance rows in which the state and the US are both members.

    Parameters
    ----------
    members : DataFrame
        ATOP member-phase rows (``atopid, member, yrent, yrexit``).
    log : ExclusionLog
        Receives the US's own rows, which are not dyads.
    start, end : int
        Year window (inclusive).
    coverage_end : int
        Last year of an open membership, see :func:`membership_years`.

    Returns
    -------
    DataFrame
        ``ccode, year, atopid`` (int64).
    """
    years = membership_years(members, coverage_end)
    years = years[years["year"].between(start, end)]
    us = years.loc[years["member"] == US_CCODE, ["atopid", "year"]]
    joint = years.merge(us, on=["atopid", "year"], how="inner")
    own = joint[joint["member"] == US_CCODE]
    log.exclude(
        "atop5_1m.csv", "US membership rows: the US is not its own ally (years in window)", own, ["atopid", "year"]
    )
    joint = joint[joint["member"] != US_CCODE].rename(columns={"member": "ccode"})
    return joint[["ccode", "year", "atopid"]].astype("int64").reset_index(drop=True)


def load_bc_depth(raw_dir: Path) -> pd.DataFrame:
    """Benson & Clinton's published depth score and its posterior SD per atopid.

    The score file's first (unnamed) column holds the R row names ``phi_k_1`` that name the
    draw columns of ``depth_factanal.csv``; the draws are joined on that name (the row
    names skip the numbers of incomplete cases, so ``indx`` is *not* the draw index). The
    join is checked by requiring the mean of the draws to reproduce ``Depth.score``.

    Returns
    -------
    DataFrame
        ``atopid, bc_depth, bc_depth_sd``.
    """
    scores = pd.read_csv(raw_dir / BC_SCORE_FILE)
    scores = scores.rename(columns={scores.columns[0]: "phi"})
    draws = pd.read_csv(raw_dir / BC_DRAWS_FILE)
    missing = sorted(set(scores["phi"]) - set(draws.columns))
    if missing:
        raise ValueError(f"{BC_DRAWS_FILE}: no draw column(s) {missing[:5]} for rows of {BC_SCORE_FILE}")
    phi = draws[scores["phi"].tolist()]
    mean = phi.mean().to_numpy()
    # Depth.score is printed to 3 decimals, so the mean of the draws must agree to rounding
    gap = np.abs(mean - scores["Depth.score"].to_numpy()).max()
    if gap > 1e-3:
        raise ValueError(f"B&C draw means differ from Depth.score by up to {gap:.4f}: row/draw mapping broken")
    return pd.DataFrame(
        {"atopid": scores["atopid"].astype("int64"), "bc_depth": scores["Depth.score"], "bc_depth_sd": phi.std(ddof=1).to_numpy()}
    )


def build_alliance_items(raw_dir: Path, log: ExclusionLog) -> pd.DataFrame:
    """Build the ``alliance_items`` table (see module docstring).

    B&C scores whose atopid is absent from ATOP 5.1 (their ATOP 3.0 ids that were merged
    or renumbered) cannot be attached to an alliance and are logged as excluded.
    """
    atop = pd.read_csv(raw_dir / ALLIANCE_FILE)
    members = pd.read_csv(raw_dir / MEMBER_FILE)
    items = recode_items(atop)
    flags = atop[["atopid", "begyr", "endyr", *FLAGS]].astype("int64")
    out = flags.merge(items, on="atopid", how="left", validate="one_to_one")
    n_members = members.groupby("atopid")["member"].nunique().rename("n_members")
    us_ids = set(members.loc[members["member"] == US_CCODE, "atopid"])
    out = out.merge(n_members, left_on="atopid", right_index=True, how="left")
    out["us_member"] = out["atopid"].isin(us_ids)
    bc = load_bc_depth(raw_dir)
    unmatched = bc[~bc["atopid"].isin(out["atopid"])]
    log.exclude(
        str(BC_SCORE_FILE), "B&C (ATOP 3.0) atopid not in ATOP 5.1: score cannot be attached", unmatched, ["atopid", "bc_depth"]
    )
    out = out.merge(bc, on="atopid", how="left", validate="one_to_one")
    return out[ALLIANCE_ITEMS_SCHEMA.column_names]


def build_us_membership(raw_dir: Path, log: ExclusionLog, start: int = START_YEAR, end: int = END_YEAR) -> pd.DataFrame:
    """Build the ``us_alliance_membership`` table from the ATOP member file."""
    members = pd.read_csv(raw_dir / MEMBER_FILE)
    return us_membership(members, log, start, end)


def write_alliance_tables(raw_dir: Path, out_dir: Path, log: ExclusionLog) -> dict[str, str]:
    """Build and write both alliance tables; returns table name -> sha256 of the CSV."""
    raw_dir, out_dir = Path(raw_dir), Path(out_dir)
    items = build_alliance_items(raw_dir, log)
    membership = build_us_membership(raw_dir, log)
    item_sources = {str(f): sha256_file(raw_dir / f) for f in (ALLIANCE_FILE, MEMBER_FILE, BC_SCORE_FILE, BC_DRAWS_FILE)}
    return {
        "alliance_items": write_table(items, out_dir / "alliance_items.csv", ALLIANCE_ITEMS_SCHEMA, item_sources),
        "us_alliance_membership": write_table(
            membership, out_dir / "us_alliance_membership.csv", US_MEMBERSHIP_SCHEMA,
            {str(MEMBER_FILE): sha256_file(raw_dir / MEMBER_FILE)},
        ),
    }
