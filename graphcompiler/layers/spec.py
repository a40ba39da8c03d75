"""The declarative pieces a layer type is made of: typed parameters and the layer spec."""

from __future__ import annotations

import importlib
import math
from dataclasses import dataclass, field
from functools import partial
from types import SimpleNamespace
from typing import Any, Callable

from ..errors import GraphError, short_repr
from ..limits import INT_MAX

Shape = tuple[int, ...]
"""A tensor shape without its batch axis, which is always first and symbolic (N)."""

_COUNT_WORDS = {1: "one", 2: "two", 3: "three", 4: "four"}


class ShapeError(GraphError):
    """A shape rule's refusal; shape inference adds the node it happened at."""


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _bounds_text(lo: float | None, hi: float | None) -> str:
    if lo is not None and hi is not None:
        return f"in [{lo}, {hi}]"
    if lo == 1:
        return "positive"
    if lo is not None:
        return f">= {lo}"
    if hi is not None:
        return f"<= {hi}"
    return ""


@dataclass(frozen=True)
class Param:
    """One named, typed layer parameter with a default and a valid range."""

    name: str
    default: Any
    doc: str = ""
    search: tuple = ()
    """Values the architecture search may switch this parameter between."""
    required: bool = False
    """Must be given explicitly; ``default`` is then only the value a new node starts with."""
    unsearched: str = ""
    """Why a search may not vary this setting (empty: it may): a hyperparameter search names it in its refusal."""


    def check(self, value: Any) -> Any:
        """Return the normalised value, or raise ValueError saying what was expected."""
        raise NotImplementedError

    def expected(self) -> str:
        """Human words for what a valid value looks like."""
        raise NotImplementedError

    def _fail(self, value: Any) -> None:
        raise ValueError(f"expected {self.expected()}, got {short_repr(value)}")

    def _cap(self, value: Any, ints: Any) -> None:
        """Refuse ints past INT_MAX either way: torch cannot take them, or dies of them at the first batch."""
        huge = next((v for v in ints if not -INT_MAX <= v <= INT_MAX), None)
        if huge is not None:
            within = "" if huge is value else f"{short_repr(value)}: "
            raise ValueError(f"{within}{short_repr(huge, 30)} is beyond {INT_MAX:,} (2^31 - 1) in size, the largest "
                             "int a param may hold: use a smaller value")


@dataclass(frozen=True)
class Int(Param):
    """An integer within [lo, hi]."""

    lo: int | None = None
    hi: int | None = None

    def expected(self) -> str:
        bounds = _bounds_text(self.lo, self.hi)
        return f"an int {bounds}".rstrip() if bounds != "positive" else "a positive int"

    def check(self, value: Any) -> int:
        if not _is_int(value) or (self.lo is not None and value < self.lo) or \
                (self.hi is not None and value > self.hi):
            self._fail(value)
        self._cap(value, (value,))
        return value


@dataclass(frozen=True)
class Float(Param):
    """A real number within [lo, hi] (hi exclusive when ``hi_open``)."""

    lo: float | None = None
    hi: float | None = None
    hi_open: bool = False

    def expected(self) -> str:
        if self.lo is not None and self.hi is not None:
            return f"a number in [{self.lo}, {self.hi}{')' if self.hi_open else ']'}"
        if self.lo is not None:
            return f"a number >= {self.lo}"
        return "a number"

    def check(self, value: Any) -> float:
        if not (_is_int(value) or isinstance(value, float)) or abs(value) > 1e300 or not math.isfinite(value):
            self._fail(value)
        too_high = self.hi is not None and (value >= self.hi if self.hi_open else value > self.hi)
        if (self.lo is not None and value < self.lo) or too_high:
            self._fail(value)
        return float(value)


@dataclass(frozen=True)
class Bool(Param):
    """true or false."""


    def expected(self) -> str:
        return "true or false"

    def check(self, value: Any) -> bool:
        if not isinstance(value, bool):
            self._fail(value)
        return value


@dataclass(frozen=True)
class Choice(Param):
    """One of a fixed set of strings."""

    choices: tuple[str, ...] = ()

    def expected(self) -> str:
        return "one of " + ", ".join(self.choices)

    def check(self, value: Any) -> str:
        if value not in self.choices:
            self._fail(value)
        return value


@dataclass(frozen=True)
class Ints(Param):
    """A list of ints, of a fixed length or any length >= 1, each >= lo."""

    length: int | None = None
    lo: int | None = None
    allow_infer: bool = False
    """Whether one entry may be -1, meaning 'whatever makes the sizes match' (Reshape)."""
    most: int | None = None
    """With no fixed length, the most entries it may have (a window over one or two axes: 2)."""

    def expected(self) -> str:
        if self.length:
            count = _COUNT_WORDS.get(self.length, str(self.length))
        elif self.most:
            count = f"one to {_COUNT_WORDS.get(self.most, str(self.most))}".replace("one to two", "one or two")
        else:
            count = "a list of"
        noun = "ints" if self.length != 1 else "int"
        bounds = _bounds_text(self.lo, None)
        text = f"{count} {bounds + ' ' if bounds == 'positive' else ''}{noun}"
        if bounds and bounds != "positive":
            text += f" {bounds}"
        if self.allow_infer:
            text += " (one may be -1)"
        return text

    def check(self, value: Any) -> tuple[int, ...]:
        if not isinstance(value, (list, tuple)) or not value or not all(_is_int(v) for v in value):
            self._fail(value)
        if (self.length is not None and len(value) != self.length) or (self.most is not None and len(value) > self.most):
            self._fail(value)
        inferred = [v for v in value if v == -1] if self.allow_infer else []
        if len(inferred) > 1:
            self._fail(value)
        if self.lo is not None and any(v < self.lo and not (v == -1 and inferred) for v in value):
            self._fail(value)
        self._cap(value, value)
        return tuple(value)


def call(cls: type, *args: Any, **kwargs: Any) -> Any:
    """Build ``cls(*args, **kwargs)`` and record the call on it, so the module can be written back as source.

    Builders pass only plain values (numbers, bools, strings, tuples), so ``repr`` of the recorded
    arguments is valid Python; the record is a plain attribute, never part of the state_dict.
    """
    module = cls(*args, **kwargs)
    module._source_call = (cls, args, kwargs)
    return module


@dataclass(frozen=True)
class Builder:
    """A torch builder named by its module and function, imported on its first call.

    Specs name their builders this way so that the registry (shapes, costs, the palette, the docs) is
    read without importing torch, which takes longer to import than everything else the designer loads.
    Arguments before ``(ins, p)`` are bound with ``functools.partial`` where one builder serves several types.
    """

    module: str
    name: str

    def resolve(self) -> Callable[..., Any]:
        """The builder function, its module (and torch) imported the first time."""
        return getattr(importlib.import_module(self.module), self.name)

    def __call__(self, *args: Any) -> Any:
        return self.resolve()(*args)


def builders(layer_file: str) -> Callable[[str], Builder]:
    """Builders by name in the torch companion of a layer file (its ``__name__``): ``layers/modules/<file>.py``."""
    package, _, file = layer_file.rpartition(".")
    return partial(Builder, f"{package}.modules.{file}")


def _no_cost(ins: tuple[Shape, ...], outs: tuple[Shape, ...], p: SimpleNamespace) -> tuple[int, int]:
    return 0, 0


@dataclass(frozen=True)
class LayerSpec:
    """Everything known about one layer type, declared once.

    ``shape(ins, p)`` maps input shapes (in port order) and resolved params to output shapes
    or raises ShapeError; ``build(ins, p)`` returns the torch module (a ``Builder``, so that torch is
    imported only once something is built); ``cost(ins, outs, p)`` returns (parameter count, multiply-adds
    per sample).
    """

    type: str
    category: str
    doc: str
    shape: Callable[[tuple[Shape, ...], SimpleNamespace], tuple[Shape, ...]]
    build: Callable[[tuple[Shape, ...], SimpleNamespace], Any] | None = None
    params: tuple[Param, ...] = ()
    inputs: tuple[str, ...] | Callable[[SimpleNamespace], tuple[str, ...]] = ("x",)
    outputs: tuple[str, ...] | Callable[[SimpleNamespace], tuple[str, ...]] = ("y",)
    cost: Callable[[tuple[Shape, ...], tuple[Shape, ...], SimpleNamespace], tuple[int, int]] = _no_cost
    is_loss: bool = False
    shape_doc: str = ""
    """The shape rule in words, for the layer reference."""
    summary: Callable[[SimpleNamespace], str] | None = None
    """The one or two params that matter, for node captions and statistics (``64, 3x3``)."""
    id_prefix: str = ""
    """Stem of the ids new nodes of this type get (``conv`` gives conv1, conv2, ...); default: type in lower case."""
    swap_group: str = ""
    """The architecture search may replace a node by another layer of the same group."""
    insert: Callable[[tuple[Shape, ...]], list[tuple[str, dict]] | None] | None = None
    """The layers (type, params) the search inserts after a value of these shapes; None where unfit."""
    nnc: Callable[[Any], dict | list[tuple[str, dict]]] | None = None
    """How Neural Network Console's layer of this type becomes ours: its properties (``layers.nnc.NncProperties``)
    as params, or a short chain of (type, params); None for a type whose NNC properties carry nothing to map."""

    _by_name: dict = field(default=None, init=False, repr=False, compare=False)
    _resolved: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self):
        object.__setattr__(self, "_by_name", {p.name: p for p in self.params})
        if not self.id_prefix:
            object.__setattr__(self, "id_prefix", self.type.lower())

    def param(self, name: str) -> Param | None:
        """The parameter spec called ``name``, or None."""
        return self._by_name.get(name)

    def resolve(self, params: dict[str, Any], where: str | None = None) -> SimpleNamespace:
        """Check explicit params against the spec and fill in defaults; raise GraphError.

        Results are remembered per distinct params, since shape inference resolves every node
        on every edit and most nodes of a network share a few param sets. Treat them as read-only.
        """
        try:
            # Types are part of the key: 1 == True == 1.0, but only one of them is a valid value.
            key = tuple((k, type(v), tuple((type(x), x) for x in v) if isinstance(v, (list, tuple)) else v)
                        for k, v in params.items())
            hit = self._resolved.get(key)
        except TypeError:
            key = hit = None
        if hit is not None:
            return hit
        resolved = self._resolve(params, where)
        if key is not None:
            if len(self._resolved) > 4096:
                self._resolved.clear()
            self._resolved[key] = resolved
        return resolved

    def _resolve(self, params: dict[str, Any], where: str | None) -> SimpleNamespace:
        for name in params:
            if name not in self._by_name:
                known = ", ".join(self._by_name) or "none"
                raise GraphError(f"unknown param '{name}' for {self.type} (its params: {known})",
                                 where=f"{where}.{name}" if where else name)
        values = {}
        for spec in self.params:
            if spec.required and spec.name not in params:
                raise GraphError(f"missing param '{spec.name}' ({spec.expected()})", where=where)
            raw = params.get(spec.name, spec.default)
            try:
                values[spec.name] = spec.check(raw)
            except ValueError as exc:
                raise GraphError(str(exc), where=f"{where}.{spec.name}" if where else spec.name) from None
        return SimpleNamespace(**values)

    def initial_params(self) -> dict[str, Any]:
        """Explicit params a freshly added node starts with: the required ones."""
        return {p.name: p.default for p in self.params if p.required}

    def input_ports(self, p: SimpleNamespace) -> tuple[str, ...]:
        """The input port names for resolved params ``p``."""
        return self.inputs(p) if callable(self.inputs) else self.inputs

    def output_ports(self, p: SimpleNamespace) -> tuple[str, ...]:
        """The output port names for resolved params ``p``."""
        return self.outputs(p) if callable(self.outputs) else self.outputs
