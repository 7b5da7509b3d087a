"""mftrun.interrupts: a signal inside an import is held until the import ends, never lost."""

from __future__ import annotations

import signal
import sys
import time
import types

import pytest

from mftrun import interrupts


@pytest.fixture
def restore_signals():
    saved = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGALRM)}
    yield
    signal.setitimer(signal.ITIMER_REAL, 0)
    interrupts._held.clear()
    for s, h in saved.items():
        signal.signal(s, h)


class _Finder:
    """A meta-path finder that raises SIGINT while the import system is looking for `name`."""

    def __init__(self, name: str) -> None:
        self.name = name

    def find_spec(self, name, path=None, target=None):
        if name == self.name:
            signal.raise_signal(signal.SIGINT)
        return None


def _import_with_sigint(name: str) -> None:
    finder = _Finder(name)
    sys.meta_path.insert(0, finder)
    try:
        with pytest.raises(ModuleNotFoundError):
            __import__(name)
    finally:
        sys.meta_path.remove(finder)


def test_importing_tells_import_frames_from_others():
    seen = []
    finder = types.SimpleNamespace(
        find_spec=lambda name, path=None, target=None: seen.append(
            interrupts.importing(sys._getframe())
        )
    )
    sys.meta_path.insert(0, finder)
    try:
        with pytest.raises(ModuleNotFoundError):
            __import__("mftrun_no_such_module_1")
    finally:
        sys.meta_path.remove(finder)
    assert seen and all(seen)
    assert interrupts.importing(sys._getframe()) is False


def test_a_signal_outside_an_import_reaches_the_handler_at_once(restore_signals):
    got = []
    signal.signal(signal.SIGINT, interrupts.after_imports(lambda s, f: got.append(s)))
    signal.raise_signal(signal.SIGINT)
    assert got == [signal.SIGINT]
    assert interrupts._held == []


def test_a_signal_inside_an_import_is_held_then_delivered_by_the_retry(restore_signals):
    got = []
    signal.signal(signal.SIGINT, interrupts.after_imports(lambda s, f: got.append(s)))
    _import_with_sigint("mftrun_no_such_module_2")
    assert got == []  # not inside the import
    assert interrupts._held == [signal.SIGINT]
    deadline = time.monotonic() + 5
    while not got and time.monotonic() < deadline:
        time.sleep(0.01)
    assert got == [signal.SIGINT]
    assert interrupts._held == []


def test_the_held_signal_goes_to_the_handler_in_force_when_delivered(restore_signals):
    first, second = [], []
    signal.signal(signal.SIGINT, interrupts.after_imports(lambda s, f: first.append(s)))
    _import_with_sigint("mftrun_no_such_module_3")
    signal.signal(signal.SIGINT, lambda s, f: second.append(s))  # the run's own guard
    interrupts.deliver_held()
    assert first == [] and second == [signal.SIGINT]
    time.sleep(interrupts.RETRY_SECONDS * 3)
    assert second == [signal.SIGINT]  # the cancelled retry does not deliver it twice


def test_deliver_held_raises_keyboard_interrupt_under_the_default_handler(restore_signals):
    signal.signal(signal.SIGINT, interrupts.after_imports(signal.default_int_handler))
    _import_with_sigint("mftrun_no_such_module_4")
    with pytest.raises(KeyboardInterrupt):
        interrupts.deliver_held()


def test_a_held_signal_is_dropped_once_it_is_ignored(restore_signals):
    signal.signal(signal.SIGINT, interrupts.after_imports(signal.default_int_handler))
    _import_with_sigint("mftrun_no_such_module_5")
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the exit code is decided
    interrupts.deliver_held()  # no KeyboardInterrupt
    assert interrupts._held == []


def test_deliver_held_without_a_held_signal_does_nothing(restore_signals):
    got = []
    signal.signal(signal.SIGINT, lambda s, f: got.append(s))
    interrupts.deliver_held()
    assert got == []


def test_a_retry_pending_at_exit_does_not_end_the_process_by_sigalrm(tmp_path):
    """Found by CI: a signal held in an import just before the exit; the retry fired after
    the interpreter had restored SIGALRM's default action, and the process died with -14."""
    import subprocess

    code = (
        "import atexit, signal, sys\n"
        # registered first, so it runs last of the exit handlers: is a retry still armed?
        "atexit.register(lambda: print('armed', signal.getitimer(signal.ITIMER_REAL)[0] > 0))\n"
        "from mftrun import interrupts\n"
        "signal.signal(signal.SIGINT, interrupts.after_imports(lambda s, f: None))\n"
        "class F:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'mftrun_no_such_module_6':\n"
        "            signal.raise_signal(signal.SIGINT)\n"
        "sys.meta_path.insert(0, F())\n"
        "try:\n"
        "    import mftrun_no_such_module_6\n"
        "except ImportError:\n"
        "    pass\n"
        "assert interrupts._held\n"
        "sys.exit(7)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 7, proc.stderr
    assert proc.stdout.strip() == "armed False"
