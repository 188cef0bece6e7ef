"""Every derived table by name, with its schema: the single list the loaders, the build,
the codebook and the integrity tests walk."""

from allypot.data.pipeline.alliances import ALLIANCE_ITEMS_SCHEMA, US_MEMBERSHIP_SCHEMA
from allypot.data.pipeline.casualties import CASUALTIES_SCHEMA
from allypot.data.pipeline.covariates import COVARIATES_SCHEMA
from allypot.data.pipeline.crosswalk import CROSSWALK_SCHEMA
from allypot.data.pipeline.panel import PANEL_SCHEMA
from allypot.data.pipeline.published import PUBLISHED_SCHEMA
from allypot.data.pipeline.troops import (
    ARMED_FORCES_SCHEMA,
    TROOP_OBSERVATIONS_SCHEMA,
    TROOPS_COUNTRY_YEAR_SCHEMA,
)
from allypot.data.pipeline.unvotes import IDEAL_POINTS_SCHEMA, UN_AGREEMENT_SCHEMA

SCHEMAS = {
    "panel": PANEL_SCHEMA,
    "published_panel": PUBLISHED_SCHEMA,
    "alliance_items": ALLIANCE_ITEMS_SCHEMA,
    "us_alliance_membership": US_MEMBERSHIP_SCHEMA,
    "un_agreement": UN_AGREEMENT_SCHEMA,
    "ideal_points": IDEAL_POINTS_SCHEMA,
    "troop_observations": TROOP_OBSERVATIONS_SCHEMA,
    "troops_country_year": TROOPS_COUNTRY_YEAR_SCHEMA,
    "armed_forces": ARMED_FORCES_SCHEMA,
    "casualties": CASUALTIES_SCHEMA,
    "covariates": COVARIATES_SCHEMA,
    "crosswalk": CROSSWALK_SCHEMA,
}

# Tables whose ccode column is not checked against the crosswalk when loaded: the crosswalk
# itself, and the published panel, which keeps the replication package's own codes as they
# are (0 for Republika Srpska, 665, and 817 for Vietnam) so the paper reproduces exactly.
UNCHECKED_CODES = {"crosswalk", "published_panel"}
