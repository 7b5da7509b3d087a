"""`mftrun schema`: print the pipeline JSON Schema (for editors and other tools)."""

from __future__ import annotations

import argparse

HELP = "print the pipeline JSON Schema"


def configure(parser: argparse.ArgumentParser) -> None:
    pass


def run(args: argparse.Namespace) -> int:
    import sys

    from mftrun.schema import schema_text

    text = schema_text()
    sys.stdout.write(text if text.endswith("\n") else text + "\n")
    return 0
