"""The login check on its own thread while `apply` prepares the run (issue 13 section 5).

Why: the check (a token and one cheap call per environment) is network time, and
the plan, the run memory, the executor and its imports are CPU time that does not
need the platform. Run one beside the other and the first start leaves when the
slower of the two is done, not after both. What does not change: the check starts
only after the file is validated and every credential read (nothing is sent for
a file that will be refused), nothing is *started* before `wait()` returned and
the executor was built, and the token it obtains is the run's own (the providers
cache it), so one token request per environment, as before.

The notes the check makes are held and told by `wait()`, so the console shows
them in the same place as when the check ran inline.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import Any


class LoginInFlight:
    """`login_before_first_step` started now on a daemon thread; `wait()` gives its answer."""

    def __init__(
        self,
        providers: Mapping[str, Any],
        environments: Mapping[str, Any],
        *,
        redactor: Any,
        quiet: bool,
    ) -> None:
        # The check's CPU part (its imports: requests, which the sessions load at their first
        # call, and PyJWT for the Automate MFT assertion: ~150 ms) here, on the caller's
        # thread: on its own thread it shared the interpreter lock with the preparation and
        # the token left only after both; now it leaves at once and its network time
        # overlaps the preparation.
        import requests  # noqa: F401

        import mftrun.login  # noqa: F401

        if any(env.provider == "automate-mft" for env in environments.values()):
            import jwt  # noqa: F401

        self._notes: list[str] = []
        self._refused: dict[str, str] = {}
        self._error: BaseException | None = None
        args = (providers, environments, redactor, quiet)
        # daemon: a Ctrl-C during set-up must not wait for a slow token endpoint
        self._thread = threading.Thread(
            target=self._check, args=args, name="mftrun-login-check", daemon=True
        )
        self._thread.start()

    def _check(
        self,
        providers: Mapping[str, Any],
        environments: Mapping[str, Any],
        redactor: Any,
        quiet: bool,
    ) -> None:
        from mftrun.login import login_before_first_step

        try:
            self._refused = login_before_first_step(
                providers, environments, redactor=redactor, note=self._notes.append, quiet=quiet
            )
        except BaseException as exc:  # noqa: BLE001 - raised again in the caller's thread
            self._error = exc

    def wait(self, note: Callable[[str], None]) -> dict[str, str]:
        """Block until the check is done; tell its notes; the refused environments (see
        `login_before_first_step`), or its error raised here, in the caller's thread."""
        while self._thread.is_alive():
            self._thread.join(0.2)  # in slices: a signal is handled while waiting
        for line in self._notes:
            note(line)
        if self._error is not None:
            raise self._error
        return self._refused
