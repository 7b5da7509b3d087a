"""An Automate MFT key from a scenario: PEM text or files read, checked, or generated from the seed.

Split from the rest of the scenario building (issue 12): keys are the one part that needs
the cryptography library and the file system, and the one where the platform's rules
(ES256 on P-256, RS256 of at least 2048 bits, EdDSA; `alg` must match the key) live.
Generated keys derive from the seed, so a scenario gives the same credentials on every start.
"""

from __future__ import annotations

import ipaddress
import random
import uuid
from pathlib import Path
from typing import Any, Protocol

from mftrun.emulator.scenario_data import MftKey


class Problems(Protocol):
    """Where a problem with a key is reported, and the folder `*_file` paths are relative to."""

    folder: Path | None

    def problem(self, path: tuple[Any, ...], message: str, hint: str | None = None) -> None: ...


def _read_pem(spec: dict[str, Any], name: str, path: tuple[Any, ...], ctx: Problems) -> str | None:
    if spec.get(name):
        return str(spec[name])
    file_name = spec.get(f"{name}_file")
    if not file_name:
        return None
    file_path = Path(file_name).expanduser()
    if not file_path.is_absolute() and ctx.folder is not None:
        file_path = ctx.folder / file_path
    try:
        return file_path.read_text(encoding="utf-8")
    except OSError as exc:
        ctx.problem(path + (f"{name}_file",), f"cannot read {file_path}: {exc.strerror or exc}")
        return None


def read_key(
    spec: dict[str, Any], path: tuple[Any, ...], rng: random.Random, ctx: Problems
) -> MftKey:
    """The key a scenario entry names (inline or `*_file` PEM) or one generated from `rng`."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

    key_id = str(spec.get("id") or str(uuid.UUID(int=rng.getrandbits(128), version=4)))
    wanted = spec.get("algorithm")
    private_pem = _read_pem(spec, "private_key", path, ctx)
    public_pem = _read_pem(spec, "public_key", path, ctx)
    private_key: Any = None
    public_key: Any = None
    try:
        if private_pem:
            private_key = serialization.load_pem_private_key(private_pem.encode(), password=None)
            public_key = private_key.public_key()
        elif public_pem:
            public_key = serialization.load_pem_public_key(public_pem.encode())
    except (ValueError, TypeError) as exc:
        ctx.problem(path, f"cannot load the PEM key: {exc}")
        wanted = wanted or "ES256"
    if public_key is None:  # generate, deterministically where the library allows it
        wanted = wanted or "ES256"
        if wanted == "ES256":
            order = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
            private_key = ec.derive_private_key(1 + rng.randrange(order - 1), ec.SECP256R1())
        elif wanted == "EdDSA":
            private_key = ed25519.Ed25519PrivateKey.from_private_bytes(rng.randbytes(32))
        else:  # RSA generation cannot be seeded: a fresh key on every start
            private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        public_key = private_key.public_key()
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        algorithm = "ES256"
        if not isinstance(public_key.curve, ec.SECP256R1):
            ctx.problem(path, f"EC keys must be P-256 (ES256), not {public_key.curve.name}")
    elif isinstance(public_key, rsa.RSAPublicKey):
        algorithm = "RS256"
        if public_key.key_size < 2048:
            ctx.problem(
                path, f"RSA keys must have at least 2048 bits, this one has {public_key.key_size}"
            )
    elif isinstance(public_key, ed25519.Ed25519PublicKey):
        algorithm = "EdDSA"
    else:
        ctx.problem(path, "the key must be EC P-256, RSA >= 2048 or Ed25519")
        algorithm = "ES256"
    if wanted and wanted != algorithm:
        ctx.problem(
            path + ("algorithm",),
            f"algorithm {wanted} does not match the key, which is {algorithm}",
        )
    private_out = None
    if private_key is not None:
        private_out = private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
    public_out = public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()
    allow: list[str] = []
    for i, cidr in enumerate(spec.get("allow_ips") or []):
        try:
            allow.append(str(ipaddress.ip_network(str(cidr), strict=False)))
        except ValueError:
            ctx.problem(path + ("allow_ips", i), f"{cidr!r} is not an IP address or CIDR")
    return MftKey(key_id, algorithm, public_out, private_out, tuple(allow))
