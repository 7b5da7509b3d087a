"""Log in to every environment before the first step (issue 11 section 1).

Why: a wrong `kid`, a rotated key or a wrong client secret used to surface only
when the first step on that environment ran, which may be hours into the night
behind a two-hour backup wait. `apply` now makes, in parallel, the same cheap
call as `mftrun check` on the very providers the run will use, so the token it
obtains is the run's token (still one per environment) and a refusal costs
seconds, not a night.

This module only asks and tells; what a refusal means for the steps (nothing
starts but the `failure`/`always` steps on environments that logged in) is the
executor's business, given the `refused` mapping this returns.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from mftrun.clock import Clock, SystemClock
from mftrun.errors import MftrunError


@dataclass(frozen=True, slots=True)
class LoginRow:
    """One environment's answer: the provider's own one-line summary or the whole error."""

    environment: str
    provider: str
    base_url: str
    ok: bool
    detail: str
    seconds: float


def check_providers(
    providers: Mapping[str, Any],
    environments: Mapping[str, Any],
    *,
    redactor: Any,
    clock: Clock | None = None,
) -> list[LoginRow]:
    """One row per provider, in environment-name order, checked in parallel; never raises for
    a platform (one environment's refusal, or bug, must not hide the others')."""
    clock = clock or SystemClock()
    names = sorted(providers)

    def one(name: str) -> LoginRow:
        started = clock.monotonic()
        try:
            ok, detail = True, str(providers[name].check())
        except MftrunError as exc:
            ok, detail = False, str(exc)
        except Exception as exc:  # noqa: BLE001 - reported as the environment's problem
            ok, detail = False, f"unexpected {exc.__class__.__name__}: {exc}"
        env = environments[name]
        return LoginRow(
            name,
            env.provider,
            env.base_url,
            ok,
            redactor.scrub(detail),
            clock.monotonic() - started,
        )

    if len(names) <= 1:  # apply checks on a thread of its own already: none more for one
        return [one(name) for name in names]
    return _on_daemon_threads(one, names)


def _on_daemon_threads(one: Callable[[str], LoginRow], names: list[str]) -> list[LoginRow]:
    """`one` for each name, at most 8 at a time, on daemon threads. Not a ThreadPoolExecutor:
    the interpreter joins its workers at exit, so a Ctrl-C during set-up waited for a token
    endpoint that does not answer (up to the environment's timeout) before exiting."""
    import threading

    rows: dict[str, LoginRow] = {}
    todo = iter(names)
    lock = threading.Lock()

    def work() -> None:
        while True:
            with lock:
                name = next(todo, None)
            if name is None:
                return
            rows[name] = one(name)

    threads = [
        threading.Thread(target=work, name=f"mftrun-login-{i}", daemon=True)
        for i in range(min(8, len(names)))
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        while thread.is_alive():
            thread.join(0.2)  # in slices: a signal is handled while waiting
    return [rows[name] for name in names]


def login_before_first_step(
    providers: Mapping[str, Any],
    environments: Mapping[str, Any],
    *,
    redactor: Any,
    note: Callable[[str], None],
    quiet: bool = False,
    clock: Clock | None = None,
) -> dict[str, str]:
    """Check every environment; tell the console each outcome; return the refused ones
    (environment name to the full problem, hint included), empty when all logged in.
    Refusals are told even when `quiet`: they are the run's outcome."""
    rows = check_providers(providers, environments, redactor=redactor, clock=clock)
    refused: dict[str, str] = {}
    for row in rows:
        if row.ok and not quiet:
            note(f"login {row.environment}: ok ({row.detail}, {row.seconds:.1f}s)")
        elif not row.ok:
            refused[row.environment] = row.detail
    for name, detail in refused.items():
        note(f"login {name}: FAILED: {detail}")
    if refused:
        note(refusal_message(refused))
    return refused


def refusal_message(refused: Mapping[str, str]) -> str:
    """The run's headline when the login check refused it."""
    names = ", ".join(repr(n) for n in sorted(refused))
    plural = "s" if len(refused) != 1 else ""
    return (
        f"login check failed for environment{plural} {names}: no task was started "
        "(only run_if failure/always steps on environments that logged in may run)"
    )
