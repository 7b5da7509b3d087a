"""The executor's side of for_each: group views, per-group parallel limits, dynamic fan-out.

Why a module of its own: the executor stays the scheduler of steps; everything that knows
about groups is here, called from a few hook lines in mftrun/executor.py.

- A group written in the file was expanded at build time: its instances are plain steps
  of the plan. Here it only gets its `steps.<group>` view (mftrun.expand.group_view) and
  its `max_parallel`.
- A group whose list is a template (`for_each: "{{ steps.list.outputs.tasks }}"`) is one
  step of the plan (shown "x N, decided at run time"). When it becomes ready and its
  conditions hold, `fan_out` evaluates the list and adds one step per item, each started
  (or skipped by its own run_if) like any other; the group step itself starts nothing and
  ends when its last instance ends, with the group's verdict: a failure of any instance is
  a failure of the group, zero instances a success that says so.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mftrun import expand, templating
from mftrun.conditions import FAILED_CONCLUSIONS, step_view
from mftrun.errors import EXIT_INVALID, TemplateError
from mftrun.model import Condition, Step, step_hash
from mftrun.results import Status, StepResult

if TYPE_CHECKING:
    from mftrun.executor import Executor


def is_dynamic(step: Step) -> bool:
    """A group step whose items are only known at run time (it starts nothing itself)."""
    return step.group is None and step.fan_out is not None and step.fan_out.expression is not None


def group_condition(step: Step) -> Condition:
    """The condition checked when a step becomes ready. A dynamic group's run_if expression
    may read `item`: it is checked per instance, so the group itself always expands."""
    if is_dynamic(step) and step.run_if.kind == "expression":
        return Condition("always")
    return step.run_if


def evaluator(executor: Executor, step: Step) -> Callable[[str], Any]:
    """Evaluates run_if expressions of `step`, with its `item`."""
    names = item_names(step)
    return lambda expression: templating.evaluate(expression, executor._context(**names))


def item_names(step: Step) -> dict[str, Any]:
    """The template names an instance adds: `item`."""
    return {"item": step.item} if step.group is not None else {}


@dataclass(slots=True)
class Groups:
    """Which instances each group has (in item order) and how many of each are running."""

    members: dict[str, list[str]] = field(default_factory=dict)
    running: dict[str, int] = field(default_factory=dict)
    limits: dict[str, int] = field(default_factory=dict)
    unfinished: dict[str, int] = field(default_factory=dict)  # instances not ended yet

    @classmethod
    def of(cls, steps: Sequence[Step]) -> Groups:
        groups = cls()
        for step in steps:
            if step.group is not None:
                groups.add(step)
        return groups

    def add(self, step: Step) -> None:
        assert step.group is not None
        self.members.setdefault(step.group, []).append(step.id)
        self.unfinished[step.group] = self.unfinished.get(step.group, 0) + 1
        if step.fan_out is not None and step.fan_out.max_parallel:
            self.limits[step.group] = step.fan_out.max_parallel

    def may_start(self, step: Step) -> bool:
        group = step.group
        if group is None or group not in self.limits:
            return True
        return self.running.get(group, 0) < self.limits[group]

    def started(self, step: Step) -> None:
        if step.group is not None:
            self.running[step.group] = self.running.get(step.group, 0) + 1

    def stopped(self, step: Step) -> None:
        if step.group is not None and self.running.get(step.group):
            self.running[step.group] -= 1


def key_of(step_id: str, group: str) -> str:
    return step_id[len(group) + 1 : -1]


def view_of_group(executor: Executor, group: str) -> dict[str, Any]:
    ids = executor._groups.members.get(group, [])
    views = [step_view(executor._live[i].result) for i in ids]
    return expand.group_view(views, [key_of(i, group) for i in ids])


def ended(executor: Executor, result: StepResult) -> None:
    """After a step ended: keep `steps.<group>` current; end a dynamic group at its last."""
    live = executor._live[result.id]
    group = live.step.group
    if is_dynamic(live.step):  # the group step itself: its instances' outputs, its own verdict
        view = view_of_group(executor, result.id)
        own = step_view(result)
        view.update({k: own[k] for k in ("status", "outcome", "conclusion", "error")})
        executor._steps_view[result.id] = view
        return
    if group is None:
        return
    groups = executor._groups
    groups.stopped(live.step)
    groups.unfinished[group] -= 1
    if groups.unfinished[group]:
        # Only a step that needs the group reads steps.<group> (build checks it), and it
        # becomes ready after the last instance: one view per group, not one per end.
        return
    executor._steps_view[group] = view_of_group(executor, group)
    holder = executor._live.get(group)
    if holder is not None and not holder.result.outcome.is_final:
        _conclude(executor, holder, [executor._live[i].result for i in groups.members[group]])


def fan_out(executor: Executor, live: Any) -> None:
    """Expand a dynamic group that is ready to start: one new step per item.

    The group step is `running` until its last instance ends, but holds none of
    max_parallel's slots and has no deadline of its own (its instances have theirs). An
    expression that gives no usable list ends the group `error`, naming the expression."""
    step: Step = live.step
    fan = step.fan_out
    assert fan is not None and fan.expression is not None
    try:
        with executor._template_limits(step.timeout):
            value = templating.evaluate(fan.expression, executor._context())
        items = expand.items_of(value, min_items=fan.min_items)
    except (TemplateError, expand.ExpandError) as exc:
        executor._finish(
            live,
            Status.ERROR,
            error=f"for_each {fan.expression!r}: {exc}",
            exit_code=EXIT_INVALID,
        )
        return
    made = expand.instances(step, items)
    executor._emit(live, f"for_each: {len(made)} instance(s)")
    if not made:
        _conclude(executor, live, [])
        return
    position = executor.result.steps.index(live.result) + 1
    from mftrun.executor import _Live

    for offset, instance in enumerate(made):
        result = StepResult(
            id=instance.id,
            environment=instance.environment,
            action=instance.action.kind,
            line=instance.position.line,
            column=instance.position.column,
            definition_hash=step_hash(instance),
        )
        executor.result.steps.insert(position + offset, result)
        executor._live[instance.id] = _Live(instance, result)
        executor._groups.add(instance)
        executor._unfinished += 1
    for instance in made:
        _resume_or_queue(executor, executor._live[instance.id])


def _resume_or_queue(executor: Executor, live: Any) -> None:
    """A resumed run: an instance that succeeded with the same definition is carried over,
    one whose remote run may still be going is re-attached, never started again."""
    from mftrun.state.prior import Attach, Carried

    earlier = executor.prior.get(live.step.id)
    same = earlier is not None and _recorded_hash(earlier) == live.result.definition_hash
    if isinstance(earlier, Carried) and same:
        executor._carry(live, earlier, queue_ready=True)
        return
    if isinstance(earlier, Attach) and same:
        live.attach = earlier
    elif earlier is not None:
        executor._emit(live, f"its item changed since run {earlier.from_run}: runs again")
    executor._newly_ready.append(live.step.id)


def _recorded_hash(earlier: Any) -> str:
    result = getattr(earlier, "result", None)
    return str(result.definition_hash if result is not None else earlier.definition_hash)


def _conclude(executor: Executor, live: Any, members: Sequence[StepResult]) -> None:
    failed = [r.id for r in members if r.conclusion in FAILED_CONCLUSIONS]
    if not members:
        executor._finish(live, Status.SUCCESS, detail="for_each gave 0 items: no instances ran")
    elif failed:
        shown = ", ".join(failed[:5]) + (f" and {len(failed) - 5} more" if len(failed) > 5 else "")
        executor._finish(
            live,
            Status.FAILED,
            error=f"{len(failed)} of {len(members)} instance(s) failed: {shown}",
        )
    elif any(r.outcome == Status.CANCELLED for r in members):
        executor._finish(live, Status.CANCELLED, error="instances were cancelled")
    elif all(r.outcome == Status.SKIPPED for r in members):
        live.result.skipped_reason = "every instance was skipped"
        executor._finish(live, Status.SKIPPED, detail=live.result.skipped_reason)
    else:
        executor._finish(live, Status.SUCCESS, detail=f"{len(members)} instance(s) succeeded")


def ancestors_key(executor: Executor, step: Step) -> str:
    """A dynamic instance is not in the plan: its ancestors are its group's."""
    if step.id in executor.plan.index or step.group is None:
        return step.id
    return step.group
