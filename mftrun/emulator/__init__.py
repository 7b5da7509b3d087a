"""A local server that speaks the Automate MFT and Acronis task-manager APIs.

    from mftrun.emulator import Emulator, Scenario, load_scenario
    with Emulator(Scenario.default()) as emu:
        emu.url, emu.credentials, emu.journal

See docs/emulator.md for the scenario format and the faults it can inject.
"""

from __future__ import annotations

from mftrun.emulator.journal import FaultRecord, Journal, RequestRecord, RunRecord
from mftrun.emulator.scenario import Scenario, load_scenario
from mftrun.emulator.server import Credentials, Emulator
from mftrun.emulator.wire import SteppedClock

__all__ = [
    "Credentials",
    "Emulator",
    "FaultRecord",
    "Journal",
    "RequestRecord",
    "RunRecord",
    "Scenario",
    "SteppedClock",
    "load_scenario",
]
