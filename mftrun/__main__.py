"""`python -m mftrun`. A Ctrl-C while the command line module is still being imported exits
130 like one during the run, not with a traceback (issue 15 item 18)."""

try:
    from mftrun.cli import main

    code = main()
except KeyboardInterrupt:
    import sys

    print("mftrun: interrupted", file=sys.stderr)
    code = 130
# The exit code is decided (and written in the reports): a signal now must not change it.
import signal  # noqa: E402 - only needed here

signal.signal(signal.SIGINT, signal.SIG_IGN)
signal.signal(signal.SIGTERM, signal.SIG_IGN)
raise SystemExit(code)
