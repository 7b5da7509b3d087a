"""`mftrun state unlock KEY`: for the unusual case of a lock that must be removed by hand.

A dead holder never needs it (the kernel or PostgreSQL releases the lock with the process
or its connection); it exists for a holder that is alive but must be stopped from outside.
"""

from __future__ import annotations

import argparse

HELP = "state store housekeeping: unlock KEY"


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="state_command", metavar="ACTION")
    unlock = sub.add_parser("unlock", help="remove a run lock by hand, saying what it removes")
    unlock.add_argument("key", help="the lock key (the pipeline's name, or its `lock:`)")
    unlock.add_argument("--state", metavar="URL", help="state store (default: as apply)")
    unlock.add_argument("--file", metavar="PIPELINE", help="use the store next to this file")


def run(args: argparse.Namespace) -> int:
    import os

    from mftrun.errors import UsageError
    from mftrun.state.url import choose, open_store

    if getattr(args, "state_command", None) != "unlock":
        raise UsageError("say what to do: mftrun state unlock KEY")
    store = open_store(choose(args.state, os.environ), args.file)
    try:
        from mftrun.inert import inert_lines

        print(inert_lines(store.unlock(args.key)))
    finally:
        store.close()
    return 0
