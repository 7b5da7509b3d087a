"""Writing secrets to disk (the emulator's generated key and env.sh) without being tricked.

Why this care: `mftrun emulate --credentials-dir DIR` writes into a folder the user
names, often under /tmp. Opened the ordinary way, a symbolic link planted there
beforehand makes mftrun overwrite (and chmod 0600) whatever file the link points
at, and a file created with the default umask is readable by others until the
chmod that follows. Here the folder is opened once, each entry already there is
unlinked (a link is removed, never followed), and the file is created exclusively
(`O_EXCL | O_NOFOLLOW`) relative to that folder with its final mode from the
first instant: a link planted in between makes the write fail, it cannot redirect it.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from mftrun.errors import UsageError


def private_folder(folder: Path) -> Path:
    """Create `folder` (0700) if missing; refuse one that other users could write into."""
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    info = folder.stat()
    if not stat.S_ISDIR(info.st_mode):
        raise UsageError(f"{folder} is not a folder")
    # sticky or not: in a shared folder (/tmp) another user's planted entry cannot be
    # removed, so "replaced, never followed" could not hold there
    shared = info.st_mode & 0o022
    if hasattr(os, "getuid") and (info.st_uid != os.getuid() or shared):
        raise UsageError(
            f"refusing to write credentials into {folder}: "
            + (
                "it belongs to another user"
                if info.st_uid != os.getuid()
                else "others can write to it"
            ),
            hint="use a folder of your own, e.g. a new one under your home folder",
        )
    return folder


def write_private(folder: Path, name: str, text: str, *, mode: int = 0o600) -> Path:
    """Write `text` to `folder/name` as a new file of `mode`, never through a link."""
    if "/" in name or name in ("", ".", ".."):
        raise ValueError(f"not a plain file name: {name!r}")
    flags_dir = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0)
    dir_fd = os.open(folder, flags_dir)
    try:
        try:
            os.unlink(name, dir_fd=dir_fd)  # a planted link goes; its target is untouched
        except FileNotFoundError:
            pass
        except IsADirectoryError:
            raise UsageError(f"{folder / name} is a folder; remove it first") from None
        except PermissionError:  # e.g. another user's link in a sticky folder such as /tmp
            raise UsageError(
                f"cannot replace {folder / name}: it belongs to another user",
                hint="use a folder of your own for the credentials",
            ) from None
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
        try:
            fd = os.open(name, flags, mode, dir_fd=dir_fd)
        except FileExistsError:
            raise UsageError(
                f"{folder / name} appeared while mftrun was writing it",
                hint="another process writes into this folder; use a folder of your own",
            ) from None
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            os.fchmod(fh.fileno(), mode)  # the umask may have taken bits the mode asks for
            fh.write(text)
    finally:
        os.close(dir_fd)
    return folder / name
