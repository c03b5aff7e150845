"""The programme's own vocabulary, shared by every contract (see the team's domain.md)."""

from __future__ import annotations

from enum import StrEnum


class OrganisationType(StrEnum):
    CLUSTER_ORGANISATION = "cluster_organisation"
    BUSINESS_NETWORK_ORGANISATION = "business_network_organisation"
    SCALING_UP_SUPPORT_ORGANISATION = "scaling_up_support_organisation"
    SME = "sme"


class SupportOrganisationSubtype(StrEnum):
    TECHNOLOGY_CENTRE = "technology_centre"
    RESEARCH_INSTITUTE = "research_institute"
    INNOVATION_HUB = "innovation_hub"
    DIGITAL_INNOVATION_HUB = "digital_innovation_hub"
    FAB_LAB = "fab_lab"
    CREATIVE_HUB = "creative_hub"
    RESOURCE_EFFICIENCY_SERVICE_PROVIDER = "resource_efficiency_service_provider"
    INCUBATOR = "incubator"
    ACCELERATOR = "accelerator"


class RegionCategory(StrEnum):
    """The cohesion-policy category of the region a consortium member is established in."""

    LESS_DEVELOPED = "less_developed"
    TRANSITION = "transition"
    MORE_DEVELOPED = "more_developed"


class Ecosystem(StrEnum):
    """The EU's 14 industrial ecosystems."""

    AEROSPACE_DEFENCE = "aerospace_defence"
    AGRI_FOOD = "agri_food"
    CONSTRUCTION = "construction"
    CULTURAL_CREATIVE = "cultural_creative"
    DIGITAL = "digital"
    ELECTRONICS = "electronics"
    ENERGY_INTENSIVE = "energy_intensive"
    RENEWABLE_ENERGY = "renewable_energy"
    HEALTH = "health"
    MOBILITY_TRANSPORT_AUTOMOTIVE = "mobility_transport_automotive"
    PROXIMITY_SOCIAL_ECONOMY = "proximity_social_economy"
    RETAIL = "retail"
    TEXTILE = "textile"
    TOURISM = "tourism"


class Purpose(StrEnum):
    LEARN = "learn_from_other_cluster"
    NEW_MARKETS = "explore_new_markets"
    NEW_TECHNOLOGIES = "take_up_new_technologies"
    INTERREGIONAL_COLLABORATION = "strategic_interregional_collaboration"


class TravelMode(StrEnum):
    GREEN = "green"
    STANDARD = "standard"


class Role(StrEnum):
    """Roles carried in bearer tokens."""

    VISITOR = "visitor"
    HOST = "host"
    ASSESSOR = "assessor"
    GRANT_OFFICER = "grant_officer"
    PROGRAMME_MANAGER = "programme_manager"


# What a report may name as outcomes (the programme's impact indicators count these; any other
# outcome is the visitor's own words).
OUTCOME_KINDS = ("new_collaboration", "follow_up_project", "technology_taken_up", "market_opportunity")
LANGUAGES = ("en", "fr", "de", "es", "it", "pt", "nl", "pl", "ro", "el", "bg", "hr", "cs", "sk", "sl",
             "hu", "lt", "lv", "et", "fi", "sv", "da", "ga", "mt", "sq", "sr", "mk", "tr", "uk", "hy", "is", "bs")

# EU member states and the COSME participating countries named in the calls (ISO 3166-1 alpha-2;
# Kosovo uses the user-assigned XK). A call's eligible list is configuration; this is the default.
EU_MEMBER_STATES = ("AT", "BE", "BG", "HR", "CY", "CZ", "DK", "EE", "FI", "FR", "DE", "GR", "HU", "IE", "IT",
                    "LV", "LT", "LU", "MT", "NL", "PL", "PT", "RO", "SK", "SI", "ES", "SE")
COSME_PARTICIPATING = ("AL", "BA", "XK", "MK", "ME", "RS", "TR", "AM", "MD", "UA", "IS")
DEFAULT_ELIGIBLE_COUNTRIES = EU_MEMBER_STATES + COSME_PARTICIPATING
