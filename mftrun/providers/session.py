"""The generic `http` action, and the session-owning base both platform providers extend.

Why one base: every provider needs the same things, built lazily at first use
(so `validate`/`plan` never read a secret): the transport, the credentials, the
token cache, the auth flow, call counting per handle, and the same wording for
non-JSON, oversized and error answers. The `http` action rides on exactly that
session, so a user's ad-hoc call gets the same token, retries and safety.
"""

from __future__ import annotations

import os
import random
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from mftrun.clock import Clock, SystemClock
from mftrun.actions.http import HttpSpec
from mftrun.errors import AmbiguousStartError, AuthError, ConnectError, InputError, RemoteError
from mftrun.http.auth import AuthSession, CredentialSource, TokenCache, error_text
from mftrun.http.retry import DEFAULT_POLICIES, Policies, RetryLater, RetryPolicy
from mftrun.http.session import HttpTransport, NoResponseError, Timeouts
from mftrun.model import Environment
from mftrun.providers.base import Observation, StepContext

DEFAULT_EXPECT = (200, 201, 202, 204)
MAX_TEXT = 64 * 1024
# Methods whose call may be re-sent after an ambiguous failure. Not PUT, whatever HTTP says:
# Acronis starts a protection plan with `PUT /api/policy_management/v4/applications/run`, and
# a start must never be replayed blindly (api-contracts section 3).
IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "DELETE"})
_HIDDEN_HEADERS = frozenset({"authorization", "proxy-authorization", "set-cookie", "cookie"})


@dataclass(slots=True)
class Calls:
    """HTTP requests made for one handle (retries and replays included; token requests not)."""

    n: int = 0

    def __call__(self) -> None:
        self.n += 1


@dataclass(slots=True)
class HttpHandle:
    method: str
    path: str
    query: Any
    body: Any
    headers: dict[str, str]
    expect: frozenset[int]
    until: str | None
    calls: Calls = field(default_factory=Calls)
    poll_failures: int = 0


class SessionProvider:
    """Owns one environment's authenticated session; subclasses add their platform's actions."""

    name = "session"
    can_cancel = False
    renew_on: frozenset[int] = frozenset({401, 403})
    token_renew_margin = 60.0
    # The scheme word as each vendor's documentation writes it (Automate MFT's sample: "bearer";
    # Acronis: "Bearer"). RFC 7235 makes it case-insensitive, but a literal gateway need not be.
    auth_scheme = "bearer"

    def __init__(
        self,
        env: Environment,
        *,
        max_parallel: int = 8,
        redactor: Any,
        environ: Mapping[str, str] = os.environ,
        clock: Clock | None = None,
        policies: Policies | None = None,
    ) -> None:
        self.env = env
        self.redactor = redactor
        self.environ = environ
        self.clock = clock or SystemClock()
        self.policies = policies or self.default_policies()
        self.max_parallel = max_parallel
        self._lock = threading.Lock()
        self._session: AuthSession | None = None
        self._transport: HttpTransport | None = None
        self._rng = random.Random()

    # -- the session, built on first use -------------------------------------------------------

    @staticmethod
    def default_policies() -> Policies:
        return DEFAULT_POLICIES

    def token_source(self, transport: HttpTransport, creds: CredentialSource) -> Any:
        raise NotImplementedError

    def denied(self, status: int, call: str, response: Any) -> AuthError:
        raise NotImplementedError

    def session(self) -> AuthSession:
        with self._lock:
            if self._session is None:
                transport = HttpTransport(
                    self.env.base_url,
                    max_parallel=self.max_parallel,
                    ca_bundle=self.env.ca_bundle,
                    timeouts=Timeouts(
                        connect=min(10.0, self.env.http_timeout), read=self.env.http_timeout
                    ),
                    environ=self.environ,
                )
                self._transport = transport
                self.creds = creds = CredentialSource(
                    self.env.name,
                    self.env.credentials,
                    environ=self.environ,
                    redactor=self.redactor,
                )
                tokens = TokenCache(
                    self.token_source(transport, creds),
                    self.clock,
                    renew_margin=self.token_renew_margin,
                )
                self._session = AuthSession(
                    transport,
                    tokens,
                    clock=self.clock,
                    renew_on=self.renew_on,
                    denied=self.denied,
                    scheme=self.auth_scheme,
                )
            return self._session

    # -- the Provider interface ----------------------------------------------------------------

    def start(self, kind: str, spec: Any, ctx: StepContext) -> tuple[Any, Observation]:
        if isinstance(spec, HttpSpec):
            handle = http_handle(spec)
            return handle, self._http_call(handle, ctx, polling=False)
        return self.start_action(kind, spec, ctx)

    def poll(self, handle: Any, ctx: StepContext) -> Observation:
        """One poll; a transient failure (network, 5xx, 429 after the poll's own retries) is
        tolerated a few times in a row, because a two-hour wait should not die of a one-minute
        outage. The step timeout still bounds the whole wait."""
        try:
            if isinstance(handle, HttpHandle):
                observation = self._http_call(handle, ctx, polling=True)
            else:
                observation = self.poll_action(handle, ctx)
        except (ConnectError, RemoteError) as exc:
            transient = isinstance(exc, ConnectError) or (
                exc.status is not None and (exc.status >= 500 or exc.status == 429)
            )
            failures = getattr(handle, "poll_failures", 0) + 1
            poll = ctx.poll
            if not transient or failures > poll.failures_tolerated:
                raise
            handle.poll_failures = failures
            wait = min(poll.failure_backoff_max, poll.failure_backoff * 2 ** (failures - 1))
            reason = exc.message.splitlines()[0][:160]
            return Observation(
                state="running",
                run_id=getattr(handle, "run_id", None),
                retry_after=wait,
                remote_status=f"poll failed ({failures} of {poll.failures_tolerated} "
                f"tolerated), next try in {wait:g}s: {reason}",
            )
        if hasattr(handle, "poll_failures"):
            handle.poll_failures = 0
        return observation

    def start_action(self, kind: str, spec: Any, ctx: StepContext) -> tuple[Any, Observation]:
        raise InputError(f"provider {self.name} has no action {kind!r}")

    def ref(self, handle: Any) -> dict[str, str]:
        return {}  # an http call or a wait leaves nothing to re-attach to

    def attach(self, kind: str, spec: Any, ref: Mapping[str, str], ctx: StepContext) -> Any:
        raise RemoteError(
            f"a {kind} step of {self.name} cannot be re-attached to an earlier run",
            hint="run it again with --restart STEP if that is safe",
        )

    def poll_action(self, handle: Any, ctx: StepContext) -> Observation:
        raise InputError(f"provider {self.name} cannot poll {handle!r}")

    def cancel(self, handle: Any) -> bool:
        return False  # neither platform has a public cancel call; the report says the run may go on

    def http_calls(self, handle: Any) -> int:
        calls = getattr(handle, "calls", None)
        return calls.n if isinstance(calls, Calls) else 0

    def check(self) -> str:
        raise NotImplementedError

    def stats(self) -> dict[str, int]:
        session, transport = self._session, self._transport
        return {
            "token_requests": session.tokens.token_requests if session else 0,
            "http_requests": transport.requests_sent if transport else 0,
        }

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()

    # -- helpers for subclasses ----------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        *,
        policy: RetryPolicy,
        calls: Calls | None = None,
        params: Any = None,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> Any:
        return self.session().request(
            method, path, policy=policy, params=params, json=json, headers=headers, count=calls
        )

    def json_of(self, response: Any, call: str) -> Any:
        """The parsed body of an API answer; a clear RemoteError when it is not JSON."""
        try:
            return response.json()
        except ValueError:
            kind = response.headers.get("Content-Type") or "no content type"
            raise RemoteError(
                f"{call} answered {response.status_code} with a body that is not JSON "
                f"({kind}): {self.snippet(response)}",
                status=response.status_code,
                hint="is base_url right? a proxy, login or maintenance page may be "
                "answering instead of the API",
            ) from None

    def error(self, response: Any, call: str, what: str) -> RemoteError:
        status = response.status_code
        retried = getattr(response, "mftrun_retries", 0)
        after = f" after {retried + 1} tries" if retried else ""
        hint = None
        if status >= 500:
            hint = "the platform is having trouble; try again later"
        elif status == 429:
            hint = "the platform is rate limiting this client; lower max_parallel or try later"
        return RemoteError(
            f"{what}: {call} answered {status}{after}: {self.snippet(response)}",
            status=status,
            hint=hint,
        )

    def snippet(self, response: Any, limit: int = 300) -> str:
        text = self.redactor.scrub(error_text(response, 1 << 20))[:limit]  # scrub, then shorten
        return text.encode("unicode_escape", "backslashreplace").decode("ascii")[: limit + 40]

    # -- the http action -----------------------------------------------------------------------

    def _http_call(self, handle: HttpHandle, ctx: StepContext, *, polling: bool) -> Observation:
        policy = self.policies.read if handle.method in IDEMPOTENT else self.policies.start
        if polling:
            policy = (
                self.policies.poll
                if handle.method in IDEMPOTENT
                else policy.replace(inline_retry_after=False)
            )
        policy = policy.replace(
            statuses=policy.statuses - handle.expect,
            retry_after_statuses=policy.retry_after_statuses - handle.expect,
        )
        call = f"{handle.method} {handle.path or '(the webhook URL)'}"
        try:
            response = self.request(
                handle.method,
                handle.path,
                policy=policy,
                calls=handle.calls,
                params=handle.query,
                json=handle.body,
                headers=handle.headers,
            )
        except RetryLater as later:
            return Observation(
                state="running",
                remote_status=str(later.response.status_code),
                retry_after=later.seconds,
            )
        except NoResponseError as exc:
            if handle.method in IDEMPOTENT:
                raise
            raise AmbiguousStartError(
                f"{call}: {exc.message}; the server may have processed the request, so mftrun did "
                f"not send it again",
                hint="check on the platform whether it took effect before re-running this step",
            ) from None
        outputs = self.http_outputs(response)
        status = response.status_code
        if status not in handle.expect:
            expected = ", ".join(str(s) for s in sorted(handle.expect))
            return Observation(
                state="failed",
                remote_status=str(status),
                outputs=outputs,
                message=f"{call} answered {status} (expected {expected}): {self.snippet(response)}",
            )
        if handle.until is None:
            return Observation(state="success", remote_status=str(status), outputs=outputs)
        done = ctx.evaluate(handle.until, response=outputs)
        return Observation(
            state="success" if done else "running", remote_status=str(status), outputs=outputs
        )

    def http_outputs(self, response: Any) -> dict[str, Any]:
        try:
            body = response.json() if response.content else None
        except ValueError:
            body = None
        text = response.text or ""
        headers = {k: v for k, v in response.headers.items() if k.lower() not in _HIDDEN_HEADERS}
        return self.redactor.scrub_data(
            {
                "status_code": response.status_code,
                "json": body,
                "text": text[:MAX_TEXT],
                "headers": headers,
            }
        )


def http_handle(spec: HttpSpec) -> HttpHandle:
    """The handle of one call: the (rendered, checked) spec plus what the call counts."""
    return HttpHandle(
        method=spec.method,
        path=spec.path,
        query=list(spec.query) or None,
        body=spec.json,
        headers=dict(spec.headers),
        expect=spec.expect,
        until=spec.until,
    )
