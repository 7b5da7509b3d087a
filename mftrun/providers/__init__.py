"""Platform providers: the only place that knows URLs, JWTs and remote statuses."""
