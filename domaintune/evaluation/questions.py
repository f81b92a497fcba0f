"""The fixed questions every model answers (data/raw/eval/questions.yaml): general ones, to see
forgetting with one's own eyes, and the travel seed requests, which are also scored."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, model_validator

from domaintune.data.common import load_checked, raw_error

Text = Annotated[str, Field(min_length=2)]


class TravelQuestion(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    request: Text
    destinations: Annotated[list[Text], Field(min_length=1)]
    budget: Annotated[float, Field(gt=0)] | None = None
    currency: Annotated[str, Field(pattern=r"^[A-Z]{3}$")] | None = None
    plan: bool = False

    @model_validator(mode="after")
    def _budget(self) -> TravelQuestion:
        if (self.budget is None) != (self.currency is None):
            raise ValueError("budget and currency go together")
        return self


class Questions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    general: list[Text]
    travel: list[TravelQuestion]


def load_questions(path: str | Path, destinations: set[str]) -> Questions:
    """Load and check the file; a destination missing from the catalog is an error naming its line."""
    q = load_checked(path, Questions)
    for i, t in enumerate(q.travel):
        for j, name in enumerate(t.destinations):
            if name not in destinations:
                raise raw_error(path, ("travel", i, "destinations", j), f"{name!r} is not in the travel catalog")
    return q
