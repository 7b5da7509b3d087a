"""Tell an emulator scenario file from a pipeline file, so hooks can walk mixed folders.

Pipelines and scenarios are both YAML and often live side by side (`scenarios/` next to
the pipelines, as in this repository). `validate --skip-scenarios` (what the pre-commit
hook runs) must not report a scenario as a broken pipeline, yet must never skip a broken
pipeline: so a file counts as a scenario only on positive evidence.
"""

from __future__ import annotations

import re
from pathlib import Path

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
    import yaml

    try:
        doc = yaml.safe_load(raw)
    except yaml.YAMLError:
        return False  # broken YAML is reported as a broken pipeline, with its position
    if not isinstance(doc, dict) or not doc:
        return False
    keys = {str(k) for k in doc}
    return not keys & PIPELINE_KEYS and keys <= SCENARIO_KEYS
