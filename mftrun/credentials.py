"""Credential references (env:/file:) and the redaction registry.

Secrets are read only when a run needs them, and every value read is registered
with the `Redactor` so the console and every report can scrub it.
"""

from __future__ import annotations

import os
import threading
import weakref
from pathlib import Path
from collections.abc import Mapping

from mftrun.errors import CredentialError
from mftrun.model import CredentialRef

MASK = "***"
_MIN_SECRET = 4  # shorter strings would scrub ordinary text


_LIVE: weakref.WeakSet[Redactor] = weakref.WeakSet()


def scrub_everywhere(text: str) -> str:
    """Scrub with every redactor still alive: for text written outside any run's reach,
    such as the crash log of an unexpected error, whose message may quote a secret."""
    for redactor in list(_LIVE):
        text = redactor.scrub(text)
    return text


class Redactor:
    """Remembers secret strings and replaces them wherever they appear."""

    def __init__(self) -> None:
        self._secrets: set[str] = set()
        self._lock = threading.Lock()
        _LIVE.add(self)

    def add(self, secret: str | None) -> None:
        if not secret or len(secret) < _MIN_SECRET:
            return
        with self._lock:
            self._secrets.add(secret)
            # PEM keys also appear line by line or without their armour in echoes.
            for line in secret.splitlines():
                if len(line.strip()) >= 16:
                    self._secrets.add(line.strip())

    def scrub(self, text: str) -> str:
        if not text or not self._secrets:
            return text
        with self._lock:
            secrets = sorted(self._secrets, key=len, reverse=True)
        for secret in secrets:
            if secret in text:
                text = text.replace(secret, MASK)
        return text

    def scrub_data(self, value: object) -> object:
        """Scrub strings anywhere inside JSON-like data."""
        if isinstance(value, str):
            return self.scrub(value)
        if isinstance(value, dict):
            return {self.scrub(str(k)): self.scrub_data(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [self.scrub_data(v) for v in value]
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
    elif ref.kind == "file":
        path = Path(os.path.expanduser(ref.ref))
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
    if secret and redactor is not None:
        redactor.add(value)
    return value
