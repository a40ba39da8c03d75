"""Reading a Neural Network Console layer's properties as our params: what each spec's ``nnc`` translator uses.

Our layer names follow NNC's, so a spec declares how NNC's properties of its type become its params
(``LayerSpec.nnc``); a property value the spec cannot express raises ``Unmappable`` with the reason,
and the importer lists it instead of dropping it.
"""

from __future__ import annotations

import math
from typing import Any

from ..arithmetic import computed, evaluate, names_in, whole

IGNORED = frozenset({"Name", "InPlace", "ParameterScope", "Seed", "SkipAtInspection"})
"""Properties with no bearing on what a layer computes: its label, memory reuse, weight sharing (mapped by the
importer), dropout's seed and whether the inspector skips it."""


class Unmappable(Exception):
    """An NNC layer, or one of its property values, that our registry cannot express."""


class NncProperties:
    """One NNC layer's properties (references already resolved), read with the types our params need.

    NNC allows arithmetic in a value (``Input[0]*2``, ``3,Input[1],Input[2]``, ``ConvMaps*3``, ``1/255``):
    over the shape of the layer's first input (``input_shape``) and its unit's arguments (``arguments``);
    each comma-separated part is worked out when read. ``*ConvKernel`` is the argument's value itself.
    """

    def __init__(self, layer_type: str, properties: dict[str, str], input_shape: tuple[int, ...] | None = None,
                 arguments: dict[str, Any] | None = None):
        self.type = layer_type
        self.values = properties
        self.input_shape = input_shape
        self.arguments = arguments or {}

    def text(self, name: str, default: str | None = None) -> str:
        """The value as written, its arithmetic worked out; a missing one without a default cannot be mapped."""
        value = self.values.get(name, default)
        if value is None:
            raise Unmappable(f"it has no {name} property")
        if value.startswith("*") and value[1:] in self.arguments:
            value = argument_text(self.arguments[value[1:]])
        elif value.startswith("*"):
            raise Unmappable(f"{name} = {value} refers to something this importer does not resolve yet")
        return ",".join(self._evaluate(name, part) for part in value.split(","))

    def _evaluate(self, name: str, part: str) -> str:
        names = names_in(part)
        if names is None or not names <= {"Input", *self.arguments} or not computed(part):
            return part  # a plain number, or a word such as True or same
        if "Input" in names and self.input_shape is None:
            raise Unmappable(f"{name} = {part} needs the shape of the layer's input, which is unknown")

        def input_axis(variable: str, axis: int) -> int:
            if variable != "Input":
                raise TypeError(variable)
            return self.input_shape[axis]

        try:
            value = evaluate(part, self.arguments, input_axis)
        except (KeyError, IndexError, TypeError, ZeroDivisionError):
            raise Unmappable(f"{name} = {part} cannot be worked out (input {self.input_shape})") from None
        return str(whole(value))

    def ints(self, name: str, default: str | None = None) -> list[int]:
        """A comma-separated list of whole numbers (KernelShape, Strides, ...)."""
        text = self.text(name, default)
        try:
            return [int(v) for v in text.split(",") if v.strip()]
        except ValueError:
            raise Unmappable(self._unknown(name, text) or f"{name} = {text} is not a list of whole numbers") from None

    def int(self, name: str, default: str | None = None) -> int:
        """One whole number."""
        values = self.ints(name, default)
        if len(values) != 1:
            raise Unmappable(f"{name} = {self.text(name, default)} should be one number")
        return values[0]

    def number(self, name: str, default: str | None = None) -> float:
        """One real number."""
        text = self.text(name, default)
        try:
            return float(text)
        except ValueError:
            raise Unmappable(self._unknown(name, text) or f"{name} = {text} is not a number") from None

    def _unknown(self, name: str, text: str) -> str | None:
        """Why arithmetic in a value cannot be worked out: the names in it that are no argument; None if none."""
        unknown = sorted(set().union(*(names_in(part) or set() for part in text.split(","))) - {"Input", *self.arguments})
        if not unknown:
            return None
        return f"{name} = {text} names {', '.join(unknown)}, which {'is' if len(unknown) == 1 else 'are'} no argument " \
               f"of this network"

    def flag(self, name: str, default: str | None = None) -> bool:
        """True or False."""
        text = self.text(name, default)
        if text not in ("True", "False"):
            raise Unmappable(f"{name} = {text} should be True or False")
        return text == "True"

    def require(self, name: str, allowed: str, default: str | None = None) -> None:
        """Refuse the layer unless the property has the one value we can express."""
        value = self.values.get(name, default)
        if value is not None and value != allowed:
            raise Unmappable(f"{name} = {value} is not supported (only {allowed})")


def argument_text(value: Any) -> str:
    """A unit argument's value as NNC writes it in a property: ``11,11``, ``96``, ``True``."""
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value)
    return str(value)


def product(values: list[int]) -> int:
    """The number of elements of a shape."""
    return math.prod(values)
