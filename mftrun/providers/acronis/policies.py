"""How the Acronis provider retries: the platform documents "5xx: retry twice, 1-2 s apart"."""

from __future__ import annotations

from mftrun.http.retry import READ, START, Policies

ACRONIS_READ = READ.replace(retries=2, backoff_factor=1.0, backoff_max=2.0, jitter=1.0)
ACRONIS_POLL = ACRONIS_READ.replace(inline_retry_after=False)
ACRONIS_POLICIES = Policies(read=ACRONIS_READ, poll=ACRONIS_POLL, start=START)
