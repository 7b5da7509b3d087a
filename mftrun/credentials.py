"""Credential references (env:/file:) and the redaction registry.

Secrets are read only when a run needs them, and every value read is registered
with the `Redactor` so the console and every report can scrub it.
"""

from __future__ import annotations

import os
import re
import threading
import weakref
from pathlib import Path
from collections.abc import Mapping

from mftrun.errors import CredentialError
from mftrun.model import CredentialRef

MASK = "***"
_MIN_SECRET = 4  # a runtime token this short cannot be masked without garbling text
# Secrets the user configures must be at least this long (preflight refuses shorter ones):
# a short secret also spells ordinary words ("success"), so masking it both hides those
# words and shows the reader what the secret is.
MIN_SECRET_LENGTH = 12
# At or above this length a secret is masked wherever it occurs, even glued to other
# characters (a PEM line inside an echoed blob); shorter ones only as a whole token.
_ANYWHERE = 24
_TOKEN_CHAR = "A-Za-z0-9_"


_LIVE: weakref.WeakSet[Redactor] = weakref.WeakSet()

# Names whose value is a secret whatever it spells (a --var, a task parameter): reports keep
# the name and show MASK for the value, even when the value was never registered.
SECRET_NAME = re.compile(
    r"pass(word|wd|phrase)?|secret|token|api[-_]?key|private[-_]?key|credential|auth|signature",
    re.I,
)


def mask_secret_names(values: Mapping[str, object]) -> dict[str, object]:
    """A copy of `values` with the value of every secret-looking name replaced by MASK."""
    return {
        str(name): MASK if SECRET_NAME.search(str(name)) else value
        for name, value in values.items()
    }


def scrub_everywhere(text: str) -> str:
    """Scrub with every redactor still alive: for text written outside any run's reach,
    such as the crash log of an unexpected error, whose message may quote a secret."""
    for redactor in list(_LIVE):
        text = redactor.scrub(text)
    return text


class Redactor:
    """Remembers secret strings and masks them where they occur as a value or a token.

    Only text that came from outside is given to `scrub` (platform answers, error
    messages); fields mftrun writes itself (statuses, ids, timestamps) never are.
    A secret shorter than `_ANYWHERE` is masked only where it stands as a whole
    token (not inside a longer word), so a short identifier read from a variable
    does not eat parts of ordinary words.
    """

    def __init__(self) -> None:
        self._secrets: set[str] = set()
        self._lock = threading.Lock()
        self._pattern: re.Pattern[str] | None = None
        _LIVE.add(self)

    def add(self, secret: str | None) -> None:
        if not secret or len(secret) < _MIN_SECRET:
            return
        with self._lock:
            before = len(self._secrets)
            self._secrets.add(secret)
            # PEM keys also appear line by line or without their armour in echoes.
            for line in secret.splitlines():
                if len(line.strip()) >= 16:
                    self._secrets.add(line.strip())
            if len(self._secrets) != before:
                self._pattern = None

    def _compiled(self) -> re.Pattern[str] | None:
        with self._lock:
            if self._pattern is None and self._secrets:
                alternatives = []
                for secret in sorted(self._secrets, key=len, reverse=True):
                    escaped = re.escape(secret)
                    if len(secret) < _ANYWHERE:
                        escaped = f"(?<![{_TOKEN_CHAR}]){escaped}(?![{_TOKEN_CHAR}])"
                    alternatives.append(escaped)
                self._pattern = re.compile("|".join(alternatives))
            return self._pattern

    def scrub(self, text: str) -> str:
        if not text or not self._secrets:
            return text
        pattern = self._compiled()
        return pattern.sub(MASK, text) if pattern is not None else text

    def scrub_data(self, value: object) -> object:
        """Scrub strings anywhere inside JSON-like data."""
        if isinstance(value, str):
            return self.scrub(value)
        if isinstance(value, dict):
            return {self.scrub(str(k)): self.scrub_data(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [self.scrub_data(v) for v in value]
        return value


def file_path(field: str, ref: CredentialRef, environ: Mapping[str, str] = os.environ) -> str:
    """The path a file reference names: written in the file, or (`{file: {env: NAME}}`) the
    value of an environment variable, such as the MFT_PRIVATE_KEY_FILE that `mftrun emulate`
    exports, so nothing machine-specific has to be written in a file kept in Git."""
    if ref.kind != "file_env":
        return ref.ref
    value = environ.get(ref.ref)
    if not value:
        where = f" (declared at {ref.position})" if ref.position.line else ""
        raise CredentialError(
            f"credential {field!r}: environment variable {ref.ref}, which names its file, "
            f"is not set{where}",
            hint=f"export {ref.ref}=/path/to/the/file before running",
        )
    return value


def resolve(
    field: str,
    ref: CredentialRef,
    *,
    environ: Mapping[str, str] = os.environ,
    redactor: Redactor | None = None,
    secret: bool = True,
) -> str:
    """Read a credential's value; raise CredentialError saying exactly what is missing."""
    where = f" (declared at {ref.position})" if ref.position.line else ""
    if ref.kind == "env":
        value = environ.get(ref.ref)
        if value is None or value == "":
            raise CredentialError(
                f"credential {field!r}: environment variable {ref.ref} is not set{where}",
                hint=f"export {ref.ref}=... before running, or point {field} at a file",
            )
    elif ref.kind in ("file", "file_env"):
        path = Path(os.path.expanduser(file_path(field, ref, environ)))
        try:
            value = path.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            raise CredentialError(
                f"credential {field!r}: file {path} does not exist{where}",
                hint="check the path; ~ is expanded to your home folder",
            ) from None
        except (OSError, UnicodeDecodeError) as exc:
            raise CredentialError(
                f"credential {field!r}: cannot read {path}: "
                f"{getattr(exc, 'strerror', None) or exc.__class__.__name__}{where}"
            ) from None
        if not value:
            raise CredentialError(f"credential {field!r}: file {path} is empty{where}")
    else:
        value = ref.ref
    # Any value read from a variable or a file is sensitive in output, whatever its field:
    # `key_id: {env: SOME_CI_SECRET}` by mistake must not print the CI secret. Only an
    # identifier the user wrote inline (kind "value") is shown as it is.
    if redactor is not None and (secret or ref.kind != "value"):
        redactor.add(value)
    return value


def too_short_to_mask(field: str, ref: CredentialRef, value: str) -> str | None:
    """Why a credential's value cannot be masked safely in output, or None when it can."""
    from mftrun.providers.catalog import SECRET_FIELDS

    where = f" (declared at {ref.position})" if ref.position.line else ""
    source = f"{ref.kind} {ref.ref}" if ref.kind != "value" else "the inline value"
    if field in SECRET_FIELDS and len(value) < MIN_SECRET_LENGTH:
        return (
            f"credential {field!r} from {source} is {len(value)} characters long{where}: "
            f"too short to mask safely (at least {MIN_SECRET_LENGTH}); masking it would hide "
            "ordinary words that spell it and so show what it is"
            "\n  hint: use the full secret the platform issued"
        )
    if ref.kind != "value" and len(value) < _MIN_SECRET:
        return (
            f"credential {field!r} from {source} is {len(value)} characters long{where}: "
            f"too short to mask in output (at least {_MIN_SECRET}); a value read from a "
            "variable or a file is treated as sensitive"
            "\n  hint: write a public identifier inline instead of through env:/file:"
        )
    return None


def key_file_warning(field: str, ref: CredentialRef) -> str | None:
    """A warning when a private key file can be read or written by other users, else None.

    OpenSSH refuses such keys outright ("UNPROTECTED PRIVATE KEY FILE"); we warn rather
    than refuse, because CI runners often check secrets out with a 0644 umask and a
    refusal there would only teach people to switch the check off. The fix is printed.
    """
    if ref.kind not in ("file", "file_env") or field != "private_key" or os.name != "posix":
        return None
    try:
        path = Path(os.path.expanduser(file_path(field, ref)))
    except CredentialError:
        return None  # reported by `resolve`
    try:
        mode = path.stat().st_mode
    except OSError:
        return None  # missing or unreadable files are reported by `resolve`
    if not mode & 0o077:
        return None
    who = " and ".join(name for name, bits in (("group", 0o070), ("others", 0o007)) if mode & bits)
    where = f" (declared at {ref.position})" if ref.position.line else ""
    import shlex

    return (
        f"warning: private key file {path} is accessible by {who} "
        f"(mode {mode & 0o777:04o}){where}: anyone who can read it can sign in as this "
        f"tenant\n  hint: chmod 600 {shlex.quote(str(path))}"
    )
