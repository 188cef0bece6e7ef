"""ATOP 5.1 alliance depth items and US alliance membership, 2001-2014.

Two tables feed Part A of the model (``MODEL.md``):

* ``alliance_items.csv`` -- one row per ATOP 5.1 alliance with the nine Benson & Clinton
  (2016) depth items recoded exactly as MODEL.md Part A, Leeds & Anac's military
  institutionalisation index ``milinst`` (the tenth item), identification flags, and the
  published Benson & Clinton depth score (posterior mean and SD) where it exists. The IRT
  is fitted on *all* alliances so the item parameters are well informed, and the B&C score
  is the benchmark the re-estimated depth must correlate with.
* ``us_alliance_membership.csv`` -- (ccode, year, atopid) for every year 2001-2014 in which
  a state and the US are both members of the alliance, from the ATOP member-phase file, with
  the phase in force and that phase's ``defense``/``offense`` obligations. The dyad depth
  ``depth_it`` is a max over the rows of the alliance universe in force
  (:data:`UNIVERSES`; ``[alliances]`` in ``data/build_config.toml``).

Phases. ATOP splits a treaty into phases when its terms change. Obligations are taken from
the alliance-phase file ``atop5_1aph.csv`` (alliance-level flags of each phase: 1 if the
treaty binds any member to that obligation in that phase), and a membership year is matched
to a phase through the member-phase row of ``atop5_1m.csv`` that covers the year. The
member file also carries per-member flags, but the universe is a property of the treaty
(Benson & Clinton scored treaties, not dyads), so the alliance-phase flags are used. In a year
where one member's phases meet (one ends, the next begins), the later phase counts: it is the
one in force at the end of that year.

Item coding (value ranges checked on the 5.1 file; the codebook PDF is not in the raw
directory, so the meanings are those listed in SOURCES.md and MODEL.md):

* ``milcon`` 0..3 -> ``milcontact`` = (milcon == 2), ``commondef`` = (milcon == 3); both
  are split from one ATOP variable so B&C's two binary items are reproduced.
* ``intcom``, ``contrib`` 0/1 kept; ``milaid`` 0..4, ``base`` 0..3, ``organ1`` 0..3 kept
  ordinal (as B&C did); ``ecaid`` 0..3 -> (ecaid > 0); ``pubsecr`` 0..2 -> ``secrecy``.
* ``milinst`` 0..2 (Leeds & Anac, ``atopinst5_1.csv``) is coded per alliance *phase*, unlike the
  nine items above, which are alliance-level summaries; one phase per alliance is chosen by
  ``[alliances] milinst_phase`` (:func:`item_phase`).
* An item that ATOP leaves empty stays NaN: the IRT skips missing items instead of
  treating "not coded" as "no such provision".

ATOP 5.1 codes NATO (3180) ``intcom`` = 0 (as did B&C's ATOP 3.0 input); its depth
comes from ``base`` = 3 and ``organ1`` = 3. The value is kept as published.
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import asdict, dataclass
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

from allypot.paths import BUILD_CONFIG as CONFIG_PATH

ATOP_DIR = Path("atop") / "jandresgannon__DoDL"
ALLIANCE_FILE = ATOP_DIR / "atop5_1a.csv"
MEMBER_FILE = ATOP_DIR / "atop5_1m.csv"
PHASE_FILE = ATOP_DIR / "atop5_1aph.csv"
INSTITUTION_FILE = ATOP_DIR / "atopinst5_1.csv"
BC_SCORE_FILE = ATOP_DIR / "AllianceDataScoreJCR_RR.csv"
BC_DRAWS_FILE = ATOP_DIR / "depth_factanal.csv"
# the scores behind the published panel's ``depth`` (log(score + 2.141)); they run against
# Benson & Clinton's Depth.score (r = -0.989), kept only so the audit can show it
KENT_SCORE_FILE = ATOP_DIR / "AllianceDataScore_Kent.csv"

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
MILINST_MAX = 2

# Which alliances shared with the US count (MODEL.md Part A). Each maps the membership table
# to a boolean mask of the rows in the universe.
UNIVERSES = {
    "defence_offence": lambda m: (m["defense"] == 1) | (m["offense"] == 1),
    "all": lambda m: pd.Series(True, index=m.index),
}
# Which phase of an alliance gives its (single) milinst value.
MILINST_PHASE_RULES = ("study_end", "last")


@dataclass(frozen=True)
class AllianceRules:
    """The switchable alliance rules of the build (``[alliances]`` in build_config.toml)."""

    universe: str = "defence_offence"
    milinst_phase: str = "study_end"
    end_year: int = END_YEAR

    def __post_init__(self):
        if self.universe not in UNIVERSES:
            raise ValueError(f"alliances.universe = {self.universe!r}; allowed {tuple(UNIVERSES)}")
        if self.milinst_phase not in MILINST_PHASE_RULES:
            raise ValueError(f"alliances.milinst_phase = {self.milinst_phase!r}; allowed {MILINST_PHASE_RULES}")

    @classmethod
    def from_config(cls, config: dict) -> AllianceRules:
        """Rules from the parsed build_config.toml (its [years] and [alliances])."""
        fields = dict(config.get("alliances", {}))
        fields["end_year"] = config.get("years", {}).get("end", END_YEAR)
        return cls(**fields)

    def as_dict(self) -> dict:
        return asdict(self)


def load_alliance_rules(path: Path = CONFIG_PATH) -> AllianceRules:
    """Read :class:`AllianceRules` from ``data/build_config.toml``."""
    with open(path, "rb") as fh:
        return AllianceRules.from_config(tomllib.load(fh))


def in_universe(membership: pd.DataFrame, universe: str) -> pd.Series:
    """Boolean mask of the membership rows that belong to ``universe`` (see :data:`UNIVERSES`)."""
    if universe not in UNIVERSES:
        raise ValueError(f"unknown alliance universe {universe!r}; allowed {tuple(UNIVERSES)}")
    return UNIVERSES[universe](membership).astype(bool)


_ATOP = "ATOP 5.1 atop5_1a.csv"
ALLIANCE_ITEMS_SCHEMA = TableSchema(
    name="alliance_items",
    description=(
        "One row per ATOP 5.1 alliance: Benson & Clinton depth items (MODEL.md Part A) from the alliance-level file, "
        "Leeds & Anac military institutionalisation (milinst) of one phase (milinst_phase), obligation flags of the "
        "alliance as a whole (1 if any phase has it), membership summary and the published B&C depth score."
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
        Column("milinst", "int",
               "military institutionalisation (Leeds & Anac: 0 none, 1 moderate, 2 high) of the phase in milinst_phase; "
               "a rule-based recode of ATOP provisions that weights basing and integrated command; NaN where not coded",
               unit="ordinal 0..2", source="ATOP 5.1 atopinst5_1.csv", min=0, max=MILINST_MAX),
        Column("milinst_phase", "int",
               "ATOP phase whose milinst is used (0 = single-phase alliance): by default the latest phase begun by the "
               "last study year (the phase in force in the study years' end), for alliances begun later their last phase",
               source="ATOP 5.1 atop5_1aph.csv", nullable=False, min=0),
        *(Column(f, "int", f"ATOP {f} obligation", unit="0/1", source=_ATOP, nullable=False, min=0, max=1) for f in FLAGS),
        Column("n_members", "int", "distinct member states over all phases", unit="states", source="ATOP 5.1 atop5_1m.csv", nullable=False, min=1),
        Column("us_member", "bool", "the US (ccode 2) is a member in any phase", source="ATOP 5.1 atop5_1m.csv", nullable=False),
        Column("bc_depth", "float", "Benson & Clinton (2016) depth score, posterior mean; NaN if not in their 492-alliance sample",
               unit="latent (B&C factor scale)", source="AllianceDataScoreJCR_RR.csv Depth.score"),
        Column("bc_depth_sd", "float", "posterior SD of the B&C depth score (SD over 1,000 draws of phi_k_1)",
               unit="latent (B&C factor scale)", source="depth_factanal.csv", min=0),
        Column("kent_depth", "float",
               "the score behind the published panel's depth (= log(kent_depth + 2.141)); runs AGAINST bc_depth "
               "(r = -0.989), kept for the audit only, never as a depth measure; NaN if not scored",
               unit="latent (reversed B&C scale)", source="AllianceDataScore_Kent.csv depth.score"),
    ),
    key=("atopid",),
)

US_MEMBERSHIP_SCHEMA = TableSchema(
    name="us_alliance_membership",
    description=(
        "State-year-alliance rows, 2001-2014, in which the state and the US are both members of "
        "the ATOP alliance (member-phase years unioned; yrexit == 0 = in force) -- the 'all' universe. "
        "The US itself is excluded. Each row carries the phase in force that year (the state's member-phase "
        "row of atop5_1m.csv covering the year; where two phases meet in one year, the later) and that "
        "alliance-phase's obligations from atop5_1aph.csv. The default 'defence_offence' universe "
        "(build_config.toml [alliances] universe) is the rows with defense == 1 or offense == 1: the military "
        "alliances Benson & Clinton scored; it leaves out non-aggression and consultation pacts such as "
        "the OSCE/Helsinki Final Act (3740) and the Treaty of Amity and Cooperation (3755)."
    ),
    columns=(
        Column("ccode", "int", "COW code of the US ally", source="ATOP 5.1 atop5_1m.csv member", nullable=False),
        Column("year", "int", "calendar year", unit="year", nullable=False, min=START_YEAR, max=END_YEAR),
        Column("atopid", "int", "ATOP alliance id shared with the US", source="ATOP 5.1 atop5_1m.csv", nullable=False),
        Column("phase", "int", "ATOP phase of the alliance in force for the state that year (0 = single-phase alliance)",
               source="ATOP 5.1 atop5_1m.csv phase", nullable=False, min=0),
        Column("defense", "int", "the alliance phase in force carries a defence obligation", unit="0/1",
               source="ATOP 5.1 atop5_1aph.csv defense", nullable=False, min=0, max=1),
        Column("offense", "int", "the alliance phase in force carries an offence obligation", unit="0/1",
               source="ATOP 5.1 atop5_1aph.csv offense", nullable=False, min=0, max=1),
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
    """Expand ATOP member-phase rows into distinct (atopid, member, year) rows with their phase.

    A member is counted in every year from ``yrent`` to ``yrexit`` inclusive (the
    convention of ATOP's own state-year file, which this reproduces); ``yrexit == 0``
    means the membership is still in force and runs to ``coverage_end``. Phase rows of
    one member are unioned, so overlapping phases do not duplicate years; in a year two
    phases share, the later phase is kept (it is in force at the end of that year).

    Parameters
    ----------
    members : DataFrame
        Rows with ``atopid, member, phase, yrent, yrexit``.
    coverage_end : int
        Last year an open membership (``yrexit == 0``) is counted.

    Returns
    -------
    DataFrame
        Columns ``atopid, member, year, phase``, unique on the first three, sorted.
    """
    exit_year = members["yrexit"].where(members["yrexit"] != 0, coverage_end)
    spans = pd.DataFrame(
        {
            "atopid": members["atopid"].to_numpy(),
            "member": members["member"].to_numpy(),
            "phase": members["phase"].to_numpy(),
            "year": [np.arange(a, b + 1) for a, b in zip(members["yrent"], exit_year)],
        }
    )
    years = spans.explode("year").dropna(subset=["year"]).astype({"year": "int64", "phase": "int64"})
    years = years.sort_values(["atopid", "member", "year", "phase"])
    years = years.drop_duplicates(["atopid", "member", "year"], keep="last")
    return years[["atopid", "member", "year", "phase"]].reset_index(drop=True)


def phase_obligations(phases: pd.DataFrame) -> pd.DataFrame:
    """``atopid, phase, defense, offense`` of every alliance phase, checked to be 0/1 and unique."""
    out = phases[["atopid", "phase", "defense", "offense"]]
    for flag in ("defense", "offense"):
        bad = ~out[flag].isin([0, 1])
        if bad.any():
            raise ValueError(f"{PHASE_FILE}: {flag} not 0/1 for atopid {out.loc[bad, 'atopid'].tolist()[:5]}")
    if out.duplicated(["atopid", "phase"]).any():
        raise ValueError(f"{PHASE_FILE}: an (atopid, phase) appears twice")
    return out.astype("int64")


def us_membership(
    members: pd.DataFrame,
    phases: pd.DataFrame,
    log: ExclusionLog,
    start: int = START_YEAR,
    end: int = END_YEAR,
    coverage_end: int = ATOP_COVERAGE_END,
) -> pd.DataFrame:
    """State-year-alliance rows in which the state and the US are both members.

    Parameters
    ----------
    members : DataFrame
        ATOP member-phase rows (``atopid, member, phase, yrent, yrexit``).
    phases : DataFrame
        ATOP alliance-phase rows (``atopid, phase, defense, offense``), whose obligations the
        rows take from the phase in force (see :func:`membership_years`).
    log : ExclusionLog
        Receives the US's own rows, which are not dyads.
    start, end : int
        Year window (inclusive).
    coverage_end : int
        Last year of an open membership, see :func:`membership_years`.

    Returns
    -------
    DataFrame
        ``ccode, year, atopid, phase, defense, offense`` (int64).

    Raises
    ------
    ValueError
        If a member-phase has no alliance-phase row to take its obligations from.
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
    joint = joint.merge(phase_obligations(phases), on=["atopid", "phase"], how="left", validate="many_to_one")
    unmatched = joint["defense"].isna()
    if unmatched.any():
        pairs = joint.loc[unmatched, ["atopid", "phase"]].drop_duplicates().to_numpy().tolist()
        raise ValueError(f"{MEMBER_FILE}: (atopid, phase) {pairs[:5]} not in {PHASE_FILE}")
    return joint[US_MEMBERSHIP_SCHEMA.column_names].astype("int64").reset_index(drop=True)


def load_milinst(raw_dir: Path, phases: pd.DataFrame) -> pd.DataFrame:
    """Leeds & Anac ``milinst`` per alliance phase: ``atopid, phase, milinst`` (Int64, NA if not coded).

    ``atopinst5_1.csv`` names a phase by ``atopidphase`` = atopid + phase / 10, stored as a
    float with noise in the fourth decimal (3180.1001 is NATO phase 1), so the phase is
    ``round(10 * (atopidphase - atopid))``. Every row must match one phase of the ATOP phase file
    and every phase must have a row, so a misread id cannot silently drop or shift a value.
    """
    inst = pd.read_csv(Path(raw_dir) / INSTITUTION_FILE)
    phase = (10 * (inst["atopidphase"] - inst["atopid"])).round()
    if ((10 * (inst["atopidphase"] - inst["atopid"]) - phase).abs() > 0.05).any() or (phase < 0).any():
        raise ValueError(f"{INSTITUTION_FILE}: atopidphase not of the form atopid.phase")
    milinst = inst["milinst"]
    bad = milinst.notna() & ~milinst.isin(range(MILINST_MAX + 1))
    if bad.any():
        raise ValueError(
            f"{INSTITUTION_FILE}: milinst value(s) {sorted(milinst[bad].unique())} outside 0..{MILINST_MAX} "
            f"(rows {(np.flatnonzero(bad.to_numpy()) + 2).tolist()[:5]})"
        )
    out = pd.DataFrame({"atopid": inst["atopid"].astype("int64"), "phase": phase.astype("int64"),
                        "milinst": milinst.astype("Int64")})
    keys_inst = set(zip(out["atopid"], out["phase"]))
    keys_phase = set(zip(phases["atopid"], phases["phase"]))
    if out.duplicated(["atopid", "phase"]).any() or keys_inst != keys_phase:
        raise ValueError(
            f"{INSTITUTION_FILE} and {PHASE_FILE} do not list the same alliance phases: only in the first "
            f"{sorted(keys_inst - keys_phase)[:5]}, only in the second {sorted(keys_phase - keys_inst)[:5]}"
        )
    return out


def item_phase(phases: pd.DataFrame, rule: str, end_year: int = END_YEAR) -> pd.DataFrame:
    """The phase whose milinst stands for each alliance: ``atopid, phase``.

    The IRT gives one depth per alliance and the study uses it for 2001-``end_year``, so
    ``"study_end"`` takes the latest phase begun by ``end_year`` -- the phase in force at the
    end of the study years for alliances still in force then, the final phase for alliances that
    ended earlier -- and, for alliances begun after ``end_year``, their last phase. A max over
    phases would instead give SEATO (3260) the organisation it dissolved in 1977. ``"last"``
    takes each alliance's last phase.
    """
    if rule not in MILINST_PHASE_RULES:
        raise ValueError(f"milinst phase rule {rule!r}; allowed {MILINST_PHASE_RULES}")
    ordered = phases[["atopid", "phase", "begyr"]].sort_values(["atopid", "phase"])
    last = ordered.groupby("atopid").tail(1)
    if rule == "last":
        return last[["atopid", "phase"]].reset_index(drop=True)
    begun = ordered[ordered["begyr"] <= end_year].groupby("atopid").tail(1)
    later = last[~last["atopid"].isin(begun["atopid"])]
    return pd.concat([begun, later])[["atopid", "phase"]].sort_values("atopid").reset_index(drop=True)


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


def build_alliance_items(raw_dir: Path, log: ExclusionLog, rules: AllianceRules | None = None) -> pd.DataFrame:
    """Build the ``alliance_items`` table (see module docstring).

    B&C scores whose atopid is absent from ATOP 5.1 (their ATOP 3.0 ids that were merged
    or renumbered) cannot be attached to an alliance and are logged as excluded.
    """
    rules = rules or AllianceRules()
    atop = pd.read_csv(raw_dir / ALLIANCE_FILE)
    members = pd.read_csv(raw_dir / MEMBER_FILE)
    phases = pd.read_csv(raw_dir / PHASE_FILE)
    items = recode_items(atop)
    flags = atop[["atopid", "begyr", "endyr", *FLAGS]].astype("int64")
    out = flags.merge(items, on="atopid", how="left", validate="one_to_one")
    chosen = item_phase(phases, rules.milinst_phase, rules.end_year).rename(columns={"phase": "milinst_phase"})
    milinst = load_milinst(raw_dir, phases).rename(columns={"phase": "milinst_phase"})
    chosen = chosen.merge(milinst, on=["atopid", "milinst_phase"], how="left", validate="one_to_one")
    missing = sorted(set(out["atopid"]) ^ set(chosen["atopid"]))
    if missing:
        raise ValueError(f"{ALLIANCE_FILE} and {PHASE_FILE} list different alliances: {missing[:5]}")
    out = out.merge(chosen, on="atopid", how="left", validate="one_to_one")
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
    kent = pd.read_csv(raw_dir / KENT_SCORE_FILE).rename(columns={"V1": "atopid", "depth.score": "kent_depth"})
    unmatched = kent[~kent["atopid"].isin(out["atopid"])]
    log.exclude(str(KENT_SCORE_FILE), "scored atopid not in ATOP 5.1: score cannot be attached", unmatched,
                ["atopid", "kent_depth"])
    out = out.merge(kent[["atopid", "kent_depth"]], on="atopid", how="left", validate="one_to_one")
    return out[ALLIANCE_ITEMS_SCHEMA.column_names]


def build_us_membership(raw_dir: Path, log: ExclusionLog, start: int = START_YEAR, end: int = END_YEAR) -> pd.DataFrame:
    """Build the ``us_alliance_membership`` table from the ATOP member and alliance-phase files."""
    members = pd.read_csv(raw_dir / MEMBER_FILE)
    phases = pd.read_csv(raw_dir / PHASE_FILE)
    return us_membership(members, phases, log, start, end)


def write_alliance_tables(
    raw_dir: Path, out_dir: Path, log: ExclusionLog, rules: AllianceRules | None = None
) -> dict[str, str]:
    """Build and write both alliance tables; returns table name -> sha256 of the CSV.

    ``rules`` default to ``[alliances]`` of ``data/build_config.toml``; they are recorded under
    ``rules`` in both tables' ``.meta.json``.
    """
    raw_dir, out_dir = Path(raw_dir), Path(out_dir)
    rules = rules or load_alliance_rules()
    items = build_alliance_items(raw_dir, log, rules)
    membership = build_us_membership(raw_dir, log)
    item_files = (ALLIANCE_FILE, MEMBER_FILE, PHASE_FILE, INSTITUTION_FILE, BC_SCORE_FILE, BC_DRAWS_FILE, KENT_SCORE_FILE)
    tables = {
        "alliance_items": (items, ALLIANCE_ITEMS_SCHEMA, item_files),
        "us_alliance_membership": (membership, US_MEMBERSHIP_SCHEMA, (MEMBER_FILE, PHASE_FILE)),
    }
    digests = {}
    for name, (frame, schema, files) in tables.items():
        path = out_dir / f"{name}.csv"
        digests[name] = write_table(frame, path, schema, {str(f): sha256_file(raw_dir / f) for f in files})
        meta_path = path.with_suffix(".meta.json")
        meta = json.loads(meta_path.read_text())
        meta["rules"] = rules.as_dict()
        meta_path.write_text(json.dumps(meta, indent=2) + "\n")
    return digests
