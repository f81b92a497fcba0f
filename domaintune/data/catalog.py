"""The hand-written travel catalog (destinations and traveler types), loaded and checked.

The schema is the contract between the reviewed data files and the generators: a missing
field, a month 13 or a luxury tier cheaper than the budget one stops the build stage with
``file:line`` instead of producing a plausible-looking but wrong answer.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from domaintune.data.common import load_checked, raw_error

TIERS = ("budget", "mid", "luxury")
Month = Annotated[int, Field(ge=1, le=12)]
Text = Annotated[str, Field(min_length=2)]


class Schema(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Place(Schema):
    name: Text
    city: Text
    note: Text


class StayArea(Schema):
    name: Text
    city: Text
    good_for: Text


class DailyCost(Schema):
    budget: Annotated[float, Field(gt=0)]
    mid: Annotated[float, Field(gt=0)]
    luxury: Annotated[float, Field(gt=0)]

    @model_validator(mode="after")
    def _ordered(self) -> DailyCost:
        if not self.budget < self.mid < self.luxury:
            raise ValueError(f"tiers must rise budget < mid < luxury, got {self.budget}, {self.mid}, {self.luxury}")
        return self


class Destination(Schema):
    name: Text
    kind: Literal["country", "city", "region", "islands"]
    country: Text
    region: Text
    currency: Annotated[str, Field(pattern=r"^[A-Z]{3}$")]
    best_months: Annotated[list[Month], Field(min_length=1)]
    best_reason: Text
    worst_months: list[Month]
    worst_reason: Text
    daily_cost_usd: DailyCost
    attractions: Annotated[list[Place], Field(min_length=3)]
    stay_areas: Annotated[list[StayArea], Field(min_length=1)]
    customs: Annotated[list[Text], Field(min_length=1)]
    safety: Annotated[list[Text], Field(min_length=1)]
    getting_there: Text
    local_transport: Text
    tags: Annotated[list[Text], Field(min_length=1)]


class TravelerType(Schema):
    id: Annotated[str, Field(pattern=r"^[a-z_]+$")]
    label: Text
    party_size: Annotated[int, Field(ge=1, le=20)]
    default_tier: Literal["budget", "mid", "luxury"]
    phrasings: Annotated[list[Text], Field(min_length=1)]
    tips: Annotated[list[Text], Field(min_length=2)]
    preferred_tags: Annotated[list[Text], Field(min_length=1)]
    pace: Literal["relaxed", "moderate", "packed"]


class DestinationFile(Schema):
    destinations: Annotated[list[Destination], Field(min_length=2)]


class TravelerFile(Schema):
    travelers: Annotated[list[TravelerType], Field(min_length=1)]


def load_catalog(catalog: str | Path, travelers: str | Path) -> tuple[list[Destination], list[TravelerType]]:
    dests = load_checked(catalog, DestinationFile).destinations
    types = load_checked(travelers, TravelerFile).travelers
    for what, path, names in (("destinations", catalog, [d.name for d in dests]),
                              ("travelers", travelers, [t.id for t in types])):
        seen: set[str] = set()
        for i, name in enumerate(names):
            if name in seen:
                raise raw_error(path, (what, i), f"duplicate entry {name!r}")
            seen.add(name)
    return dests, types
