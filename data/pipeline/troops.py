"""Troops in Afghanistan (numerator) and active armed forces (denominator), 2001-2014.

Sources (raw, read-only; see ``afghanistan/SOURCES.md``):

- NATO/ISAF placemats as transcribed with their printed dates, ``transcribed_troops.csv``
  (ISAF only, 2007-2014). CPASS's ``nato_placemats.csv`` is *not* used: it has no dates
  and carries the transcription errors listed in SOURCES.md.
- IISS Military Balance deployment tables, ``iiss_deployment.rds.csv`` (editions 2002-2014,
  ISAF, OEF, UNAMA, EUPOL). ``count_total`` is text ("1,550", "1550", "some"); the published
  Gannon & Kent panel turned every comma-formatted value into 0, which this module avoids.
- IISS active forces, ``iiss_troops.rds.csv`` (editions 1997-2017), with COW NMC ``milper``
  (thousands) as a flagged fallback.
- MDI ``MDVA_Deployments_LatLon.xlsx`` is not read: its 2014 ISAF values equal the placemat
  of 3 Sep 2014, which ``transcribed_troops.csv`` already holds, and it omits some senders.

Every rule that changes a number is a field of :class:`TroopRules`, read from
``[troops]`` / ``[armed_forces]`` in ``data/build_config.toml`` where each is explained.
"""

from __future__ import annotations

import json
import re
import tomllib
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from allypot.data.pipeline.crosswalk import END_YEAR, START_YEAR, CountryResolver
from allypot.data.schema import (
    Column,
    ExclusionLog,
    TableSchema,
    sha256_file,
    write_table,
)

from allypot.paths import BUILD_CONFIG as CONFIG_PATH

PLACEMATS = Path("afghanistan/transcribed_troops.csv")
IISS_DEPLOYMENT = Path("afghanistan/CenterForPeaceAndSecurityStudies__ISAF/converted/iiss_deployment.rds.csv")
IISS_TROOPS = Path("afghanistan/CenterForPeaceAndSecurityStudies__ISAF/converted/iiss_troops.rds.csv")
COW_SYSTEM = Path("cow/jandresgannon__DoDL/system2016.csv")
COW_NMC = Path("cow/svmiller__peacesciencer/cow_nmc.csv")

MISSIONS = ("ISAF", "OEF", "UNAMA", "EUPOL", "other")
PLACEMAT_RULES = ("nearest", "mean", "max")
COMBINE_RULES = ("placemat_first", "iiss_first", "placemat_only", "iiss_only")
FALLBACKS = ("cow_milper", "none")
# IISS active-forces rows that are armed forces of entities, not COW states
IISS_NON_STATES = frozenset({
    "Federation of Bosnia and Herzegovina",
    "Republika Sepska Armed Forces",
    "Turkish Republic of Northern Cyprus",
    "Palestinian Territories",
    "Palestinian Autonomous Areas of Gaza and Jericho",
})
# "1550" or "1,550" (thousands separators in groups of three); anything else is not a count
_COUNT = re.compile(r"^(\d+|\d{1,3}(,\d{3})+)$")


@dataclass(frozen=True)
class TroopRules:
    """The switchable rules of the troop and armed-forces build (see build_config.toml)."""

    placemat_rule: str = "nearest"
    reference_date: str = "12-01"
    iiss_edition_offset: int = -1
    combine: str = "placemat_first"
    add_iiss_oef: bool = True
    zero_yields_to_positive: bool = True
    counted_missions: tuple[str, ...] = ("ISAF", "OEF")
    armed_forces_edition_offset: int = -1
    armed_forces_fallback: str = "cow_milper"
    start_year: int = START_YEAR
    end_year: int = END_YEAR

    def __post_init__(self):
        checks = (
            ("placemat_rule", self.placemat_rule, PLACEMAT_RULES),
            ("combine", self.combine, COMBINE_RULES),
            ("armed_forces.fallback", self.armed_forces_fallback, FALLBACKS),
        )
        for name, value, allowed in checks:
            if value not in allowed:
                raise ValueError(f"{name} = {value!r}; allowed {allowed}")
        unknown = set(self.counted_missions) - set(MISSIONS)
        if unknown:
            raise ValueError(f"counted_missions has unknown mission(s) {sorted(unknown)}; allowed {MISSIONS}")
        if not re.fullmatch(r"\d\d-\d\d", self.reference_date):
            raise ValueError(f"reference_date must be 'MM-DD', not {self.reference_date!r}")

    @classmethod
    def from_config(cls, config: dict) -> TroopRules:
        """Rules from the parsed build_config.toml (its [years], [troops], [armed_forces])."""
        troops, forces, years = config.get("troops", {}), config.get("armed_forces", {}), config.get("years", {})
        fields = dict(troops)
        if "counted_missions" in fields:
            fields["counted_missions"] = tuple(fields["counted_missions"])
        if "iiss_edition_offset" in forces:
            fields["armed_forces_edition_offset"] = forces["iiss_edition_offset"]
        if "fallback" in forces:
            fields["armed_forces_fallback"] = forces["fallback"]
        fields["start_year"] = years.get("start", START_YEAR)
        fields["end_year"] = years.get("end", END_YEAR)
        return cls(**fields)

    def as_dict(self) -> dict:
        """Rules as plain values, for the tables' metadata."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


def load_rules(path: Path = CONFIG_PATH) -> TroopRules:
    """Read :class:`TroopRules` from ``data/build_config.toml``."""
    with open(path, "rb") as fh:
        return TroopRules.from_config(tomllib.load(fh))


def _outside_years(frame: pd.DataFrame, rules: TroopRules) -> pd.Series:
    """Rows whose data year falls outside the study years (to be logged and dropped)."""
    return ~frame["year"].between(rules.start_year, rules.end_year)


TROOP_OBSERVATIONS_SCHEMA = TableSchema(
    name="troop_observations",
    description=(
        "Every troops-in-Afghanistan figure by nation: one row per placemat snapshot (ISAF) or "
        "IISS edition and mission. Distinct IISS rows of one nation, edition and mission are summed "
        "(e.g. Czech Republic MB2008 ISAF 435 + 95); exact duplicate rows count once. Non-numeric "
        "or empty IISS counts are excluded (logged), never read as 0."
    ),
    columns=(
        Column("ccode", "int", "COW state code", nullable=False),
        Column("year", "int", "data year (placemat date year; IISS edition year + iiss_edition_offset)", nullable=False, min=START_YEAR, max=END_YEAR),
        Column("source", "str", "placemat or iiss", nullable=False, allowed=("placemat", "iiss")),
        Column("source_detail", "str", "placemat date printed (YYYY-MM-DD) or IISS edition (MB<edition year>)", nullable=False),
        Column("mission", "str", "ISAF, OEF (all Enduring Freedom rows located in Afghanistan), UNAMA, EUPOL, other (bilateral)", nullable=False, allowed=MISSIONS),
        Column("troops", "int", "personnel deployed", unit="persons", nullable=False, min=0),
    ),
    key=("ccode", "year", "source", "source_detail", "mission"),
)

TROOPS_COUNTRY_YEAR_SCHEMA = TableSchema(
    name="troops_country_year",
    description=(
        "Troops in Afghanistan per nation-year 2001-2014 under the build rules (see meta 'rules'), "
        "for nation-years where a source gives a figure. Absent nation-years are not listed "
        "(the panel decides what they mean). An empty component means the chosen source does not "
        "list that mission for the nation; troops_afghanistan sums the listed counted missions."
    ),
    columns=(
        Column("ccode", "int", "COW state code", nullable=False),
        Column("year", "int", "data year", nullable=False, min=START_YEAR, max=END_YEAR),
        Column("troops_afghanistan", "float", "ISAF + OEF (OEF only if add_iiss_oef)", unit="persons", nullable=False, min=0),
        Column("troops_isaf", "float", "ISAF troops from the source chosen by combine/placemat_rule", unit="persons", min=0),
        Column("troops_oef", "float", "IISS OEF troops in Afghanistan (shown even if add_iiss_oef is false)", unit="persons", min=0),
        Column("troops_source", "str", "where the numbers come from", nullable=False),
        Column("isaf_zero_replaced", "bool",
               "the source chosen by combine printed 0 ISAF troops and the other source a positive figure, which "
               "troops_isaf uses instead (rule zero_yields_to_positive)", nullable=False),
    ),
    key=("ccode", "year"),
)

ARMED_FORCES_SCHEMA = TableSchema(
    name="armed_forces",
    description=(
        "Active armed forces for every COW state-year 2001-2014: IISS troops_active, else COW NMC "
        "milper x 1000 (flagged; a milper of 0, i.e. under 500, is not used), else missing. 0 is "
        "a real IISS value (Iceland has no armed forces), so a share of armed forces is undefined there."
    ),
    columns=(
        Column("ccode", "int", "COW state code", nullable=False),
        Column("year", "int", "data year", nullable=False, min=START_YEAR, max=END_YEAR),
        Column("armed_forces", "int", "active military personnel", unit="persons", min=0),
        Column("armed_forces_source", "str", "iiss MB<edition>, cow_milper, or none", nullable=False),
        Column("armed_forces_fallback", "bool", "true when the figure is the COW milper fallback", nullable=False),
    ),
    key=("ccode", "year"),
)


def parse_counts(text: pd.Series) -> tuple[pd.Series, pd.Series, pd.Series]:
    """Parse IISS count text into numbers.

    Returns ``(values, empty, invalid)``: ``values`` is Int64 (NA where not a count),
    ``empty`` marks cells with no figure at all, ``invalid`` marks cells that hold text
    that is not a count (e.g. "some"). Thousands separators are accepted only in groups
    of three, so "1,550" is 1550 and "1,55" is invalid rather than 155.
    """
    clean = text.astype("string").fillna("").str.strip()
    empty = clean.isin(["", "NA"])
    ok = clean.str.fullmatch(_COUNT.pattern).fillna(False).astype(bool)
    values = pd.Series(pd.NA, index=text.index, dtype="Int64")
    values[ok] = clean[ok].str.replace(",", "", regex=False).astype("int64")
    return values, empty, ~ok & ~empty


def classify_mission(org: pd.Series, name: pd.Series) -> pd.Series:
    """Canonical mission of IISS deployment rows located in Afghanistan.

    All "OEF ..." labels count as OEF: CPASS's "OEF - HOA" label sits on rows whose
    location is Afghanistan (the IISS Afghanistan entries of Operation Enduring Freedom),
    and 2008 rows with no organisation but operation "ENDURING FREEDOM" are OEF too.
    """
    org = org.fillna("").str.strip()
    upper = org.str.upper()
    mission = pd.Series("other", index=org.index, dtype="string")
    mission[upper.str.startswith("OEF") | ((org == "") & name.fillna("").str.upper().str.contains("ENDURING FREEDOM"))] = "OEF"
    mission[upper == "ISAF"] = "ISAF"
    mission[upper == "UNAMA"] = "UNAMA"
    mission[upper.str.startswith("EUPOL")] = "EUPOL"
    return mission


def read_placemat_observations(raw_dir: Path, resolver: CountryResolver, rules: TroopRules, log: ExclusionLog) -> pd.DataFrame:
    """Placemat rows as observations (source 'placemat', mission 'ISAF')."""
    raw = pd.read_csv(Path(raw_dir) / PLACEMATS, dtype=str, keep_default_na=False)
    values, empty, invalid = parse_counts(raw["troops"])
    bad = empty | invalid
    log.exclude(str(PLACEMATS), "troops not a count", raw[bad], ["country", "date", "troops"])
    raw = raw[~bad].assign(troops=values[~bad])
    date = pd.to_datetime(raw["date"], format="%Y-%m-%d")
    obs = pd.DataFrame({
        "ccode": resolver.to_ccode(raw["country"], "name", str(PLACEMATS), "country"),
        "year": date.dt.year,
        "source": "placemat",
        "source_detail": raw["date"],
        "mission": raw["mission"].str.strip(),
        "troops": raw["troops"],
    })
    not_isaf = obs["mission"] != "ISAF"
    if not_isaf.any():
        raise ValueError(f"{PLACEMATS}: mission other than ISAF: {sorted(obs.loc[not_isaf, 'mission'].unique())}")
    outside = _outside_years(obs, rules)
    log.exclude(str(PLACEMATS), "placemat date outside the study years", obs[outside], ["ccode", "source_detail"])
    return obs[~outside]


def read_iiss_observations(raw_dir: Path, resolver: CountryResolver, rules: TroopRules, log: ExclusionLog) -> pd.DataFrame:
    """IISS Afghanistan deployment rows as observations, summed per nation-edition-mission.

    Afghanistan rows are ``location`` "Afghanistan" or "Afg", plus the MB2008 UNAMA rows
    whose location was left empty (UNAMA is the UN mission in Afghanistan). UNAMA rows
    without ``count_total`` take ``count_un_milobservers`` (UNAMA's military advisers).
    Exact duplicate rows (every column equal) are kept once and logged; distinct rows of
    one nation, edition and mission are summed (separate contingents).
    """
    src = str(IISS_DEPLOYMENT)
    raw = pd.read_csv(Path(raw_dir) / IISS_DEPLOYMENT, dtype=str, keep_default_na=False)
    afghan = raw["location"].isin(["Afghanistan", "Afg"]) | ((raw["location"] == "") & (raw["operational_org"] == "UNAMA"))
    log.exclude(src, "deployment outside Afghanistan", raw[~afghan], ["location", "operational_org"])
    rows = raw[afghan]
    dup = rows.duplicated(keep="first")
    log.exclude(src, "exact duplicate row (kept once)", rows[dup], ["year", "country", "operational_org", "count_total"])
    rows = rows[~dup].copy()
    rows["mission"] = classify_mission(rows["operational_org"], rows["operational_name"])
    count = rows["count_total"].where(
        (rows["count_total"].str.strip() != "") | (rows["mission"] != "UNAMA"), rows["count_un_milobservers"]
    )
    values, empty, invalid = parse_counts(count)
    log.exclude(src, "count_total empty (no figure; not read as 0)", rows[empty], ["year", "country", "mission"])
    log.exclude(src, "count_total not a number (e.g. 'some'; not read as 0)", rows[invalid], ["year", "country", "mission", "count_total"])
    keep = ~empty & ~invalid
    rows = rows[keep].assign(troops=values[keep])
    edition = rows["year"].astype(int)
    obs = pd.DataFrame({
        "ccode": resolver.to_ccode(rows["country"], "name", src, "country"),
        "year": edition + rules.iiss_edition_offset,
        "source": "iiss",
        "source_detail": "MB" + edition.astype(str),
        "mission": rows["mission"],
        "troops": rows["troops"],
    })
    outside = _outside_years(obs, rules)
    log.exclude(src, "edition + offset outside the study years", obs[outside], ["ccode", "source_detail"])
    obs = obs[~outside]
    keys = ["ccode", "year", "source", "source_detail", "mission"]
    return obs.groupby(keys, as_index=False, sort=True)["troops"].sum()


def build_troop_observations(raw_dir: Path, resolver: CountryResolver, rules: TroopRules, log: ExclusionLog) -> pd.DataFrame:
    """Long table of every placemat and IISS figure (:data:`TROOP_OBSERVATIONS_SCHEMA`)."""
    obs = pd.concat(
        [read_placemat_observations(raw_dir, resolver, rules, log), read_iiss_observations(raw_dir, resolver, rules, log)],
        ignore_index=True,
    )
    obs["ccode"] = obs["ccode"].astype("int64")
    obs["year"] = obs["year"].astype("int64")
    obs["troops"] = obs["troops"].astype("int64")
    return obs[TROOP_OBSERVATIONS_SCHEMA.column_names].sort_values(list(TROOP_OBSERVATIONS_SCHEMA.key)).reset_index(drop=True)


def placemat_by_year(placemat: pd.DataFrame, rules: TroopRules, log: ExclusionLog) -> pd.DataFrame:
    """One ISAF figure per nation-year from dated placemat rows, by ``rules.placemat_rule``.

    ``placemat`` has ccode, year, source_detail (date) and troops. Returns ccode, year,
    troops, detail. "nearest" picks, per year, the snapshot nearest ``reference_date``
    (ties: the earlier); nations not on that snapshot get no figure. "mean" averages the
    snapshots that list the nation. "max" takes the largest listed figure.
    """
    pm = placemat.assign(date=pd.to_datetime(placemat["source_detail"], format="%Y-%m-%d"))
    if rules.placemat_rule == "nearest":
        snapshots = pm[["year", "date"]].drop_duplicates()
        target = pd.to_datetime(snapshots["year"].astype(str) + "-" + rules.reference_date, format="%Y-%m-%d")
        snapshots = snapshots.assign(distance=(snapshots["date"] - target).abs())
        chosen = snapshots.sort_values(["year", "distance", "date"]).groupby("year").head(1)
        picked = pm.merge(chosen[["year", "date"]], on=["year", "date"], how="inner")
        unused = pm.merge(chosen[["year", "date"]], on=["year", "date"], how="left", indicator=True)
        unused = unused[unused["_merge"] == "left_only"]
        log.exclude("troop_observations (placemat)", f"not the snapshot nearest {rules.reference_date} of its year (placemat_rule=nearest)", unused, ["year", "source_detail"])
        return picked.assign(troops=picked["troops"].astype(float), detail="placemat " + picked["source_detail"])[["ccode", "year", "troops", "detail"]]
    grouped = pm.groupby(["ccode", "year"], as_index=False)
    if rules.placemat_rule == "mean":
        out = grouped.agg(troops=("troops", "mean"), n=("troops", "size"))
        out["detail"] = "placemat mean of " + out["n"].astype(str) + " snapshots"
        return out[["ccode", "year", "troops", "detail"]]
    top = pm.sort_values(["ccode", "year", "troops", "date"], ascending=[True, True, False, True]).groupby(["ccode", "year"]).head(1)
    return top.assign(troops=top["troops"].astype(float), detail="placemat max " + top["source_detail"])[["ccode", "year", "troops", "detail"]]


def zero_replaced(table: pd.DataFrame, use_pm: pd.Series, use_iiss: pd.Series, rules: TroopRules) -> pd.Series:
    """Nation-years whose chosen ISAF figure is a printed 0 while the other source gives a positive figure.

    ``table`` has ``pm_isaf`` and ``iiss_isaf`` (NaN where a source has no figure); ``use_pm`` /
    ``use_iiss`` mark the source ``rules.combine`` chose. Under ``zero_yields_to_positive`` such a
    0 is not read as "no troops": the positive figure replaces it (build_config.toml gives the
    reason). The single-source rules (``placemat_only``, ``iiss_only``) never look at the other
    source, so nothing is replaced under them.
    """
    if not rules.zero_yields_to_positive or rules.combine not in ("placemat_first", "iiss_first"):
        return pd.Series(False, index=table.index)
    chosen = table["pm_isaf"].where(use_pm, table["iiss_isaf"].where(use_iiss))
    other = table["iiss_isaf"].where(use_pm, table["pm_isaf"].where(use_iiss))
    # a missing figure is "not 0" and "not positive": with nullable counts (read_table's Int64) the
    # comparisons give NA, which would blank the chosen figure downstream, so NA is made False here
    return (chosen.eq(0).fillna(False) & other.gt(0).fillna(False)).astype(bool)


def build_troops_country_year(obs: pd.DataFrame, rules: TroopRules, log: ExclusionLog) -> pd.DataFrame:
    """Combine placemat and IISS observations into one row per nation-year.

    ISAF comes from the placemat or IISS figure chosen by ``rules.combine``, except that a
    printed 0 yields to a positive figure of the other source (:func:`zero_replaced`); OEF always
    from IISS (the only OEF source). troops_afghanistan sums the counted missions that
    have a figure; UNAMA, EUPOL and "other" are never counted (see build_config.toml).
    """
    keys = ["ccode", "year"]
    pm = placemat_by_year(obs[(obs["source"] == "placemat") & (obs["mission"] == "ISAF")], rules, log)
    pm = pm.rename(columns={"troops": "pm_isaf", "detail": "pm_detail"})
    iiss = obs[obs["source"] == "iiss"]
    wide = iiss.pivot_table(index=keys + ["source_detail"], columns="mission", values="troops", aggfunc="sum").reset_index()
    for mission in MISSIONS:
        if mission not in wide:
            wide[mission] = np.nan
    wide = wide.rename(columns={"source_detail": "edition", "ISAF": "iiss_isaf", "OEF": "iiss_oef"})
    if wide.duplicated(keys).any():
        raise ValueError("two IISS editions map to one data year; check iiss_edition_offset")
    table = pm.merge(wide[keys + ["edition", "iiss_isaf", "iiss_oef"]], on=keys, how="outer")

    has_pm, has_iiss = table["pm_isaf"].notna(), table["iiss_isaf"].notna()
    use_pm = {
        "placemat_first": has_pm,
        "iiss_first": has_pm & ~has_iiss,
        "placemat_only": has_pm,
        "iiss_only": pd.Series(False, index=table.index),
    }[rules.combine]
    use_iiss = has_iiss & ~use_pm & (rules.combine != "placemat_only")
    replaced = zero_replaced(table, use_pm, use_iiss, rules)
    from_pm = (use_pm & ~replaced) | (use_iiss & replaced)
    from_iiss = (use_iiss & ~replaced) | (use_pm & replaced)
    zero_reason = "printed 0 ISAF not used: the other source gives a positive figure (zero_yields_to_positive)"
    log.exclude("troop_observations (placemat)", zero_reason, table[replaced & use_pm], keys + ["pm_detail"])
    log.exclude("troop_observations (iiss ISAF)", zero_reason, table[replaced & use_iiss], keys + ["edition"])
    log.exclude("troop_observations (iiss ISAF)", f"IISS ISAF figure not used (combine={rules.combine})", table[has_iiss & ~use_iiss & ~from_iiss], keys + ["edition"])
    log.exclude("troop_observations (placemat)", f"placemat figure not used (combine={rules.combine})", table[has_pm & ~use_pm & ~from_pm], keys + ["pm_detail"])

    table["troops_isaf"] = table["pm_isaf"].where(from_pm, table["iiss_isaf"].where(from_iiss))
    table["isaf_zero_replaced"] = replaced
    table["troops_oef"] = table["iiss_oef"]
    counted = []
    if "ISAF" in rules.counted_missions:
        counted.append("troops_isaf")
    if "OEF" in rules.counted_missions and rules.add_iiss_oef:
        counted.append("troops_oef")
    table["troops_afghanistan"] = table[counted].sum(axis=1, min_count=1) if counted else np.nan

    isaf_part = table["pm_detail"].where(from_pm, ("iiss ISAF " + table["edition"]).where(from_iiss))
    oef_part = ("iiss OEF " + table["edition"]).where(table["troops_oef"].notna() & ("troops_oef" in counted))
    both_iiss = from_iiss & oef_part.notna()
    source = isaf_part.fillna("").str.cat(oef_part.fillna(""), sep=" + ").str.strip(" +")
    table["troops_source"] = source.where(~both_iiss, "iiss " + table["edition"])

    empty = table["troops_afghanistan"].isna()
    log.exclude("troop_observations", "nation-year with no counted figure under the rules", table[empty], keys)
    out = table[~empty]
    return out[TROOPS_COUNTRY_YEAR_SCHEMA.column_names].sort_values(keys).reset_index(drop=True)


def read_iiss_armed_forces(raw_dir: Path, resolver: CountryResolver, rules: TroopRules, log: ExclusionLog) -> pd.DataFrame:
    """IISS troops_active as ccode, year, armed_forces, edition (one row per state-year)."""
    src = str(IISS_TROOPS)
    raw = pd.read_csv(Path(raw_dir) / IISS_TROOPS, dtype=str, keep_default_na=False)
    no_year = raw["year"].str.strip() == ""
    log.exclude(src, "header/note row without edition year", raw[no_year], ["country"])
    raw = raw[~no_year]
    entity = raw["country"].isin(IISS_NON_STATES)
    log.exclude(src, "armed forces of an entity that is not a COW state", raw[entity], ["country"])
    raw = raw[~entity]
    values, empty, invalid = parse_counts(raw["troops_active"])
    edition = raw["year"].astype(int)
    frame = pd.DataFrame({
        "country": raw["country"],
        "year": edition + rules.armed_forces_edition_offset,
        "edition": "MB" + edition.astype(str),
        "armed_forces": values,
    })
    outside = _outside_years(frame, rules)
    log.exclude(src, "edition + offset outside the study years", frame[outside], ["edition"])
    log.exclude(src, "troops_active empty", frame[~outside & empty], ["country", "edition"])
    log.exclude(src, "troops_active not a number", raw[~outside & invalid], ["country", "year", "troops_active"])
    frame = frame[~outside & ~empty & ~invalid]
    frame["ccode"] = resolver.to_ccode(frame["country"], "name", src, "country")
    exact = frame.duplicated(["ccode", "year", "armed_forces"])
    log.exclude(src, "same state, edition and value twice (kept once)", frame[exact], ["country", "edition"])
    frame = frame[~exact]
    clash = frame.duplicated(["ccode", "year"], keep=False)
    if clash.any():
        raise ValueError(f"{src}: several different troops_active for one state-edition: {frame[clash].to_dict('records')}")
    return frame[["ccode", "year", "armed_forces", "edition"]]


def build_armed_forces(raw_dir: Path, resolver: CountryResolver, rules: TroopRules, log: ExclusionLog) -> pd.DataFrame:
    """Active armed forces for every COW state-year in the study years (:data:`ARMED_FORCES_SCHEMA`)."""
    system = pd.read_csv(Path(raw_dir) / COW_SYSTEM, usecols=["ccode", "year"])
    system = system[system["year"].between(rules.start_year, rules.end_year)].drop_duplicates()
    iiss = read_iiss_armed_forces(raw_dir, resolver, rules, log)
    merged = system.merge(iiss, on=["ccode", "year"], how="outer", indicator=True)
    not_state = merged["_merge"] == "right_only"
    log.exclude(str(IISS_TROOPS), "not a COW state in that data year", merged[not_state], ["ccode", "year", "edition"])
    out = merged[~not_state].drop(columns="_merge")
    out["armed_forces_source"] = ("iiss " + out["edition"]).astype("string")
    out["armed_forces_fallback"] = False
    if rules.armed_forces_fallback == "cow_milper":
        nmc = pd.read_csv(Path(raw_dir) / COW_NMC, usecols=["ccode", "year", "milper"])
        out = out.merge(nmc, on=["ccode", "year"], how="left", validate="one_to_one")
        # NMC milper is in whole thousands, so 0 means "fewer than 500", not "no forces":
        # it would make a share of armed forces infinite, so it is not used (logged)
        zero = out["armed_forces"].isna() & (out["milper"] == 0)
        log.exclude(str(COW_NMC), "milper 0 (under 500 personnel at NMC's 1,000 resolution) not used as fallback", out[zero], ["ccode", "year"])
        fill = out["armed_forces"].isna() & (out["milper"] > 0)
        out.loc[fill, "armed_forces"] = (out.loc[fill, "milper"] * 1000).round().astype("int64")
        out.loc[fill, "armed_forces_source"] = "cow_milper"
        out.loc[fill, "armed_forces_fallback"] = True
    out["armed_forces_source"] = out["armed_forces_source"].fillna("none")
    return out[ARMED_FORCES_SCHEMA.column_names].sort_values(["ccode", "year"]).reset_index(drop=True)


def _sources(raw_dir: Path, files: tuple[Path, ...]) -> dict[str, str]:
    """sha256 of the raw files a table reads, keyed by path relative to the raw dir."""
    return {str(f): sha256_file(Path(raw_dir) / f) for f in files}


def write_troop_tables(raw_dir: Path, out_dir: Path, rules: TroopRules, resolver: CountryResolver, log: ExclusionLog) -> dict[str, Path]:
    """Build and write troop_observations, troops_country_year and armed_forces; return their paths.

    The rules in force are recorded under ``rules`` in each table's ``.meta.json``.
    """
    out_dir = Path(out_dir)
    troop_files = (PLACEMATS, IISS_DEPLOYMENT)
    obs = build_troop_observations(raw_dir, resolver, rules, log)
    tables = {
        "troop_observations": (obs, TROOP_OBSERVATIONS_SCHEMA, troop_files),
        "troops_country_year": (build_troops_country_year(obs, rules, log), TROOPS_COUNTRY_YEAR_SCHEMA, troop_files),
        "armed_forces": (build_armed_forces(raw_dir, resolver, rules, log), ARMED_FORCES_SCHEMA, (IISS_TROOPS, COW_SYSTEM, COW_NMC)),
    }
    paths = {}
    for name, (frame, schema, files) in tables.items():
        path = out_dir / f"{name}.csv"
        write_table(frame, path, schema, sources=_sources(raw_dir, files))
        meta_path = path.with_suffix(".meta.json")
        meta = json.loads(meta_path.read_text())
        meta["rules"] = rules.as_dict()
        meta_path.write_text(json.dumps(meta, indent=2) + "\n")
        paths[name] = path
    return paths


if __name__ == "__main__":
    from allypot.data.pipeline.crosswalk import load_resolver

    from allypot.paths import DEFAULT_RAW_DIR, TABLES_DIR

    for written in write_troop_tables(DEFAULT_RAW_DIR, TABLES_DIR, load_rules(), load_resolver(), ExclusionLog()).values():
        print(written)
