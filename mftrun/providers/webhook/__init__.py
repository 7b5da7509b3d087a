"""An incoming webhook (Slack, Teams, any URL): no platform, no token, only `http` calls."""

from __future__ import annotations

from mftrun.providers.platform import Platform

PLATFORM = Platform(
    name="webhook",
    actions=("http",),
    provider="mftrun.providers.webhook.provider:WebhookProvider",
)
