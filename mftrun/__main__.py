"""`python -m mftrun`. A Ctrl-C while the command line module is still being imported exits
130 like one during the run, not with a traceback (issue 15 item 18)."""

try:
    from mftrun.cli import main

    code = main()
except KeyboardInterrupt:
    import sys

    print("mftrun: interrupted", file=sys.stderr)
    code = 130
raise SystemExit(code)
