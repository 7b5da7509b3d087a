"""The graph of a pipeline file, checked with positions: duplicate ids, unknown needs,
self-needs, cycles (reported once, at the need that closes them), and the step
references of templates (a template may only read steps it depends on).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mftrun.checks import Checks, Path, suggest
from mftrun.errors import Problem
from mftrun.loader import Document


class GraphChecks(Checks):
    def __init__(
        self,
        doc: Document,
        problems: list[Problem],
        templates: list[tuple[str, Path, frozenset[str]]],  # (step, path, step refs)
    ) -> None:
        super().__init__(doc, problems)
        self.templates = templates

    def graph(self, raw_steps: list[Any]) -> None:
        """Duplicate ids, unknown needs, self-needs, cycles, template step references."""
        from mftrun.plan import find_cycles

        first: dict[str, int] = {}
        needs: dict[str, list[str]] = {}
        need_paths: dict[tuple[str, str], Path] = {}
        for index, raw in enumerate(raw_steps):
            if not isinstance(raw, dict) or not isinstance(raw.get("id"), str):
                continue
            sid = raw["id"]
            if sid in first:
                line = self.pos(("steps", first[sid], "id")).line
                self.problem(
                    ("steps", index, "id"),
                    f"duplicate step id {sid!r} (first at line {line})",
                    "step ids must be unique; rename one",
                )
                continue
            first[sid] = index
        for sid, index in first.items():
            raw_needs = raw_steps[index].get("needs")
            needs[sid] = []
            if not isinstance(raw_needs, list):
                continue
            for j, need in enumerate(raw_needs):
                if not isinstance(need, str):
                    continue
                npath = ("steps", index, "needs", j)
                if need == sid:
                    self.problem(npath, f"step {sid!r} needs itself", "remove it from needs")
                elif need not in first:
                    self.problem(
                        npath,
                        f"step {sid!r} needs unknown step {need!r}",
                        suggest(need, first) or "needs lists ids of other steps",
                    )
                else:
                    needs[sid].append(need)
                    need_paths.setdefault((sid, need), npath)
        for cycle in find_cycles(needs):
            closer, closed, ring = self.closing_need(cycle, first, need_paths)
            self.problem(
                need_paths[(closer, closed)],
                f"dependency cycle: {' -> '.join(ring)}",
                "each step in the cycle needs the one before it; this need of "
                f"{closer!r} on {closed!r} closes it: remove it, or another need of the cycle",
            )
        self.template_references(first, needs)

    def closing_need(
        self,
        cycle: list[str],
        first: Mapping[str, int],
        need_paths: Mapping[tuple[str, str], Path],
    ) -> tuple[str, str, list[str]]:
        """The needs entry that closes a cycle, and the cycle written to end with it.

        A pipeline written top-down needs only steps above; the entry that needs a step
        further down the file is the one that closes the loop (of several, the last in the
        file). The cycle is reported once, at that entry, and written starting from the step
        that has it, so its last arrow is that need."""
        nodes = cycle[:-1]  # cycle[k] is needed by cycle[k + 1]; it ends where it began
        edges = [(nodes[(k + 1) % len(nodes)], nodes[k]) for k in range(len(nodes))]
        forward = [(s, t) for s, t in edges if first[t] > first[s]] or edges

        def where(edge: tuple[str, str]) -> tuple[int, int]:
            position = self.pos(need_paths[edge])
            return position.line, position.column

        closer, closed = max(forward, key=where)
        start = nodes.index(closer)
        ring = nodes[start:] + nodes[:start] + [closer]
        return closer, closed, ring

    def template_references(self, ids: Mapping[str, int], needs: Mapping[str, list[str]]) -> None:
        upstream: dict[str, frozenset[str]] = {}
        for sid, path, refs in self.templates:
            for ref in sorted(refs):
                if ref not in ids:
                    hyphenated = [i for i in ids if i.startswith(ref + "-")]
                    hint = (
                        f"a step id with '-' is written steps['{hyphenated[0]}']"
                        if hyphenated
                        else suggest(ref, ids) or "steps.<id> must name a step of this file"
                    )
                    self.problem(path, f"template refers to unknown step {ref!r}", hint)
                    continue
                if ref in needs.get(sid, ()):
                    continue
                if sid not in upstream:
                    upstream[sid] = _ancestors(sid, needs)
                if ref not in upstream[sid]:
                    what = "itself" if ref == sid else f"step {ref!r}"
                    self.problem(
                        path,
                        f"step {sid!r} reads steps.{ref} but does not depend on {what}",
                        "a step's own result is `result`/`response`"
                        if ref == sid
                        else f"add {ref!r} to the needs of {sid!r}",
                    )


def _ancestors(sid: str, needs: Mapping[str, list[str]]) -> frozenset[str]:
    from mftrun.plan import ancestors_of

    return ancestors_of(sid, needs)
