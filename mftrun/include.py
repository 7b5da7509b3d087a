"""`include: [FILE, ...]`: environments, defaults and vars shared by many pipeline files.

Why a step between loading and the schema: once merged, the document is checked and built
as if it had been written in one file, so every rule applies to included values too; and
because each merged value keeps the file, line and column it was written at
(`Document.origins`), every problem with it points into the included file.

Rules (docs/pipeline-reference.md, "Shared definitions"):
- an included file provides only `environments`, `defaults`, `vars` (and may include
  further files itself); names are merged one by one: what the including file writes
  itself wins, and a name that two included files both define is an error;
- a path is relative to the file that includes it, and stays inside the repository: no
  absolute path, no `~`, nothing that resolves (symlinks followed) outside the root;
- the root is the git work tree of the pipeline file: the nearest folder upwards that
  holds `.git` (a folder, or a file in a linked worktree); outside a git work tree, the
  pipeline file's own folder;
- a cycle (a.yaml includes b.yaml includes a.yaml) is an error that shows its path.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path as FsPath

from mftrun.errors import Problem
from mftrun.loader import Document, Path, load_bytes

SECTIONS = ("environments", "defaults", "vars")
ALLOWED = frozenset((*SECTIONS, "include"))
MAX_DEPTH = 10


@dataclass(slots=True)
class Cache:
    """Included files loaded once per `validate` of many files, and their own problems
    (syntax, unknown keys) reported once, by the first file that includes them."""

    docs: dict[FsPath, tuple[Document | None, list[Problem]]] = field(default_factory=dict)
    reported: set[FsPath] = field(default_factory=set)


def is_definitions(data: object) -> bool:
    """Whether a document is a shared definitions file (what `include` brings in), not a
    pipeline: a mapping with no `version` or `steps` whose keys an included file may have."""
    if not isinstance(data, dict) or not data or "version" in data or "steps" in data:
        return False
    keys = [str(k) for k in data]
    return all(k in ALLOWED or k.startswith("x-") for k in keys) and any(k in ALLOWED for k in keys)


def repository_root(file: FsPath) -> FsPath:
    """The git work tree holding `file`, else the file's own folder."""
    folder = file.resolve().parent
    for candidate in (folder, *folder.parents):
        if (candidate / ".git").exists():
            return candidate
    return folder


def included_paths(doc: Document) -> list[FsPath]:
    """The resolved files a document includes directly (for `validate dir/`: not pipelines)."""
    data = doc.data if isinstance(doc.data, dict) else {}
    entries = data.get("include")
    base = FsPath(doc.file).resolve().parent
    if not isinstance(entries, list):
        return []
    return [(base / e).resolve() for e in entries if isinstance(e, str) and _relative(e)]


def resolve(doc: Document, cache: Cache | None = None) -> tuple[Document, list[Problem]]:
    """The document with its includes merged in, and the problems of the includes."""
    data = doc.data
    if not isinstance(data, dict) or "include" not in data:
        return doc, []
    cache = cache if cache is not None else Cache()
    root = repository_root(FsPath(doc.file))
    merged = Document(
        doc.file,
        {k: (dict(v) if k in SECTIONS and isinstance(v, dict) else v) for k, v in data.items()},
        doc.sha256,
        dict(doc.positions),
        dict(doc.key_positions),
        dict(doc.origins),
    )
    problems: list[Problem] = []
    digests: list[str] = []
    walk = _Walk(root, cache, problems, digests)
    found = walk.definitions(doc, [FsPath(doc.file).resolve()])
    own = {(s, n) for s in SECTIONS if isinstance(data.get(s), dict) for n in data[s]}
    for key, origin in found.items():
        if key not in own:
            _take(origin, key, merged)
    if digests:  # a changed environments file is a changed pipeline (reports, history)
        merged.sha256 = hashlib.sha256("".join([doc.sha256, *digests]).encode()).hexdigest()
    return merged, problems


@dataclass(slots=True)
class _Walk:
    """One walk over a pipeline's include tree.

    Each file's definitions are its own names, then those of its includes that it does not
    write itself (so the including file wins at every level, not only at the top); two
    includes of one file that both bring a name are a conflict, unless it is the same
    definition reached twice (a file included by two others, a diamond: merged once)."""

    root: FsPath
    cache: Cache
    problems: list[Problem]
    digests: list[str]
    done: dict[FsPath, dict[Path, Document]] = field(default_factory=dict)

    def definitions(self, doc: Document, chain: list[FsPath]) -> dict[Path, Document]:
        """(section, name) -> the document that writes it, for `doc` and what it includes."""
        data = doc.data if isinstance(doc.data, dict) else {}
        own: dict[Path, Document] = {
            (s, n): doc for s in SECTIONS if isinstance(data.get(s), dict) for n in data[s]
        }
        brought: dict[Path, Document] = {}
        for included, target in self._includes(doc, chain):
            if target in self.done:
                theirs = self.done[target]
            else:
                theirs = self.definitions(included, [*chain, target])
                self.done[target] = theirs
            for key, origin in theirs.items():
                if key in own:
                    continue  # what the including file writes itself wins
                first = brought.get(key)
                if first is None:
                    brought[key] = origin
                elif first is not origin:
                    self.problems.append(
                        origin.problem(
                            key,
                            f"{key[0]}.{key[1]} is defined by two included files "
                            f"(first in {first.file} line {first.position(key, key=True).line})",
                            "keep one definition, or write it in the file that includes "
                            "both, which wins",
                            key=True,
                        )
                    )
        return {**brought, **own}

    def _includes(self, doc: Document, chain: list[FsPath]) -> list[tuple[Document, FsPath]]:
        """The loaded files `doc` includes, in order, each once; refusals become problems."""
        entries = doc.data.get("include") if isinstance(doc.data, dict) else None
        if not isinstance(entries, list):
            return []  # the schema says include is a list
        base = FsPath(doc.file)
        loaded: list[tuple[Document, FsPath]] = []
        for i, entry in enumerate(entries):
            if not isinstance(entry, str) or not entry:
                continue
            where = ("include", i)
            if not _relative(entry):
                self.problems.append(
                    doc.problem(
                        where,
                        f"include {entry!r} is not a relative path",
                        "write the path relative to this file, "
                        "e.g. include: [../environments.yaml]",
                    )
                )
                continue
            target = (base.resolve().parent / entry).resolve()
            if not target.is_relative_to(self.root):
                self.problems.append(
                    doc.problem(
                        where,
                        f"include {entry!r} leaves the repository ({self.root})",
                        "included files live in the same git work tree as the pipeline",
                    )
                )
                continue
            if target in chain:
                ring = [_shown(p, self.root) for p in chain[chain.index(target) :]]
                ring.append(_shown(target, self.root))
                self.problems.append(doc.problem(where, f"include cycle: {' -> '.join(ring)}"))
                continue
            if any(target == seen for _, seen in loaded):
                self.problems.append(
                    doc.problem(where, f"include {entry!r} is listed twice", "list it once")
                )
                continue
            if len(chain) > MAX_DEPTH:
                self.problems.append(
                    doc.problem(where, f"includes nest deeper than {MAX_DEPTH} files")
                )
                continue
            if target.is_dir():
                if not entry.lower().endswith((".yaml", ".yml")):
                    continue  # the schema already says the name is not a YAML file's
                self.problems.append(
                    doc.problem(
                        where,
                        f"include {entry!r} is a folder",
                        "name the YAML file, e.g. include: [shared/environments.yaml]",
                    )
                )
                continue
            shown = os.path.normpath(os.path.join(os.path.dirname(doc.file), entry))
            included, own_problems = _load(target, shown, self.cache)
            if target not in self.cache.reported:
                self.cache.reported.add(target)
                self.problems.extend(own_problems)
            if included is None:
                if not own_problems:
                    self.problems.append(doc.problem(where, f"include {entry!r}: no such file"))
                continue
            if target not in self.done and included.sha256 not in self.digests:
                self.digests.append(included.sha256)
            loaded.append((included, target))
        return loaded


def _load(target: FsPath, shown: str, cache: Cache) -> tuple[Document | None, list[Problem]]:
    if target in cache.docs:
        return cache.docs[target]
    try:
        raw = target.read_bytes()
    except OSError:
        found: tuple[Document | None, list[Problem]] = (None, [])
    else:
        doc, problems = load_bytes(raw, shown)
        if doc is not None:
            problems = problems + _shape(doc)
        found = (doc, problems)
    cache.docs[target] = found
    return found


def _shape(doc: Document) -> list[Problem]:
    """An included file provides environments, defaults and vars, nothing else."""
    if not isinstance(doc.data, dict):
        return [doc.problem((), "an included file is a mapping of environments, defaults, vars")]
    return [
        doc.problem(
            (key,),
            f"{key!r} cannot come from an included file",
            "an included file provides environments, defaults and vars (and include); "
            "steps and the pipeline's own settings belong in the pipeline file",
            key=True,
        )
        for key in doc.data
        if key not in ALLOWED and not str(key).startswith("x-")
    ]


def _take(origin: Document, key: Path, merged: Document) -> None:
    """Copy one included definition, with where each part of it is written, into `merged`."""
    section, name = key
    target = merged.data.setdefault(section, {})
    if not isinstance(target, dict):
        return  # the pipeline's own section has the wrong type: the schema says so
    if (section,) not in merged.positions:
        merged.origins[(section,)] = origin.file
        merged.positions[(section,)] = origin.positions.get((section,), (1, 1))
    target[name] = origin.data[section][name]
    merged.origins[key] = origin.file
    # A value reached through a YAML alias or merge key has no position of its own: pin it
    # to where the included file would point, so it never falls back to another file's.
    spot = origin.position(key)
    merged.positions[key] = (spot.line, spot.column)
    key_spot = origin.position(key, key=True)
    merged.key_positions[key] = (key_spot.line, key_spot.column)
    for path, place in origin.positions.items():
        if path[:2] == key:
            merged.positions[path] = place
    for path, place in origin.key_positions.items():
        if path[:2] == key:
            merged.key_positions[path] = place


def _relative(entry: str) -> bool:
    return not (
        os.path.isabs(entry)
        or entry.startswith(("~", "/", "\\"))
        or (len(entry) > 1 and entry[1] == ":")
    )


def _shown(path: FsPath, root: FsPath) -> str:
    return path.relative_to(root).as_posix() if path.is_relative_to(root) else str(path)
