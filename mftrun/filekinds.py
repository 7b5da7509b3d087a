"""Tell an emulator scenario file from a pipeline file, so hooks can walk mixed folders.

Pipelines and scenarios are both YAML and often live side by side (`scenarios/` next to
the pipelines, as in this repository). `validate --skip-scenarios` (what the pre-commit
hook runs) must not report a scenario as a broken pipeline, yet must never skip a broken
pipeline: so a file counts as a scenario only on positive evidence.

Plain `validate` goes further and validates scenarios *as scenarios*: besides that
evidence, a file in a folder named `scenarios` (the convention of this repository and of
`docs/emulator.md`) that has no pipeline key is a scenario, so a scenario with a typo in a
top-level key is reported with the scenario's own message, not as a broken pipeline. That
is safe because nothing is skipped: either way the file's problems are reported.
"""

from __future__ import annotations

import re
from pathlib import Path

from mftrun.errors import MftrunError, Problem, ValidationFailed

# The top-level keys of schemas/scenario.schema.json (which allows no others).
SCENARIO_KEYS = frozenset({"seed", "speed", "automate_mft", "acronis", "faults"})
# Keys only a pipeline has; their presence rules a scenario out.
PIPELINE_KEYS = frozenset({"version", "steps", "environments"})

_MODELINE = re.compile(rb"#\s*yaml-language-server:\s*\$schema=(\S+)")


def is_scenario(path: str | Path) -> bool:
    """True if the file says it is a scenario (its modeline) or has only scenario keys."""
    try:
        raw = Path(path).read_bytes()
    except OSError:
        return False  # unreadable: let validation report it
    for line in raw.splitlines()[:5]:
        found = _MODELINE.search(line)
        if found:
            return found.group(1).endswith(b"scenario.schema.json")
    from mftrun.loader import top_level

    readable, doc = top_level(raw, str(path))
    if not readable:
        return False  # broken YAML is reported as a broken pipeline, with its position
    if not isinstance(doc, dict) or not doc:
        return False
    keys = {str(k) for k in doc}
    return not keys & PIPELINE_KEYS and keys <= SCENARIO_KEYS


SCENARIO_FOLDER = "scenarios"


def looks_like_scenario(path: str | Path) -> bool:
    """`is_scenario`, or the folder convention: under a `scenarios/` folder and no pipeline
    key (a pipeline there is still a pipeline). For validating, never for skipping."""
    if is_scenario(path):
        return True
    if SCENARIO_FOLDER not in Path(path).parent.parts:
        return False
    from mftrun.loader import top_level

    try:
        readable, doc = top_level(Path(path).read_bytes(), str(path))
    except OSError:
        readable, doc = False, None
    if not readable:
        return True  # broken YAML in scenarios/: reported by the scenario loader, positioned
    return not (isinstance(doc, dict) and {str(k) for k in doc} & PIPELINE_KEYS)


def check_scenario(path: str | Path) -> list[Problem]:
    """Every problem of one scenario file, positioned, as the emulator would report them."""
    from mftrun.emulator.scenario import load_scenario

    try:
        load_scenario(path)
    except ValidationFailed as exc:
        return list(exc.problems)
    except MftrunError as exc:
        return [Problem(str(path), 1, 1, exc.message, exc.hint)]
    return []
