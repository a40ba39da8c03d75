"""Project text to plain data and the YAML node tree (the line of every value), parsed once.

libyaml's parser (when PyYAML has it) gives the events, and the nodes are built here with an explicit
stack: libyaml's own composer recurses in C and crashes the process on text nested ~100,000 deep, and
building the nodes here refuses aliases and duplicate keys as they come, with no second walk. Scalar tags
are resolved, and scalars constructed by PyYAML's SafeConstructor, once per distinct text, since a large
network repeats the same few values; the dicts and lists are built beside the nodes, as ``yaml.safe_load``
builds them. A document with what only the SafeConstructor's own walk handles (merge keys, tagged
collections such as ``!!set``) is built by that walk instead.
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
            tree, data = _compose(loader)
            if data is _UNBUILT:
                data = loader.construct_document(tree)
            return data, tree
    finally:
        loader.dispose()


_UNBUILT = object()
"""The data of a document that only PyYAML's constructor walk can build."""
_NO_KEY = object()


def _compose(loader: Any) -> tuple[Node | None, Any]:
    """The single document's nodes and data, built from the parser's events (StreamStart and DocumentStart
    first); the data is _UNBUILT when the document needs the constructor's own walk."""
    loader.get_event()
    if loader.check_event(yaml.StreamEndEvent):
        return None, None
    loader.get_event()
    tags: dict[tuple[str, Any], str] = {}
    scalars: dict[tuple[str, str], Any] = {}
    stack: list[Node] = []
    built: list[list] = []  # beside each open node: [its dict or list, a mapping's key waiting for its value]
    root = data = None
    plain = True
    while True:
        event = loader.get_event()
        if isinstance(event, ScalarEvent):
            tag = event.tag
            if tag is None or tag == "!":
                key = (event.value, event.implicit)
                tag = tags.get(key) or tags.setdefault(key, loader.resolve(ScalarNode, event.value, event.implicit))
            node = ScalarNode(tag, event.value, event.start_mark, event.end_mark, style=event.style)
            value = scalars.get((tag, event.value), _NO_KEY)
            if tag in _SPECIAL_KEYS:
                plain = False
            elif value is _NO_KEY:
                value = scalars[(tag, event.value)] = loader.construct_object(node)
                loader.constructed_objects.clear()
        elif isinstance(event, (SequenceStartEvent, MappingStartEvent)):
            if len(stack) >= MAX_DEPTH:
                raise GraphError(f"nested more than {MAX_DEPTH} deep; a project is a few levels of mappings and "
                                 "lists", line=event.start_mark.line + 1)
            seq = isinstance(event, SequenceStartEvent)
            tag = event.tag if event.tag not in (None, "!") else _SEQ if seq else _MAP
            plain = plain and tag == (_SEQ if seq else _MAP)
            node = (SequenceNode if seq else MappingNode)(tag, [], event.start_mark, None,
                                                          flow_style=event.flow_style)
            value = [] if seq else {}
            _attach(stack, built, node, value)
            stack.append(node)
            built.append([value, _NO_KEY])
            continue
        elif isinstance(event, (SequenceEndEvent, MappingEndEvent)):
            if isinstance(stack[-1], MappingNode):
                _check_keys(stack)
            node = stack.pop()
            node.end_mark = event.end_mark
            value = built.pop()[0]
            if stack:
                continue
            root, data = node, value
            break
        elif isinstance(event, AliasEvent):
            raise GraphError("YAML aliases (*name) are not supported in project files; write the value out",
                             where=_where(stack), line=event.start_mark.line + 1)
        else:
            raise GraphError(f"unexpected YAML event {type(event).__name__}", line=event.start_mark.line + 1)
        if not stack:
            root, data = node, value
            break
        _attach(stack, built, node, value)
    document_end = loader.get_event()
    if not loader.check_event(yaml.StreamEndEvent):
        raise ComposerError("expected a single document in the stream", document_end.start_mark,
                            "but found another document", loader.get_event().start_mark)
    return root, data if plain else _UNBUILT


_SPECIAL_KEYS = ("tag:yaml.org,2002:merge", "tag:yaml.org,2002:value")
"""Keys (<<, =) that PyYAML's constructor gives a meaning of their own."""


def _attach(stack: list[Node], built: list[list], node: Node, value: Any) -> None:
    """Add ``node`` (and its data, ``value``) to the open collection; a mapping's node list holds (key, value)
    pairs."""
    if not stack:
        return
    parent, frame = stack[-1], built[-1]
    if isinstance(parent, SequenceNode):
        parent.value.append(node)
        frame[0].append(value)
    elif parent.value and parent.value[-1][1] is None:
        key_node = parent.value[-1][0]
        parent.value[-1] = (key_node, node)
        try:
            frame[0][frame[1]] = value
        except TypeError:
            raise yaml.constructor.ConstructorError("while constructing a mapping", parent.start_mark,
                                                    "found unhashable key", key_node.start_mark) from None
        frame[1] = _NO_KEY
    else:
        parent.value.append((node, None))
        frame[1] = value


def _check_keys(stack: list[Node]) -> None:
    """Refuse a key given twice in the mapping on top of the stack, naming both lines."""
    seen: dict[tuple[str, str], int] = {}
    for key, _ in stack[-1].value:
        if isinstance(key, ScalarNode):
            # By tag too: null and 'null' are two keys (None and a string).
            if (key.tag, key.value) in seen:
                raise GraphError(f"duplicate key '{key.value}' (first on line {seen[key.tag, key.value]})",
                                 where=_where(stack), line=key.start_mark.line + 1)
            seen[key.tag, key.value] = key.start_mark.line + 1


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
