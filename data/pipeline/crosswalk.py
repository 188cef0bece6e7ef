"""Country crosswalk: one row per COW state in the system 2001-2014, and a resolver.

Every source in this project names countries differently: COW and the ideal points use
COW codes, UN votes use English names and ISO-2, IISS and the NATO placemats use their
own English names, isard uses Gleditsch-Ward codes. The crosswalk ties them to the COW
``ccode`` that every derived table is keyed on, and :class:`CountryResolver` converts a
column of any of them, failing loudly (:class:`UnmappedCountryError`) rather than
silently dropping a country that it cannot place.

Where the codes come from (nothing is typed in by hand except the alias file):

- ``ccode``, ``stateabb``, ``name``: COW state system 2016 (peacesciencer ``cow_states``),
  every membership spell overlapping 2001-2014.
- ``gwcode``: isard ``cw_gw_panel``, the GW code of the state's latest COW year in the
  window (so Yugoslavia/Serbia, COW 345, carries GW 340; GW 345 is an alias).
- ``iso3``: Bailey-Strezhnev-Voeten ideal points (``ccode`` + ``iso3c``), sessions 56-69.
- ``iso2``: UN votes (``country``, ``country_code``) sessions 56-69, joined through the
  name resolver; read with ``keep_default_na=False`` so Namibia's "NA" stays a code.

Aliases: the hand-curated ``data/country_aliases.csv`` (alias, ccode, kind, note) holds
the names and codes a source uses that the tables above do not give (for example "UK",
"FYR Macedonia", "Czech", "TWN"). It is a code mapping, not data. The resolver reads it
directly (validated against :data:`ALIASES_SCHEMA`); no resolved copy is written, so
there is one place to edit.
"""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path

import pandas as pd
from allypot.data.schema import (
    Column,
    ExclusionLog,
    TableSchema,
    read_table,
    sha256_file,
    write_table,
)

from allypot.paths import DATA_DIR, DEFAULT_RAW_DIR, TABLES_DIR

START_YEAR, END_YEAR = 2001, 2014
# UN General Assembly session s meets in year s + 1945
UN_SESSIONS = (START_YEAR - 1945, END_YEAR - 1945)

COW_STATES = Path("cow/svmiller__peacesciencer/cow_states.csv")
GW_PANEL = Path("cow/svmiller__isard/cw_gw_panel.csv")
IDEAL_POINTS = Path("idealpoints/tongyu03__DSE3101-Predictive-Modelling-of-Global-Trade-Flows/IdealpointestimatesAll_Jun2024.csv")
UN_VOTES = Path("unvotes/cran__unvotes/un_votes.csv")
UN_ROLL_CALLS = Path("unvotes/cran__unvotes/un_roll_calls.csv")
PLACEMATS = Path("afghanistan/transcribed_troops.csv")

ALIASES_PATH = DATA_DIR / "country_aliases.csv"
KINDS = ("name", "iso2", "iso3", "gwcode")

CROSSWALK_SCHEMA = TableSchema(
    name="crosswalk",
    description=(
        "One row per COW state in the system at any time 2001-2014, with its codes in the other "
        "systems the raw sources use. Empty iso2/iso3 = the state has no code in that source "
        "(Kosovo, Taiwan: not UN members)."
    ),
    columns=(
        Column("ccode", "int", "Correlates of War state code", source=str(COW_STATES), nullable=False, min=1, max=999),
        Column("stateabb", "str", "COW state abbreviation", source=str(COW_STATES), nullable=False),
        Column("name", "str", "COW state name (statenme)", source=str(COW_STATES), nullable=False),
        Column("iso2", "str", "ISO 3166-1 alpha-2 code as used by UN votes (Namibia is the text 'NA')", source=str(UN_VOTES)),
        Column("iso3", "str", "ISO 3166-1 alpha-3 code as used by the ideal points (iso3c)", source=str(IDEAL_POINTS)),
        Column("gwcode", "int", "Gleditsch-Ward code in the state's latest COW year within 2001-2014", source=str(GW_PANEL), min=1, max=999),
    ),
    key=("ccode",),
)

ALIASES_SCHEMA = TableSchema(
    name="country_aliases",
    description="Hand-curated source names/codes that map to a COW code (a code mapping, not data).",
    columns=(
        Column("alias", "str", "name or code as written in a source", nullable=False),
        Column("ccode", "int", "COW state code it stands for", nullable=False, min=1, max=999),
        Column("kind", "str", "what the alias is", nullable=False, allowed=KINDS),
        Column("note", "str", "where the alias occurs and why it maps here"),
    ),
    key=("alias", "kind"),
)


class UnmappedCountryError(ValueError):
    """Values that no crosswalk entry or alias maps to a COW code.

    The message names every unmapped value together with the file and column it came
    from, so one failed build shows all the aliases that are missing, not just the first.
    """

    def __init__(self, source: str, column: str, kind: str, values: list[str]):
        self.source, self.column, self.kind, self.values = source, column, kind, values
        shown = ", ".join(repr(v) for v in values)
        super().__init__(
            f"{source}: column {column!r} has {len(values)} {kind} value(s) with no COW code: {shown}. "
            f"Add them to {ALIASES_PATH.name} (or pass them in ignore= if they are not states)."
        )


def normalize_name(text: str) -> str:
    """Fold a country name to a matching key: case, accents, punctuation and '&' ignored.

    "Côte d’Ivoire", "Cote d'Ivoire" and "COTE D IVOIRE" all give "cote d ivoire", so
    sources that differ only in typography need no alias.
    """
    decomposed = unicodedata.normalize("NFKD", str(text))
    plain = "".join(c for c in decomposed if not unicodedata.combining(c)).lower().replace("&", " and ")
    return " ".join(re.sub(r"[^a-z0-9]+", " ", plain).split())


def _normalize(value: str, kind: str) -> str:
    """Matching key for one value: names folded, codes upper-cased, gw codes as integers."""
    if kind == "name":
        return normalize_name(value)
    text = str(value).strip()
    if kind == "gwcode":
        return str(int(float(text)))
    return text.upper()


class CountryResolver:
    """Map country names or codes of any source to COW ``ccode``.

    Built from the crosswalk (its ``name``, ``iso2``, ``iso3`` and ``gwcode`` columns)
    plus the alias table. Construction fails if two entries of one kind fold to the same
    key but different codes, since a resolver that silently picked one would be wrong.
    """

    def __init__(self, lookup: dict[str, dict[str, int]]):
        self._lookup = lookup

    @classmethod
    def from_tables(cls, crosswalk: pd.DataFrame, aliases: pd.DataFrame) -> CountryResolver:
        """Index the crosswalk and aliases by kind; raise ValueError on conflicting keys."""
        entries = []
        for kind in KINDS:
            part = crosswalk[["ccode", kind]].rename(columns={kind: "alias"})
            part = part[part["alias"].notna() & (part["alias"].astype("string") != "")]
            entries.append(part.assign(kind=kind, origin="crosswalk"))
        entries.append(aliases[["alias", "ccode", "kind"]].assign(origin="aliases"))
        table = pd.concat(entries, ignore_index=True)
        lookup: dict[str, dict[str, int]] = {k: {} for k in KINDS}
        conflicts = []
        for row in table.itertuples(index=False):
            key = _normalize(row.alias, row.kind)
            code = int(row.ccode)
            if lookup[row.kind].setdefault(key, code) != code:
                conflicts.append(f"{row.kind} {row.alias!r} -> {code} and {lookup[row.kind][key]}")
        if conflicts:
            raise ValueError(f"conflicting country mappings: {'; '.join(conflicts)}")
        return cls(lookup)

    def to_ccode(
        self,
        values: pd.Series,
        kind: str,
        source: str,
        column: str,
        ignore: set[str] | frozenset[str] = frozenset(),
    ) -> pd.Series:
        """Return the COW codes of ``values`` (Int64, same index).

        Parameters
        ----------
        values : pd.Series
            Names or codes as written in the source.
        kind : {"name", "iso2", "iso3", "gwcode"}
            What ``values`` are.
        source, column : str
            File and column the values came from, for the error message.
        ignore : set of str
            Values known not to be states (e.g. "NATO", "Total"); they come back as NA
            and the caller must log the rows it drops.

        Raises
        ------
        UnmappedCountryError
            If any value (other than missing or ignored ones) has no code; lists them all.
        """
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, not {kind!r}")
        ignored = {_normalize(v, kind) for v in ignore}
        table = self._lookup[kind]
        present = values.notna() & (values.astype("string").str.strip() != "")
        keys = values[present].map(lambda v: _normalize(v, kind))
        skip = keys.isin(ignored)
        codes = keys[~skip].map(table)
        unmapped = sorted(set(values[present][~skip][codes.isna()].astype(str)))
        if unmapped:
            raise UnmappedCountryError(source, column, kind, unmapped)
        out = pd.Series(pd.NA, index=values.index, dtype="Int64")
        out[codes.index] = codes.astype("Int64")
        return out


def read_aliases(path: Path = ALIASES_PATH) -> pd.DataFrame:
    """Read and validate the hand-curated alias table (names kept verbatim as text)."""
    return read_table(path, ALIASES_SCHEMA)


def load_resolver(tables_dir: Path = TABLES_DIR, aliases_path: Path = ALIASES_PATH) -> CountryResolver:
    """Resolver from the committed ``crosswalk.csv`` and ``data/country_aliases.csv``."""
    crosswalk = read_table(Path(tables_dir) / "crosswalk.csv", CROSSWALK_SCHEMA)
    return CountryResolver.from_tables(crosswalk, read_aliases(aliases_path))


def un_voters(raw_dir: Path) -> pd.DataFrame:
    """Distinct (country, country_code) pairs voting in UN sessions 56-69 (2001-2014).

    ``keep_default_na=False`` keeps Namibia's ISO-2 "NA" as text.
    """
    votes = pd.read_csv(raw_dir / UN_VOTES, dtype=str, keep_default_na=False, usecols=["rcid", "country", "country_code"])
    calls = pd.read_csv(raw_dir / UN_ROLL_CALLS, dtype=str, keep_default_na=False, usecols=["rcid", "session"])
    votes = votes.merge(calls, on="rcid", how="inner", validate="many_to_one")
    session = votes["session"].astype(int)
    window = votes[session.between(*UN_SESSIONS)]
    return window[["country", "country_code"]].drop_duplicates().sort_values(["country", "country_code"]).reset_index(drop=True)


def build_crosswalk(raw_dir: Path, log: ExclusionLog, aliases: pd.DataFrame | None = None) -> pd.DataFrame:
    """Build the crosswalk frame (validated against :data:`CROSSWALK_SCHEMA`).

    Fails with :class:`UnmappedCountryError` if any NATO placemat nation or UN voter of
    2001-2014 cannot be mapped, and with ValueError if one COW state gets two ISO codes
    from its source or one ISO code lands on two states.
    """
    raw_dir = Path(raw_dir)
    aliases = read_aliases() if aliases is None else aliases

    states = pd.read_csv(raw_dir / COW_STATES)
    in_window = (states["styear"] <= END_YEAR) & (states["endyear"] >= START_YEAR)
    log.exclude(str(COW_STATES), "COW membership spell outside 2001-2014", states[~in_window], ["ccode", "statenme"])
    states = states[in_window]
    if states["ccode"].duplicated().any():
        raise ValueError(f"{COW_STATES}: several membership spells in 2001-2014 for {sorted(states.loc[states['ccode'].duplicated(), 'ccode'])}")
    cw = states[["ccode", "stateabb", "statenme"]].rename(columns={"statenme": "name"})

    gw = pd.read_csv(raw_dir / GW_PANEL)
    gw = gw[gw["year"].between(START_YEAR, END_YEAR) & gw["ccode"].isin(cw["ccode"]) & gw["gwcode"].notna()]
    latest = gw.sort_values(["ccode", "year"]).groupby("ccode", as_index=False).last()[["ccode", "gwcode"]]
    cw = cw.merge(latest, on="ccode", how="left", validate="one_to_one")

    ideal = pd.read_csv(raw_dir / IDEAL_POINTS, dtype=str, keep_default_na=False, usecols=["ccode", "session", "iso3c"])
    ideal = ideal[ideal["session"].astype(int).between(*UN_SESSIONS) & (ideal["iso3c"] != "")]
    iso3 = ideal.assign(ccode=ideal["ccode"].astype(int))[["ccode", "iso3c"]].drop_duplicates()
    _one_to_one(iso3, "ccode", "iso3c", IDEAL_POINTS)
    cw = cw.merge(iso3.rename(columns={"iso3c": "iso3"}), on="ccode", how="left", validate="one_to_one")

    # the name resolver (COW names + aliases) places the UN voters; their ISO-2 then joins
    by_name = CountryResolver.from_tables(cw.assign(iso2=pd.NA, iso3=pd.NA, gwcode=pd.NA), aliases)
    voters = un_voters(raw_dir)
    voters["ccode"] = by_name.to_ccode(voters["country"], "name", str(UN_VOTES), "country")
    iso2 = voters[["ccode", "country_code"]].drop_duplicates()
    _one_to_one(iso2, "ccode", "country_code", UN_VOTES)
    unknown = sorted(set(iso2["ccode"]) - set(cw["ccode"]))
    if unknown:
        raise ValueError(f"{UN_VOTES}: UN voters 2001-2014 map to COW codes not in the system: {unknown}")
    cw = cw.merge(iso2.rename(columns={"country_code": "iso2"}), on="ccode", how="left", validate="one_to_one")

    resolver = CountryResolver.from_tables(cw, aliases)
    placemats = pd.read_csv(raw_dir / PLACEMATS, dtype=str, keep_default_na=False, usecols=["country"])
    resolver.to_ccode(placemats["country"], "name", str(PLACEMATS), "country")
    resolver.to_ccode(voters["country_code"], "iso2", str(UN_VOTES), "country_code")
    return cw[CROSSWALK_SCHEMA.column_names].sort_values("ccode").reset_index(drop=True)


def _one_to_one(pairs: pd.DataFrame, left: str, right: str, source: Path) -> None:
    """Raise if a code pair table is not one-to-one (a state with two codes or vice versa)."""
    for a, b in ((left, right), (right, left)):
        counts = pairs.groupby(a)[b].nunique()
        if (counts > 1).any():
            bad = pairs[pairs[a].isin(counts.index[counts > 1])].sort_values([a, b])
            raise ValueError(f"{source}: {a} with several {b}: {bad.to_dict('records')}")


def crosswalk_sources(raw_dir: Path) -> dict[str, str]:
    """sha256 of every raw file the crosswalk reads, keyed by path relative to the raw dir."""
    files = (COW_STATES, GW_PANEL, IDEAL_POINTS, UN_VOTES, UN_ROLL_CALLS, PLACEMATS)
    return {str(f): sha256_file(Path(raw_dir) / f) for f in files}


def write_crosswalk(raw_dir: Path = DEFAULT_RAW_DIR, out_dir: Path = TABLES_DIR, log: ExclusionLog | None = None) -> Path:
    """Build and write ``crosswalk.csv`` (+ ``.meta.json``) into ``out_dir``; return its path."""
    log = ExclusionLog() if log is None else log
    path = Path(out_dir) / "crosswalk.csv"
    sources = crosswalk_sources(raw_dir) | {"data/country_aliases.csv": sha256_file(ALIASES_PATH)}
    write_table(build_crosswalk(Path(raw_dir), log), path, CROSSWALK_SCHEMA, sources=sources)
    return path


if __name__ == "__main__":
    print(write_crosswalk())
