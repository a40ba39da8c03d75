"""Reading a project file's text, refusing what is not a project before reading it.

A project symlinked to /dev/zero read until memory ran out, and one pointing at a FIFO waited forever:
the file is opened without waiting, and checked to be a regular file under MAX_FILE_BYTES, first.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from .errors import GraphError
from .limits import MAX_FILE_BYTES


def project_text(path: str | os.PathLike) -> str:
    """The UTF-8 text of a project file; GraphError naming the file when it cannot or should not be read."""
    try:
        # O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer.
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as exc:
        raise GraphError("no such file" if isinstance(exc, FileNotFoundError) else f"cannot read: {exc}",
                         file=str(path)) from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            kind = "a folder" if stat.S_ISDIR(info.st_mode) else "a device, pipe or socket, not a regular file"
            raise GraphError(f"cannot read: it is {kind}; give the path of a .graph.yaml file", file=str(path))
        # One byte past the limit is read: a file can grow between fstat and read.
        with os.fdopen(fd, "rb", closefd=False) as handle:
            data = handle.read(MAX_FILE_BYTES + 1) if info.st_size <= MAX_FILE_BYTES else b""
    finally:
        os.close(fd)
    if info.st_size > MAX_FILE_BYTES or len(data) > MAX_FILE_BYTES:
        size = max(info.st_size, len(data)) / 2 ** 20
        raise GraphError(f"cannot read: it is {size:,.0f} MB, over the {MAX_FILE_BYTES // 2 ** 20} MB a project "
                         "file may be: a project is text, and a 100,000-node one is under 10 MB; is this the right "
                         "file?", file=str(path))
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise GraphError(f"cannot read: {exc}", file=str(path)) from None
