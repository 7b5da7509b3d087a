"""load -> schema -> build (semantic checks) for one file or many; all problems at once.

Public API:
    load_pipeline(path) -> Pipeline            raises ValidationFailed / InputError
    check_paths(paths) -> (files, problems)    files or folders (recursive *.yaml/*.yml)
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING
from collections.abc import Sequence

from mftrun.errors import InputError, Problem, ValidationFailed
from mftrun.model import Pipeline

if TYPE_CHECKING:
    from mftrun.include import Cache
    from mftrun.loader import Document

SUFFIXES = (".yaml", ".yml")


def validate_bytes(
    raw: bytes, file: str, includes: Cache | None = None, shared: list[str] | None = None
) -> tuple[Pipeline | None, list[Problem]]:
    """Every problem of one file's content (and of the files it includes, found relative to
    `file`); the pipeline only when there are none. With `shared` (validate), a shared
    definitions file is checked as one and its name added there; without it (apply, plan)
    it is refused as not a pipeline."""
    from mftrun import build, include, loader, schema

    doc, problems = loader.load_bytes(raw, file)
    if doc is None:
        return None, problems
    if include.is_definitions(doc.data) and shared is not None:
        shared.append(file)
        return None, problems + _definitions_problems(doc, includes)
    if include.is_definitions(doc.data):
        name = os.path.basename(file)
        return None, problems + [
            Problem(
                file,
                1,
                1,
                f"{name} is a shared definitions file (environments, defaults, vars), "
                "not a pipeline: it has no steps",
                f"a pipeline brings it in with include: [{name}] (a path relative to the "
                "pipeline file); `mftrun validate` checks it on its own",
            )
        ]
    doc, included = include.resolve(doc, includes)
    problems = problems + included
    schema_problems = schema.check(doc)
    problems = problems + schema_problems
    try:
        pipeline, semantic = build.build_pipeline(doc)
    except Exception:
        # Only a document the schema already rejected may trip the builder; for a
        # schema-valid one this is a bug in mftrun and must surface as one.
        if not schema_problems:
            raise
        return None, problems
    # One message per node: the schema's wording wins where both speak.
    taken = {(p.line, p.column) for p in schema_problems}
    problems += [p for p in semantic if (p.line, p.column) not in taken]
    return (pipeline if not problems else None), problems


def _definitions_problems(doc: Document, includes: Cache | None) -> list[Problem]:
    """A shared definitions file (environments, defaults, vars that pipelines include),
    checked on its own as far as it can be without a pipeline: its includes, the schema of
    each section and each environment's rules."""
    from mftrun import build, include, loader, schema

    doc, problems = include.resolve(doc, includes)
    schema_problems = schema.check(doc, kind="definitions")
    problems = problems + schema_problems
    whole = loader.Document(
        doc.file,
        {**doc.data, "version": 1, "steps": []},
        doc.sha256,
        doc.positions,
        doc.key_positions,
        doc.origins,
    )
    try:
        _, semantic = build.build_pipeline(whole)
    except Exception:
        if not schema_problems:  # as in validate_bytes: only a rejected document may trip it
            raise
        return problems
    taken = {(p.line, p.column) for p in schema_problems}
    return problems + [p for p in semantic if (p.line, p.column) not in taken]


def _read(path: str | os.PathLike[str]) -> bytes:
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except FileNotFoundError:
        raise InputError(f"{os.fspath(path)}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"{os.fspath(path)} is a folder, not a pipeline file") from None
    except OSError as exc:
        raise InputError(f"cannot read {os.fspath(path)}: {exc.strerror or exc}") from None


def load_pipeline(path: str | os.PathLike[str]) -> Pipeline:
    """The validated pipeline of one file, or ValidationFailed with all its problems."""
    file = os.fspath(path)
    pipeline, problems = validate_bytes(_read(file), file)
    if problems or pipeline is None:
        raise ValidationFailed(problems or [Problem(file, 1, 1, "not a valid pipeline")])
    return pipeline


def excluded(path: Path, root: Path | None, patterns: Sequence[str]) -> bool:
    """Whether `--exclude GLOB` leaves a file out: the glob is matched (fnmatch, `*` crosses
    `/`) against the path as shown, the path below the folder given, and the file name."""
    import fnmatch

    if not patterns:
        return False
    names = {path.as_posix(), path.name}
    if root is not None:
        names.add(path.relative_to(root).as_posix())
    return any(fnmatch.fnmatch(name, pattern) for name in names for pattern in patterns)


def pipeline_files(
    paths: Sequence[str], exclude: Sequence[str] = ()
) -> tuple[list[Path], list[Problem]]:
    """Expand folders to their *.yaml/*.yml files (sorted); missing paths become problems."""
    files: list[Path] = []
    problems: list[Problem] = []
    for given in paths:
        path = Path(given)
        if path.is_dir():
            found = sorted(
                p
                for p in path.rglob("*")
                if p.suffix.lower() in SUFFIXES
                and p.is_file()
                and not any(part.startswith(".") for part in p.relative_to(path).parts)
                and not excluded(p, path, exclude)
            )
            if not found and not exclude:
                problems.append(Problem(str(path), 1, 1, "no *.yaml or *.yml files in this folder"))
            files.extend(found)
        elif path.exists():
            if not excluded(path, None, exclude):
                files.append(path)
        else:
            problems.append(Problem(str(path), 1, 1, "no such file or folder"))
    seen: set[Path] = set()  # `validate pipelines/ pipelines/a.yaml` checks a.yaml once
    unique = []
    for file in files:
        key = file.resolve()
        if key not in seen:
            seen.add(key)
            unique.append(file)
    return unique, problems


def check_paths(
    paths: Sequence[str], definitions: list[Path] | None = None
) -> tuple[list[Path], list[Problem]]:
    """Validate files and folders; return the files checked and every problem of every file.

    A file that another of them includes is checked once, as an included file (through the
    pipelines that include it), not as a pipeline of its own; a shared definitions file
    that none of them includes (a pre-commit hook given only the changed file) is checked on
    its own, as such, and added to `definitions` if given."""
    from mftrun.include import Cache

    files, problems = pipeline_files(paths)
    contents: list[tuple[Path, bytes]] = []
    for path in files:
        try:
            contents.append((path, _read(path)))
        except InputError as exc:
            problems.append(Problem(str(path), 1, 1, exc.message))
    included = _included_by(contents)
    cache = Cache()
    seen: set[Problem] = set(problems)
    for path, raw in contents:
        if path.resolve() in included:
            continue
        names: list[str] = []
        found = validate_bytes(raw, str(path), cache, shared=names)[1]
        if names and definitions is not None:
            definitions.append(path)
        for problem in found:
            if problem not in seen:  # a problem inside a shared file: once, not per includer
                seen.add(problem)
                problems.append(problem)
    return files, problems


def _included_by(contents: Sequence[tuple[Path, bytes]]) -> set[Path]:
    """The files some other file of the list includes (a quick look: only files that say
    `include`)."""
    from mftrun import include, loader

    found: set[Path] = set()
    for path, raw in contents:
        if b"include" not in raw:
            continue
        doc, _ = loader.load_bytes(raw, str(path))
        if doc is not None:
            found.update(include.included_paths(doc))
    return found
