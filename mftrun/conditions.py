"""Whether a step runs, given how the steps it depends on concluded.

Follows GitHub Actions: `success` needs every direct need to have *concluded*
success (a continue_on_error failure concludes success); `failure` looks at
every ancestor, so a failure branch still fires when the failing step is
several levels up and the steps between were skipped; a skipped need makes
`success` false, so skips flow downstream unless a condition says otherwise.
"""

from __future__ import annotations

from typing import Any
from collections.abc import Callable, Iterable, Mapping

from mftrun.model import Condition
from mftrun.results import Status, StepResult

FAILED_CONCLUSIONS = frozenset({Status.FAILED, Status.ERROR, Status.TIMED_OUT})


def should_run(
    condition: Condition,
    needs: Iterable[StepResult],
    ancestors: Iterable[StepResult],
    evaluate: Callable[[str], Any],
) -> tuple[bool, str]:
    """Return (run?, reason for the console when not)."""
    needs = list(needs)
    if condition.kind == "always":
        return True, ""
    if condition.kind == "failure":
        failed = [s.id for s in ancestors if s.conclusion in FAILED_CONCLUSIONS]
        return (True, "") if failed else (False, "run_if: failure and no upstream step failed")
    if condition.kind == "expression":
        value = evaluate(condition.expression or "")
        return (True, "") if value else (False, f"run_if {condition.expression!r} is false")
    not_ok = [s.id for s in needs if s.conclusion != Status.SUCCESS]
    if not_ok:
        return False, f"needs did not succeed: {', '.join(not_ok)}"
    return True, ""


def step_view(result: StepResult) -> Mapping[str, Any]:
    """What templates see as `steps.<id>`."""
    return {
        "status": result.outcome.value,
        "outcome": result.outcome.value,
        "conclusion": result.conclusion.value,
        "outputs": result.outputs,
        "error": result.error,
    }
