"""The Acronis token source: POST <base>/api/2/idp/token with the API client's credentials."""

from __future__ import annotations

import base64
from typing import Any

from mftrun.clock import Clock
from mftrun.http.auth import CredentialSource, read_token_answer
from mftrun.http.retry import RetryPolicy, call_with_retry
from mftrun.http.session import HttpTransport

ACRONIS_CLIENT_HINT = (
    "check client_id and client_secret, and that the base_url is the data centre "
    "where the API client was created"
)


class AcronisTokenSource:
    """POST <base>/api/2/idp/token, HTTP Basic client_id:client_secret, form grant_type."""

    def __init__(
        self,
        transport: HttpTransport,
        creds: CredentialSource,
        *,
        clock: Clock,
        redactor: Any,
        policy: RetryPolicy,
        env_name: str,
    ) -> None:
        self._transport = transport
        self._creds = creds
        self._clock = clock
        self._redactor = redactor
        self._policy = policy
        self._env_name = env_name
        self.url = transport.url("/api/2/idp/token")

    def __call__(self) -> tuple[str, float | None]:
        client_id = self._creds.get("client_id", secret=False)
        secret = self._creds.get("client_secret", secret=True)
        # The Basic header's value is a secret too, should a proxy or the platform echo it.
        self._redactor.add(base64.b64encode(f"{client_id}:{secret}".encode()).decode("ascii"))

        def send() -> Any:
            return self._transport.send(
                "POST",
                self.url,
                data={"grant_type": "client_credentials"},
                auth=(client_id, secret),
            )

        response = call_with_retry(send, self._policy, clock=self._clock).response
        body = read_token_answer(
            response,
            url=self.url,
            env_name=self._env_name,
            redactor=self._redactor,
            rejected=(400, 401),
            hint=ACRONIS_CLIENT_HINT,
        )
        if isinstance(body.get("id_token"), str):
            self._redactor.add(body["id_token"])
        expires_on = body.get("expires_on")
        if isinstance(expires_on, (int, float)) and not isinstance(expires_on, bool):
            return body["access_token"], max(
                30.0, float(expires_on) - self._clock.now().timestamp()
            )
        lifetime = body.get("expires_in")
        return body["access_token"], float(lifetime) if isinstance(lifetime, (int, float)) else None
