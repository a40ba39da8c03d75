"""The one error type every graphcompiler failure is reported with."""

from __future__ import annotations


class GraphError(Exception):
    """A problem with a project, graph or tensor, located as precisely as is known.

    ``where`` is a path into the project file (``networks.main.nodes[3].params.kernel``),
    ``node`` the id of the node at fault, ``file``/``line`` where the text lives.
    """

    def __init__(self, message: str, *, where: str | None = None, node: str | None = None,
                 file: str | None = None, line: int | None = None):
        super().__init__(message)
        self.message = message
        self.where = where
        self.node = node
        self.file = file
        self.line = line

    def located(self, *, where: str | None = None, file: str | None = None,
                line: int | None = None) -> "GraphError":
        """Return a copy with missing location parts filled in."""
        return type(self)(self.message, where=self.where or where, node=self.node,
                          file=self.file or file, line=self.line or line)

    def __reduce__(self):
        # Keeps the location when the error crosses a process boundary (DataLoader workers).
        return _rebuild, (type(self), self.message, self.where, self.node, self.file, self.line)

    def __str__(self) -> str:
        prefix = ""
        if self.file:
            prefix = f"{self.file}:{self.line}: " if self.line else f"{self.file}: "
        if self.where:
            prefix += f"{self.where}: "
        return prefix + self.message


def _rebuild(kind: type, message: str, where, node, file, line) -> GraphError:
    return kind(message, where=where, node=node, file=file, line=line)


def short_repr(value: object, limit: int = 60) -> str:
    """repr() cut to ``limit`` characters, so one bad value cannot flood an error line."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."
