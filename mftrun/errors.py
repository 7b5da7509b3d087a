"""One exception tree for everything a user can cause; messages are written for people.

    MftrunError                  exit 1 unless a subclass says otherwise
    ├── UsageError               exit 2  bad command line
    ├── InputError               exit 2  the pipeline/scenario/report file is wrong
    │   ├── ValidationFailed     exit 2  carries every Problem found, with positions
    │   └── NotFoundOnPlatform   exit 2  the platform has no such task (404 to a start)
    ├── TemplateError            exit 2  a Jinja2 template failed to render at run time
    ├── PlatformError            exit 3  a platform could not be reached or authenticated
    │   ├── ConnectError         DNS, refused, TLS, timeouts before the request was sent
    │   ├── AuthError            credentials rejected / permission denied
    │   ├── CredentialError      a referenced env var or file is missing or unreadable
    │   ├── AmbiguousStartError  a start request may have been processed; never replayed
    │   ├── RemoteError          the platform answered an error we cannot get past
    │   └── StateError           the run-state store cannot be opened, read or written
    ├── LockHeld                 exit 4  another run holds this pipeline's lock
    ├── ResumeRefused            exit 2  resuming would be unsafe (named step, the reason)
    └── Interrupted              exit 130 (SIGTERM: 143)

The CLI prints `str(error)` (never a traceback) and exits with `error.exit_code`.
"""

from __future__ import annotations

from dataclasses import dataclass

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_INVALID = 2
EXIT_PLATFORM = 3
EXIT_LOCKED = 4
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143


class MftrunError(Exception):
    exit_code = EXIT_FAILED

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message}\n  hint: {self.hint}" if self.hint else self.message


class UsageError(MftrunError):
    exit_code = EXIT_INVALID


class InputError(MftrunError):
    exit_code = EXIT_INVALID


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with an input file, at a 1-based line and column."""

    file: str
    line: int
    column: int
    message: str
    hint: str | None = None

    def __str__(self) -> str:
        # The file name and the message may hold text from the file (a newline, an escape):
        # each piece is made inert, so a problem prints as its own lines and nothing else.
        from mftrun.inert import inert, inert_lines

        text = f"{inert(self.file)}:{self.line}:{self.column}: {inert_lines(self.message)}"
        return f"{text}\n  hint: {inert_lines(self.hint)}" if self.hint else text

    def to_dict(self) -> dict[str, object]:
        return {
            "file": self.file,
            "line": self.line,
            "column": self.column,
            "message": self.message,
            "hint": self.hint,
        }


class ValidationFailed(InputError):
    def __init__(self, problems: list[Problem]) -> None:
        self.problems = sorted(problems, key=lambda p: (p.file, p.line, p.column))
        count = len(self.problems)
        summary = f"{count} problem{'s' if count != 1 else ''} found"
        super().__init__("\n".join(str(p) for p in self.problems) + f"\n{summary}")


class NotFoundOnPlatform(InputError):
    """The platform answered 404 to what the pipeline names (a task id or name): a mistake in
    the file (or the key's tenant), not an outage, so exit 2 like any wrong input."""


class TemplateError(MftrunError):
    exit_code = EXIT_INVALID


class PlatformError(MftrunError):
    exit_code = EXIT_PLATFORM


class ConnectError(PlatformError):
    pass


class AuthError(PlatformError):
    pass


class CredentialError(PlatformError):
    pass


class AmbiguousStartError(PlatformError):
    """A start that may have been processed. `target` names what may be running remotely
    (e.g. "task 0211..."), for the report's remote_may_continue when no run id is known."""

    def __init__(self, message: str, *, hint: str | None = None, target: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.target = target


class RemoteError(PlatformError):
    def __init__(self, message: str, *, status: int | None = None, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.status = status


class StateError(PlatformError):
    """The store is unreachable, corrupt, full or from a newer mftrun; names it without secrets."""


class LockHeld(MftrunError):
    exit_code = EXIT_LOCKED


class ResumeRefused(InputError):
    pass


class Interrupted(MftrunError):
    exit_code = EXIT_INTERRUPTED
