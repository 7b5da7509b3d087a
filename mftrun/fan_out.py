"""The executor's side of for_each: group views, per-group parallel limits, dynamic fan-out.

Why a module of its own: the executor stays the scheduler of steps; everything that knows
about groups is here: `FanOutSteps`, one of the parts the `Executor` class is made of.

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

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from mftrun import expand, templating
from mftrun.conditions import FAILED_CONCLUSIONS, step_view
from mftrun.errors import EXIT_INVALID, TemplateError
from mftrun.model import Condition, Step, step_hash
from mftrun.executor_state import Live, SchedulerState
from mftrun.results import Status, StepResult


def is_dynamic(step: Step) -> bool:
    """A group step whose items are only known at run time (it starts nothing itself)."""
    return step.group is None and step.fan_out is not None and step.fan_out.expression is not None


def group_condition(step: Step) -> Condition:
    """The condition checked when a step becomes ready. A dynamic group's run_if expression
    may read `item`: it is checked per instance, so the group itself always expands."""
    if is_dynamic(step) and step.run_if.kind == "expression":
        return Condition("always")
    return step.run_if


def counted_needs(needs: Sequence[StepResult], steps: Mapping[str, Step]) -> list[StepResult]:
    """The needs a `success` condition looks at: an instance that its own run_if skipped
    (an item filter) while others of its group ran does not hold the dependent back, as it
    does not count against the group's verdict (expand.group_view)."""
    by_group: dict[str, list[StepResult]] = {}
    for need in needs:
        group = steps[need.id].group
        if group is not None:
            by_group.setdefault(group, []).append(need)
    filtered = {
        need.id
        for members in by_group.values()
        if any(m.outcome != Status.SKIPPED for m in members)
        for need in members
        if need.outcome == Status.SKIPPED
    }
    return [n for n in needs if n.id not in filtered]


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


def _recorded_hash(earlier: Any) -> str:
    result = getattr(earlier, "result", None)
    return str(result.definition_hash if result is not None else earlier.definition_hash)


class FanOutSteps(SchedulerState):
    """The executor's part for groups (a part of `mftrun.executor.Executor`)."""

    def _group_evaluator(self, step: Step) -> Callable[[str], Any]:
        """Evaluates run_if expressions of `step`, with its `item`."""
        names = item_names(step)
        return lambda expression: templating.evaluate(expression, self.template_context(**names))

    def _group_view(self, group: str) -> dict[str, Any]:
        ids = self._groups.members.get(group, [])
        views = [step_view(self._live[i].result) for i in ids]
        return expand.group_view(views, [key_of(i, group) for i in ids])

    def _group_member_ended(self, result: StepResult) -> None:
        """After a step ended: keep `steps.<group>` current; end a dynamic group at its last."""
        live = self._live[result.id]
        group = live.step.group
        if is_dynamic(live.step):  # the group step itself: its instances' outputs, its own verdict
            view = self._group_view(result.id)
            own = step_view(result)
            view.update({k: own[k] for k in ("status", "outcome", "conclusion", "error")})
            self._steps_view[result.id] = view
            return
        if group is None:
            return
        groups = self._groups
        groups.stopped(live.step)
        groups.unfinished[group] -= 1
        if groups.unfinished[group]:
            # Only a step that needs the group reads steps.<group> (build checks it), and it
            # becomes ready after the last instance: one view per group, not one per end.
            return
        self._steps_view[group] = self._group_view(group)
        holder = self._live.get(group)
        if holder is not None and not holder.result.outcome.is_final:
            self._conclude_group(holder, [self._live[i].result for i in groups.members[group]])

    def _fan_out(self, live: Any) -> None:
        """Expand a dynamic group that is ready to start: one new step per item.

        The group step is `running` until its last instance ends, but holds none of
        max_parallel's slots and has no deadline of its own (its instances have theirs). An
        expression that gives no usable list ends the group `error`, naming the expression."""
        step: Step = live.step
        fan = step.fan_out
        assert fan is not None and fan.expression is not None
        try:
            with self._template_limits(step.timeout):
                value = templating.evaluate(fan.expression, self.template_context())
            items = expand.items_of(value, min_items=fan.min_items)
        except (TemplateError, expand.ExpandError) as exc:
            self._finish(
                live,
                Status.ERROR,
                error=f"for_each {fan.expression!r}: {exc}",
                exit_code=EXIT_INVALID,
            )
            return
        made = expand.instances(step, items)
        live.result.instances = len(made)
        self._emit(live, f"for_each: {len(made)} instance(s)")
        if self.prior:  # resumed: recorded instances whose item is no longer in the list
            ids = {m.id for m in made}
            gone = sorted(
                sid for sid in self.prior if sid.startswith(f"{step.id}[") and sid not in ids
            )
            if gone:
                more = f" and {len(gone) - 5} more" if len(gone) > 5 else ""
                shown = ", ".join(gone[:5]) + more
                self._emit(live, f"no longer in the list, not run: {shown}")
        if not made:
            self._conclude_group(live, [])
            return
        position = self.result.steps.index(live.result) + 1

        for offset, instance in enumerate(made):
            result = StepResult(
                id=instance.id,
                environment=instance.environment,
                action=instance.action.kind,
                line=instance.position.line,
                column=instance.position.column,
                definition_hash=step_hash(instance),
            )
            self.result.steps.insert(position + offset, result)
            self._live[instance.id] = Live(instance, result)
            self._groups.add(instance)
            self._unfinished += 1
        for instance in made:
            self._resume_or_queue(self._live[instance.id])

    def _resume_or_queue(self, live: Any) -> None:
        """A resumed run: an instance that succeeded with the same definition is carried over,
        one whose remote run may still be going is re-attached, never started again."""
        from mftrun.state.prior import Attach, Carried

        earlier = self.prior.get(live.step.id)
        same = earlier is not None and _recorded_hash(earlier) == live.result.definition_hash
        if isinstance(earlier, Carried) and same:
            self._carry(live, earlier, queue_ready=True)
            return
        if isinstance(earlier, Attach) and same:
            live.attach = earlier
        elif earlier is not None:
            self._emit(live, f"its item changed since run {earlier.from_run}: runs again")
        self._newly_ready.append(live.step.id)

    def _conclude_group(self, live: Any, members: Sequence[StepResult]) -> None:
        failed = [r.id for r in members if r.conclusion in FAILED_CONCLUSIONS]
        if not members:
            self._finish(live, Status.SUCCESS, detail="for_each gave 0 items: no instances ran")
        elif failed:
            shown = ", ".join(failed[:5]) + (
                f" and {len(failed) - 5} more" if len(failed) > 5 else ""
            )
            self._finish(
                live,
                Status.FAILED,
                error=f"{len(failed)} of {len(members)} instance(s) failed: {shown}",
            )
        elif any(r.outcome == Status.CANCELLED for r in members):
            self._finish(live, Status.CANCELLED, error="instances were cancelled")
        elif all(r.outcome == Status.SKIPPED for r in members):
            live.result.skipped_reason = "every instance was skipped"
            self._finish(live, Status.SKIPPED, detail=live.result.skipped_reason)
        else:
            filtered = sum(r.outcome == Status.SKIPPED for r in members)
            detail = f"{len(members) - filtered} instance(s) succeeded" + (
                f", {filtered} skipped by run_if" if filtered else ""
            )
            self._finish(live, Status.SUCCESS, detail=detail)

    def _ancestors_key(self, step: Step) -> str:
        """A dynamic instance is not in the plan: its ancestors are its group's."""
        if step.id in self.plan.index or step.group is None:
            return step.id
        return step.group
