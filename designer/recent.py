"""The recent-files list, kept in the user's config folder."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

LIMIT = 10


def _config_file() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config"
    return Path(base) / "netcanvas" / "recent.json"


def recent_files() -> list[str]:
    """Recently opened or saved project paths, newest first; a damaged list reads as empty."""
    try:
        items = json.loads(_config_file().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    return [p for p in items if isinstance(p, str)][:LIMIT] if isinstance(items, list) else []


def remember(path: str | Path) -> list[str]:
    """Put ``path`` first in the list and store it (atomically); returns the new list."""
    path = str(Path(path).resolve())
    items = [path] + [p for p in recent_files() if p != path]
    target = _config_file()
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".recent.", suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(items[:LIMIT], handle, indent=1)
        os.replace(tmp, target)
    except OSError:
        pass  # a read-only home must not stop the editor from working
    return items[:LIMIT]
