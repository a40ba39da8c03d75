"""The labels file: a dataset's class names in class-index order, one per line, UTF-8.

``netcanvas dataset from-folders`` writes it as ``labels.txt``; a project names it with
``dataset.labels``, and evaluation, export and the designer read the names from it. Line ``i``
names class ``i``; a final newline is optional, and nothing else (comments, blank lines) is allowed,
so a line can never be taken for a class or miss one.
"""

from __future__ import annotations

import os
from pathlib import Path

from graphcompiler.atomic import write_text

from .csvdata import DataError


def format_labels(names: list[str]) -> str:
    """The text of a labels file naming ``names`` in order; a name a line cannot hold is refused."""
    for name in names:
        if not name.strip() or "\n" in name or "\r" in name or name != name.strip():
            raise ValueError(f"class name {name!r} cannot be one line of a labels file (blank, a line break, "
                             "or spaces at either end)")
    if len(set(names)) != len(names):
        raise ValueError(f"class names repeat: {names}")
    return "".join(f"{name}\n" for name in names)


def write_labels(path: str | os.PathLike, names: list[str]) -> None:
    """Write the labels file atomically."""
    write_text(path, format_labels(names))


def read_labels(path: str | os.PathLike) -> tuple[str, ...]:
    """The class names of a labels file; DataError names the file and line of any problem."""
    file = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise DataError("no such labels file; check dataset.labels (relative to the project file)",
                        file=file) from None
    except UnicodeDecodeError as exc:
        raise DataError(f"not UTF-8 text ({exc.reason} at byte {exc.start}); save the labels file as UTF-8",
                        file=file) from None
    except OSError as exc:
        raise DataError(f"cannot read the labels file: {exc.strerror or exc}", file=file) from None
    names = text.splitlines()
    if not names:
        raise DataError("the labels file is empty; write one class name per line, class 0 first", file=file)
    seen: dict[str, int] = {}
    for line, name in enumerate(names, start=1):
        if not name.strip():
            raise DataError("blank line: every line names one class, in class-index order", file=file, line=line)
        if name in seen:
            raise DataError(f"class name {name!r} repeats line {seen[name]}", file=file, line=line)
        seen[name] = line
    return tuple(names)


def class_name(names: tuple[str, ...] | None, index: int) -> str:
    """Class ``index`` by its name, or by its number where the labels file does not name it."""
    return names[index] if names is not None and index < len(names) else str(index)
