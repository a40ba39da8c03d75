"""Atomic file writes: a temporary file beside the target, flushed to disk, then renamed over it."""

from __future__ import annotations

import os
import re
import stat
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextmanager
def atomic_path(path: str | os.PathLike, durable: bool = True) -> Iterator[Path]:
    """Yield a temporary path to write; when the block ends cleanly it replaces ``path`` in one step.

    A crash or kill at any moment leaves either the old file or the new one, never a torn one.
    ``durable`` also flushes the data to disk first, so a power cut cannot lose it (slow for
    thousands of small files that can be written again). Through a symlink, the file it points to is
    written. Saving over a file also removes the temporary files a killed earlier save of it left.
    """
    # Renaming over a symlink would replace the link with a file: the file it points to is written instead.
    path = Path(os.path.realpath(path))
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    existed = path.exists()
    try:
        # mkstemp makes the file private; give it the mode the file had, or an ordinary new file's.
        os.chmod(tmp, stat.S_IMODE(path.stat().st_mode) if existed else 0o666 & ~_umask())
        yield Path(tmp)
        if durable:
            with open(tmp, "rb+") as handle:
                os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    # Only when a file is saved again: writing thousands of new files (a dataset's images) into one folder
    # would otherwise list the folder thousands of times.
    if existed:
        _remove_strays(path)


def _remove_strays(path: Path) -> None:
    """Delete temporary files of ``path`` older than it: left by a save that was killed before its rename.

    Only names mkstemp gives ours (``.NAME.`` + 8 of [a-z0-9_] + ``.tmp``); a newer one may be another
    save still writing, and is left alone.
    """
    ours = re.compile(re.escape(f".{path.name}.") + r"[a-z0-9_]{8}\.tmp")
    saved = path.stat().st_mtime_ns
    with os.scandir(path.parent) as entries:
        for entry in entries:
            try:
                if ours.fullmatch(entry.name) and entry.is_file(follow_symlinks=False) and \
                        entry.stat(follow_symlinks=False).st_mtime_ns < saved:
                    os.unlink(entry.path)
            except FileNotFoundError:
                pass  # removed meanwhile, by the save that made it or another cleanup


def write_text(path: str | os.PathLike, text: str) -> None:
    """Write a text file (UTF-8) atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_bytes(path: str | os.PathLike, data: bytes, durable: bool = True) -> None:
    """Write a binary file atomically."""
    with atomic_path(path, durable) as tmp:
        tmp.write_bytes(data)
