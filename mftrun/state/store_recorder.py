"""A RunRecorder that writes every transition to the store before returning.

The platform work matters more than its record: if the store fails mid-run, the run goes on,
`failed` says why (the console shows it once) and report.json still carries what resume
needs. Outputs are scrubbed by the run's redactor, exactly as in the reports.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from typing import Any

from mftrun.credentials import Redactor
from mftrun.errors import StateError
from mftrun.results import StepResult
from mftrun.state.store import SqlStore


class StoreRecorder:
    def __init__(
        self,
        store: SqlStore,
        run_id: str,
        positions: Mapping[str, int],
        redactor: Redactor,
        *,
        on_failure: Callable[[str], None] | None = None,
    ) -> None:
        self.store = store
        self.run_id = run_id
        self.positions = positions
        self.redactor = redactor
        self.on_failure = on_failure
        self.failed: str | None = None
        self._docs: dict[str, dict[str, Any]] = {}
        # Workers record a start's intent and answer, the scheduler the rest: one at a time.
        self._lock = threading.RLock()

    def _doc(self, step_id: str) -> dict[str, Any]:
        return self._docs.setdefault(
            step_id, {"id": step_id, "status": "pending", "attempts": [], "outputs": {}}
        )

    def _attempt(self, step_id: str, attempt: int) -> dict[str, Any]:
        doc = self._doc(step_id)
        for entry in doc["attempts"]:
            if entry.get("number") == attempt:
                return entry
        entry = {"number": attempt, "run_id": None, "ref": None, "status": "running"}
        doc["attempts"].append(entry)
        return entry

    def _write(self, step_id: str) -> None:
        if self.failed is not None:
            return
        now = datetime.now(timezone.utc).isoformat()
        try:
            self.store.put_step(
                self.run_id, step_id, self.positions.get(step_id, 0), self._doc(step_id), now
            )
        except StateError as exc:
            self.failed = f"{exc.message}; the run goes on, report.json keeps what resume needs"
            if self.on_failure:
                self.on_failure(self.failed)

    # -- RunRecorder ---------------------------------------------------------------------------

    def step_started(self, step_id: str, attempt: int, definition_hash: str) -> None:
        # Not written on its own: nothing has been sent yet, and what follows (the intent, or
        # the end of a read-only step) is written with it. A crash in between reruns the step.
        with self._lock:
            doc = self._doc(step_id)
            doc.update(status="running", outcome="running", hash=definition_hash)
            self._attempt(step_id, attempt)

    def start_intent(self, step_id: str, attempt: int) -> None:
        with self._lock:
            self._doc(step_id)["start_unconfirmed"] = True
            self._attempt(step_id, attempt)
            self._write(step_id)

    def remote_run(self, step_id: str, attempt: int, ref: Mapping[str, str]) -> None:
        with self._lock:
            entry = self._attempt(step_id, attempt)
            entry["ref"] = dict(ref) or None
            entry["run_id"] = ref.get("run_id")
            self._doc(step_id)["start_unconfirmed"] = False
            self._write(step_id)

    def start_not_sent(self, step_id: str, attempt: int) -> None:
        with self._lock:
            self._doc(step_id)["start_unconfirmed"] = False
            self._write(step_id)

    def step_finished(self, result: StepResult) -> None:
        doc = result.to_dict()
        from mftrun.reports import scrub_step

        scrubbed = scrub_step(doc, self.redactor) if self.redactor is not None else doc
        with self._lock:
            self._docs[result.id] = scrubbed if isinstance(scrubbed, dict) else doc
            self._write(result.id)
