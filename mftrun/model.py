"""The typed pipeline: frozen data, no I/O, no clocks, no requests.

Built from a schema-valid document by `mftrun.build.build_pipeline`. Every
object keeps the `Position` of the YAML node it came from so later stages
(executor, reports, CI annotations) can point the user at the file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal
from collections.abc import Mapping

EMPTY: Mapping[str, Any] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class Position:
    file: str
    line: int  # 1-based
    column: int  # 1-based

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


NOWHERE = Position("<unknown>", 1, 1)


@dataclass(frozen=True, slots=True)
class CredentialRef:
    """Where a credential value comes from; the value itself is read at run time."""

    # file_env: the file whose path is in the environment variable `ref` ({file: {env: NAME}})
    kind: Literal["env", "file", "file_env", "value"]
    ref: str  # env var name, file path (~ not yet expanded), or the literal (non-secret) value
    position: Position = NOWHERE

    def describe(self) -> str:
        return {
            "env": f"env var {self.ref}",
            "file": f"file {self.ref}",
            "file_env": f"the file named by env var {self.ref}",
        }.get(self.kind, "inline value")


@dataclass(frozen=True, slots=True)
class Environment:
    name: str
    provider: str  # one of PROVIDERS
    base_url: str  # resolved: region -> URL for automate-mft
    credentials: Mapping[str, CredentialRef]
    region: str | None = None
    ca_bundle: str | None = None
    http_timeout: float = 30.0  # read timeout for one HTTP call, seconds
    token_body: str = (
        "json"  # automate-mft token request: "json" (vendor sample) or "form" [assumed]
    )
    # webhook only: headers sent with every call (values read at run time, like credentials),
    # and the URL itself when it is a secret (Slack and Teams put the secret in the URL).
    headers: Mapping[str, CredentialRef] = field(default_factory=lambda: EMPTY)
    url_ref: CredentialRef | None = None
    # automate-mft / acronis: base_url or region read from an environment variable at run
    # time ({env: NAME}), so one file serves staging, production and the emulator
    base_url_env: str | None = None
    region_env: str | None = None
    position: Position = NOWHERE


@dataclass(frozen=True, slots=True)
class Poll:
    """How a running remote run is watched: all of polling's numbers in one place."""

    interval: float = 2.0
    max_interval: float = 30.0
    # Without history the gap is (factor - 1) x the time already waited, within the bounds
    # (`poll_schedule`): 1.1 notices an end within 10% of its elapsed time.
    factor: float = 1.1
    # History-aware polling over the last `history` successful runs of the same task on the
    # same environment (0: off, `poll: {history: false}`).
    history: int = 30
    # A poll that fails transiently (network, 5xx, 429 after its own retries) is tolerated
    # this many times in a row, waiting failure_backoff * 2**(n-1) (at most failure_backoff_max)
    # before the next: a two-hour wait should not die of a one-minute outage.
    failures_tolerated: int = 3
    failure_backoff: float = 5.0
    failure_backoff_max: float = 60.0


@dataclass(frozen=True, slots=True)
class Retry:
    attempts: int = 0  # extra attempts after a *failed* remote run
    delay: float = 10.0
    backoff: float = 2.0


@dataclass(frozen=True, slots=True)
class Condition:
    kind: Literal["success", "failure", "always", "expression"] = "success"
    expression: str | None = None  # the `{{ ... }}` text when kind == "expression"


@dataclass(frozen=True, slots=True)
class Action:
    """What a step does.

    `written` is the action's value as written in the file (strings may be templates): the
    executor renders it when the step starts and parses the result again. `spec` is the
    typed, frozen spec its action module (`mftrun.actions.<kind>`) parsed from `written` at
    validate time; `plan` and the reports read it. None only for hand-made test models.
    """

    kind: str  # a name in mftrun.actions.REGISTRY
    written: Any
    spec: Any = None
    position: Position = NOWHERE


@dataclass(frozen=True, slots=True)
class Step:
    id: str
    action: Action
    environment: str
    index: int  # position in the file's list: tie-break for which ready step starts first
    needs: tuple[str, ...] = ()
    run_if: Condition = field(default_factory=Condition)
    timeout: float | None = None
    poll: Poll = field(default_factory=Poll)
    retries: Retry = field(default_factory=Retry)
    continue_on_error: bool = False
    outputs: Mapping[str, str] = field(default_factory=lambda: EMPTY)  # name -> template
    position: Position = NOWHERE
    # for_each (mftrun.expand): an instance knows its group and item; a group whose list is
    # only known at run time stays one step here, with `fan_out` saying how to expand it.
    group: str | None = None
    item: Any = None
    fan_out: FanOut | None = None


@dataclass(frozen=True, slots=True)
class FanOut:
    """How a for_each group expands: `expression` is None for a list written in the file
    (expanded when the pipeline is built); else the template evaluated when the group becomes
    ready (over vars or an upstream step's outputs)."""

    expression: str | None = None
    max_parallel: int | None = None  # most instances of this group running at once
    min_items: int = 0


@dataclass(frozen=True, slots=True)
class Pipeline:
    name: str
    path: str
    sha256: str
    environments: Mapping[str, Environment]
    steps: tuple[Step, ...]
    version: int = 1
    description: str = ""
    max_parallel: int = 8
    timeout: float | None = None  # whole run
    lock: str | None = None  # the run lock's key; None: the pipeline's name
    vars: Mapping[str, Any] = field(default_factory=lambda: EMPTY)
    position: Position = NOWHERE

    def step(self, step_id: str) -> Step:
        for step in self.steps:
            if step.id == step_id:
                return step
        raise KeyError(step_id)


def step_hash(step: Step) -> str:
    """sha256 of the step's definition as written (positions and file order left out).

    Resume compares it with the recorded one: a step whose definition changed runs again,
    so an edited task id or parameter is never answered with an old run's success.
    """
    import hashlib
    import json

    return hashlib.sha256(
        json.dumps(_plain(step), sort_keys=True, separators=(",", ":"), default=str).encode()
    ).hexdigest()


_UNSET_OMITTED = frozenset({"group", "item", "fan_out"})


def _plain(value: Any) -> Any:
    from dataclasses import fields, is_dataclass

    if is_dataclass(value) and not isinstance(value, type):
        return {
            f.name: _plain(getattr(value, f.name))
            for f in fields(value)
            if f.name not in ("position", "index", "spec")
            # for_each fields left out when unset: a step's hash stays what earlier versions
            # recorded, so resuming their runs carries its steps over
            and not (f.name in _UNSET_OMITTED and getattr(value, f.name) is None)
        }
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value
