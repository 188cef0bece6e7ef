"""The data build: raw public files -> the derived tables committed under data/tables/.

``build_all`` runs the steps in dependency order (the crosswalk first: every other step maps
country names and codes through it) and writes ``exclusions.csv``, the count and reason of
every raw row left out, which the data report shows.
"""

from __future__ import annotations

from pathlib import Path

from allypot.data.schema import ExclusionLog

from allypot.paths import DEFAULT_RAW_DIR, TABLES_DIR


def build_all(raw_dir: Path = DEFAULT_RAW_DIR, out_dir: Path = TABLES_DIR, progress=print) -> ExclusionLog:
    from allypot.data.build import (
        alliances,
        casualties,
        covariates,
        crosswalk,
        panel,
        published,
        troops,
        unvotes,
    )

    raw_dir, out_dir = Path(raw_dir), Path(out_dir)
    if not raw_dir.is_dir():
        raise FileNotFoundError(
            f"raw data folder {raw_dir} not found: pass --raw DIR (the folder holding afghanistan/, atop/, cow/ ...)"
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    log = ExclusionLog()
    steps = [
        ("crosswalk", lambda: crosswalk.write_crosswalk(raw_dir, out_dir, log)),
        ("troops and armed forces", lambda: troops.write_troop_tables(
            raw_dir, out_dir, troops.load_rules(), crosswalk.load_resolver(out_dir), log)),
        ("casualties", lambda: casualties.write_casualties(raw_dir, out_dir, crosswalk.load_resolver(out_dir), log)),
        ("alliances", lambda: alliances.write_alliance_tables(raw_dir, out_dir, log)),
        ("UN votes and ideal points", lambda: unvotes.write_unvote_tables(raw_dir, out_dir, log, crosswalk.load_resolver(out_dir))),
        ("covariates", lambda: covariates.write_covariate_tables(raw_dir, out_dir, log)),
        ("published panel", lambda: published.write_published_panel(raw_dir, out_dir, log)),
        ("rebuilt panel", lambda: panel.write_panel(out_dir, out_dir, log)),
    ]
    for i, (name, step) in enumerate(steps, 1):
        progress(f"[{i}/{len(steps)}] {name}")
        step()
    frame = log.to_frame()
    frame.to_csv(out_dir / "exclusions.csv", index=False, lineterminator="\n")
    return log
