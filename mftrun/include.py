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
    first_from: dict[Path, tuple[str, int]] = {}  # (section, name) -> (file, line) of 1st include
    own = {(s, n) for s in SECTIONS if isinstance(data.get(s), dict) for n in data[s]}
    _include(
        doc, merged, root, cache, [FsPath(doc.file).resolve()], own, first_from, problems, digests
    )
    if digests:  # a changed environments file is a changed pipeline (reports, history)
        merged.sha256 = hashlib.sha256("".join([doc.sha256, *digests]).encode()).hexdigest()
    return merged, problems


def _include(
    doc: Document,
    merged: Document,
    root: FsPath,
    cache: Cache,
    chain: list[FsPath],
    own: set[Path],
    first_from: dict[Path, tuple[str, int]],
    problems: list[Problem],
    digests: list[str],
) -> None:
    entries = doc.data.get("include") if isinstance(doc.data, dict) else None
    if not isinstance(entries, list):
        return  # the schema says include is a list
    base = FsPath(doc.file)
    for i, entry in enumerate(entries):
        if not isinstance(entry, str) or not entry:
            continue
        where = ("include", i)
        if not _relative(entry):
            problems.append(
                doc.problem(
                    where,
                    f"include {entry!r} is not a relative path",
                    "write the path relative to this file, e.g. include: [../environments.yaml]",
                )
            )
            continue
        target = (base.resolve().parent / entry).resolve()
        if not target.is_relative_to(root):
            problems.append(
                doc.problem(
                    where,
                    f"include {entry!r} leaves the repository ({root})",
                    "included files live in the same git work tree as the pipeline",
                )
            )
            continue
        if target in chain:
            ring = [_shown(p, root) for p in chain[chain.index(target) :]] + [_shown(target, root)]
            problems.append(doc.problem(where, f"include cycle: {' -> '.join(ring)}"))
            continue
        if len(chain) > MAX_DEPTH:
            problems.append(doc.problem(where, f"includes nest deeper than {MAX_DEPTH} files"))
            continue
        shown = os.path.normpath(os.path.join(os.path.dirname(doc.file), entry))
        included, own_problems = _load(target, shown, cache)
        if target not in cache.reported:
            cache.reported.add(target)
            problems.extend(own_problems)
        if included is None:
            if not own_problems:
                problems.append(doc.problem(where, f"include {entry!r}: no such file"))
            continue
        digests.append(included.sha256)
        _merge(included, merged, own, first_from, problems)
        _include(
            included, merged, root, cache, [*chain, target], own, first_from, problems, digests
        )


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


def _merge(
    included: Document,
    merged: Document,
    own: set[Path],
    first_from: dict[Path, tuple[str, int]],
    problems: list[Problem],
) -> None:
    data = included.data if isinstance(included.data, dict) else {}
    for section in SECTIONS:
        values = data.get(section)
        if not isinstance(values, dict):
            continue
        target = merged.data.setdefault(section, {})
        if not isinstance(target, dict):
            continue  # the pipeline's own section has the wrong type: the schema says so
        if (section,) not in merged.positions:
            merged.origins[(section,)] = included.file
            merged.positions[(section,)] = included.positions.get((section,), (1, 1))
        for name, value in values.items():
            key = (section, name)
            if key in own:
                continue  # what the including file writes itself wins
            if key in first_from:
                file, line = first_from[key]
                problems.append(
                    included.problem(
                        key,
                        f"{section}.{name} is defined by two included files "
                        f"(first in {file} line {line})",
                        "keep one definition, or write it in the pipeline file, which wins",
                        key=True,
                    )
                )
                continue
            first_from[key] = (included.file, included.position(key, key=True).line)
            target[name] = value
            merged.origins[key] = included.file
            for path, spot in included.positions.items():
                if path[:2] == key:
                    merged.positions[path] = spot
            for path, spot in included.key_positions.items():
                if path[:2] == key:
                    merged.key_positions[path] = spot


def _relative(entry: str) -> bool:
    return not (
        os.path.isabs(entry)
        or entry.startswith(("~", "/", "\\"))
        or (len(entry) > 1 and entry[1] == ":")
    )


def _shown(path: FsPath, root: FsPath) -> str:
    return path.relative_to(root).as_posix() if path.is_relative_to(root) else str(path)
