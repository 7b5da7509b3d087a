"""What an Acronis task looks like when listed: the vendor sample's shape, computed from the clock.

Split from the HTTP handlers (issue 12): the item shape is fixed by the contract's fixture
(64-bit `id` plus `idString`, RFC 3339 nanosecond timestamps, fields that appear only once
the task has got there), while the handlers decide who may see it. A task's state, times,
progress and result follow from its scenario timeline and the current simulated time.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from typing import Any

from mftrun.emulator.scenario_data import AcronisTask
from mftrun.emulator.wire import rfc3339_ns

ACTIVITY_ID_BIT = 1 << 62  # an activity's 64-bit id: its task's id with this bit flipped


def task_item(
    task: AcronisTask, now_ns: int, at: Callable[[float], int], tenant: Mapping[str, Any]
) -> dict[str, Any]:
    """The task as the task manager lists it at `now_ns`; `at` maps scenario time to ns."""
    enqueued = at(task.enqueued)
    assigned = at(task.assigned) if task.assigned is not None else None
    started = at(task.started) if task.started is not None else None
    completed = at(task.completed) if task.completed is not None else None
    state, updated = "enqueued", enqueued
    if assigned is not None and now_ns >= assigned:
        state, updated = "assigned", assigned
    if started is not None and now_ns >= started:
        state, updated = "started", started
    if completed is not None and now_ns >= completed:
        state, updated = "completed", completed
    item: dict[str, Any] = {
        "cancelRequested": False,
        "cancellable": task.cancellable and state != "completed",
        "state": state,
        "context": dict(task.context),
        "enqueuedAt": rfc3339_ns(enqueued),
        "id": task.id,
        "idString": str(task.id),
        "issuer": {"clusterId": "", "id": ""},
        "priority": task.priority,
        "queue": task.queue,
        "assignCount": 1 if state != "enqueued" else 0,
        "tenant": dict(tenant),
        "type": task.type,
        "updatedAt": rfc3339_ns(updated),
        "uuid": task.uuid,
        "tags": list(task.tags),
        # Always present, like the fixture's (empty strings stay, as in its `issuer`).
        "startedByUser": task.started_by,
    }
    if assigned is not None and now_ns >= assigned:
        item["assignedAt"] = rfc3339_ns(assigned)
    if started is not None and now_ns >= started:
        item["startedAt"] = rfc3339_ns(started)
        if state == "started" and completed is not None:
            total = max(1, (completed - started) // 1_000_000_000)
            current = min(total, (now_ns - started) // 1_000_000_000)
            item["progress"] = {
                "current": current,
                "total": total,
                "bytesProcessed": current * 1_048_576,
                "leftTime": total - current,
            }
    if state == "completed":
        item["completedAt"] = rfc3339_ns(completed or updated)
        result: dict[str, Any] = {
            "code": task.result_code or "ok",
            "payload": task.result_payload or "",
        }
        if task.result_error is not None:
            result["error"] = dict(task.result_error)
        if task.warnings:
            result["warnings"] = list(task.warnings)
        item["result"] = result
    if task.policy is not None:
        item["policy"] = dict(task.policy)
    if task.resource is not None:
        item["resource"] = dict(task.resource)
    if task.workflow_id is not None:
        item["workflowId"] = task.workflow_id
    if task.executor is not None:
        item["executor"] = dict(task.executor)
    return item


def activity(task_item: dict[str, Any]) -> dict[str, Any]:
    """The one activity of a task (the documented /activities endpoints; shape [assumed]).

    The public docs publish no activity sample: it mirrors its task (state, times, result,
    policy, resource) with its own 64-bit `id`/`idString`, plus `taskId`/`taskIdString` and
    `createdAt`, the fields third-party integrations read.
    """
    item = dict(task_item)
    activity_id = task_item["id"] ^ ACTIVITY_ID_BIT
    item.update(
        id=activity_id,
        idString=str(activity_id),
        taskId=task_item["id"],
        taskIdString=task_item["idString"],
        createdAt=task_item["enqueuedAt"],
        uuid=str(uuid.uuid5(uuid.NAMESPACE_OID, f"activity:{task_item['uuid']}")),
    )
    return item
