"""The ground every scenario section stands on: strict, frozen models, time windows, and how a section's
validator names the key it found a problem in."""

from __future__ import annotations

import re
from typing import Annotated, Self

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

MAX_DURATION_S = 30 * 86_400


def problem_at(path: str, problem: str) -> PydanticCustomError:
    """A problem a model's validator finds in one of its keys, `path` (dotted, relative to the model, e.g.
    'calls_profile.3'): the loader names that key, and its line, rather than the whole section."""
    return PydanticCustomError("problem_at", "{at}: {problem}", {"at": path, "problem": problem})


def plain(value: float) -> str:
    """A number for a message: whole numbers without a decimal point (5, not 5.0), others as written."""
    return str(int(value)) if value.is_integer() else repr(value)


class Section(BaseModel):
    """A scenario section: strict, frozen, no unknown key."""

    # strict: numbers must be numbers (an int is taken as a float; a whole-number field takes a float with
    # no fractional part, see WholeNumber), booleans true/false and strings strings; nothing is coerced
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False, strict=True)


class Window(Section):
    """Something active between `start_s` (inclusive) and `end_s` (exclusive)."""

    start_s: float = Field(ge=0, le=MAX_DURATION_S, description="When it starts, seconds from the run's start (s).")
    end_s: float = Field(gt=0, le=MAX_DURATION_S, description="When it ends, seconds from the run's start (s).")

    @model_validator(mode="after")
    def _end_after_start(self) -> Self:
        if self.end_s <= self.start_s:
            raise problem_at("end_s", f"{plain(self.end_s)} must be greater than start_s ({plain(self.start_s)})")
        return self


_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


def _check_name(name: str) -> str:
    if not _NAME.fullmatch(name):
        raise ValueError(
            f"{name!r} is not a name for a host, link, node or pool: 1 to 64 letters, digits, '_', '.' or '-', "
            "starting with a letter or digit (it names columns and log lines)"
        )
    return name


PartName = Annotated[str, AfterValidator(_check_name)]
"""The name of a host, a link, a cluster node or a device pool: it heads timeline columns and stamps log lines."""
