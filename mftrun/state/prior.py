"""What a resumed run inherits from an earlier one, per step (decided by `state.resume`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from mftrun.results import StepResult


@dataclass(frozen=True, slots=True)
class Carried:
    """Succeeded earlier with the same definition: not run again; its outputs feed downstream."""

    result: StepResult
    from_run: str


@dataclass(frozen=True, slots=True)
class Attach:
    """Its remote run may still be going: poll `ref`, never start it again."""

    ref: Mapping[str, str]
    attempt: int
    from_run: str
    # as recorded: a dynamic for_each instance is matched on it (not part of the decision)
    definition_hash: str = field(default="", compare=False)


Prior = Carried | Attach
