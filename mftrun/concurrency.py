"""How many threads make HTTP calls, and so how many connections a session keeps.

Why one place: `max_parallel` is how many steps may be *active* (remote runs in
flight), not how many HTTP calls are sent at once. A waiting run is an entry in
the executor's timer heap; only a small pool of workers sends requests. Sizing
anything by `max_parallel` (threads, or urllib3's connection pool, which fills a
queue with one slot per connection when it is created) made a huge value lock
`apply` up before the first request; sizing both by the worker count keeps
10,000 (or any number of) runs in flight as cheap as eight.
"""

from __future__ import annotations

WORKERS_MAX = 32  # more threads do not send more: 2 cores, one interpreter lock (bench/)
WORKERS_MIN = 2  # a start may sleep in a retry while another step's poll is due


def worker_count(max_parallel: int) -> int:
    """Worker threads for a run of at most `max_parallel` active steps."""
    return max(WORKERS_MIN, min(WORKERS_MAX, max_parallel))


def connection_pool_size(max_parallel: int) -> int:
    """Keep-alive connections per session: one per worker that can be sending at once."""
    return worker_count(max_parallel)
