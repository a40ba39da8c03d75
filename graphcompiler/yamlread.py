"""Project text to plain data and the YAML node tree (the line of every value), parsed once.

libyaml's parser (when PyYAML has it) gives the events, and the nodes are built here with an explicit
stack: libyaml's own composer recurses in C and crashes the process on text nested ~100,000 deep, and
building the nodes here refuses aliases and duplicate keys as they come, with no second walk. Scalar tags
are resolved once per distinct text, since a large network repeats the same few values. The data is
built from the nodes by PyYAML's SafeConstructor, exactly as ``yaml.safe_load`` builds it.
"""

from __future__ import annotations

from typing import Any

import yaml
from yaml.events import (AliasEvent, MappingEndEvent, MappingStartEvent, ScalarEvent, SequenceEndEvent,
                         SequenceStartEvent)
from yaml.composer import ComposerError
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from .collector import paused
from .errors import GraphError
from .limits import MAX_DEPTH

LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
"""The C loader where PyYAML was built with libyaml, ten times as fast as the pure-Python one."""

_SEQ, _MAP = "tag:yaml.org,2002:seq", "tag:yaml.org,2002:map"


def read(text: str) -> tuple[Any, Node | None]:
    """The data of one YAML document and its node tree; GraphError for aliases, duplicate keys and depth, the
    yaml errors of the text otherwise."""
    loader = LOADER(text)
    try:
        with paused():
            tree = _compose(loader)
            return (loader.construct_document(tree) if tree is not None else None), tree
    finally:
        loader.dispose()


def _compose(loader: Any) -> Node | None:
    """The single document's nodes, built from the parser's events (StreamStart and DocumentStart first)."""
    loader.get_event()
    if loader.check_event(yaml.StreamEndEvent):
        return None
    loader.get_event()
    tags: dict[tuple[str, Any], str] = {}
    stack: list[Node] = []
    root = None
    while True:
        event = loader.get_event()
        if isinstance(event, ScalarEvent):
            tag = event.tag
            if tag is None or tag == "!":
                key = (event.value, event.implicit)
                tag = tags.get(key) or tags.setdefault(key, loader.resolve(ScalarNode, event.value, event.implicit))
            node = ScalarNode(tag, event.value, event.start_mark, event.end_mark, style=event.style)
        elif isinstance(event, (SequenceStartEvent, MappingStartEvent)):
            if len(stack) >= MAX_DEPTH:
                raise GraphError(f"nested more than {MAX_DEPTH} deep; a project is a few levels of mappings and "
                                 "lists", line=event.start_mark.line + 1)
            seq = isinstance(event, SequenceStartEvent)
            tag = event.tag if event.tag not in (None, "!") else _SEQ if seq else _MAP
            node = (SequenceNode if seq else MappingNode)(tag, [], event.start_mark, None,
                                                          flow_style=event.flow_style)
            _attach(stack, node)
            stack.append(node)
            continue
        elif isinstance(event, (SequenceEndEvent, MappingEndEvent)):
            if isinstance(stack[-1], MappingNode):
                _check_keys(stack)
            node = stack.pop()
            node.end_mark = event.end_mark
            if stack:
                continue
            root = node
            break
        elif isinstance(event, AliasEvent):
            raise GraphError("YAML aliases (*name) are not supported in project files; write the value out",
                             where=_where(stack), line=event.start_mark.line + 1)
        else:
            raise GraphError(f"unexpected YAML event {type(event).__name__}", line=event.start_mark.line + 1)
        if not stack:
            root = node
            break
        _attach(stack, node)
    document_end = loader.get_event()
    if not loader.check_event(yaml.StreamEndEvent):
        raise ComposerError("expected a single document in the stream", document_end.start_mark,
                            "but found another document", loader.get_event().start_mark)
    return root


def _attach(stack: list[Node], node: Node) -> None:
    """Add ``node`` to the open collection; a mapping's value list holds (key, value) pairs."""
    if not stack:
        return
    parent = stack[-1]
    if isinstance(parent, SequenceNode):
        parent.value.append(node)
    elif parent.value and parent.value[-1][1] is None:
        parent.value[-1] = (parent.value[-1][0], node)
    else:
        parent.value.append((node, None))


def _check_keys(stack: list[Node]) -> None:
    """Refuse a key given twice in the mapping on top of the stack, naming both lines."""
    seen: dict[str, int] = {}
    for key, _ in stack[-1].value:
        if isinstance(key, ScalarNode):
            if key.value in seen:
                raise GraphError(f"duplicate key '{key.value}' (first on line {seen[key.value]})",
                                 where=_where(stack), line=key.start_mark.line + 1)
            seen[key.value] = key.start_mark.line + 1


def _where(stack: list[Node]) -> str | None:
    """The path (``networks.main.nodes[1]``) of the collection on top of the stack: each is its parent's last child."""
    where = ""
    for parent in stack[:-1]:
        if isinstance(parent, SequenceNode):
            where += f"[{len(parent.value) - 1}]"
        else:
            key = getattr(parent.value[-1][0], "value", "?")
            where += f".{key}" if where else str(key)
    return where or None
