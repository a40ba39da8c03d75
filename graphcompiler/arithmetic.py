"""Safe arithmetic over numbers and names: NNC's property values (``ConvMaps/4``, ``Input[0]*2``, ``1/255``)
and block params computed from the block's own (``$ConvMaps / 4``). Parsed with ``ast``, never ``eval``."""

from __future__ import annotations

import ast
import operator
from typing import Any, Callable

_OPERATORS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
              ast.FloorDiv: operator.floordiv}


def names_in(text: str) -> set[str] | None:
    """The names an expression reads, or None if it is not one."""
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError:
        return None
    return {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}


def computed(text: str) -> bool:
    """Whether ``text`` is arithmetic or a name rather than one plain constant (``3``, ``True``, ``None``)."""
    try:
        return not isinstance(ast.parse(text.strip(), mode="eval").body, ast.Constant)
    except SyntaxError:
        return False


def evaluate(text: str, names: dict[str, Any], index: Callable[[str, int], float] | None = None) -> float:
    """The value of ``text``: numbers, ``names``, ``name[k]`` through ``index``, + - * / // and parentheses.

    TypeError for anything else (or a name that is not a number); ZeroDivisionError, KeyError and IndexError
    pass through; SyntaxError if it does not parse.
    """
    return _value(ast.parse(text.strip(), mode="eval").body, names, index)


def whole(value: float) -> int | float:
    """``value`` as an int where it is a whole number, as a count or size should be."""
    return int(value) if float(value).is_integer() else value


def _value(node: ast.AST, names: dict[str, Any], index) -> float:
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
        return node.value
    if isinstance(node, ast.Name) and isinstance(names.get(node.id), (int, float)) \
            and not isinstance(names[node.id], bool):
        return names[node.id]
    if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name) and index is not None:
        return index(node.value.id, int(_value(node.slice, names, index)))
    if isinstance(node, ast.BinOp) and type(node.op) in _OPERATORS:
        return _OPERATORS[type(node.op)](_value(node.left, names, index), _value(node.right, names, index))
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        value = _value(node.operand, names, index)
        return -value if isinstance(node.op, ast.USub) else value
    raise TypeError(f"not arithmetic: {ast.dump(node)}")
