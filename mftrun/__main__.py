"""`python -m mftrun`. A Ctrl-C while the command line module is still being imported exits
130 like one during the run, not with a traceback (issue 15 item 18)."""

import signal

from mftrun.interrupts import after_imports, deliver_held

# before the command line module and what it imports: a Ctrl-C inside an import waits for it
signal.signal(signal.SIGINT, after_imports(signal.default_int_handler))
try:
    from mftrun.cli import main

    deliver_held()  # a Ctrl-C held while the command line module was imported
    code = main()
except KeyboardInterrupt:
    import sys

    print("mftrun: interrupted", file=sys.stderr)
    code = 130
# The exit code is decided (and written in the reports): a signal now must not change it.
signal.signal(signal.SIGINT, signal.SIG_IGN)
signal.signal(signal.SIGTERM, signal.SIG_IGN)
# CPython remembers a KeyboardInterrupt that left code run from a string by exec() (as the
# methods dataclasses and namedtuple write while a module is imported), even one caught and
# handled since, and `python -m` then ends the process by SIGINT (exit -2) instead of with
# `code` (Modules/main.c, _Py_UnhandledKeyboardInterrupt). Code run from a string that ends
# well forgets it. Seen as seed 1003 of the fault campaign: Ctrl-C 0.3 s into `apply`.
exec("")
raise SystemExit(code)
