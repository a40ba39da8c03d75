"""Reading a Neural Network Console layer's properties as our params: what each spec's ``nnc`` translator uses.

Our layer names follow NNC's, so a spec declares how NNC's properties of its type become its params
(``LayerSpec.nnc``); a property value the spec cannot express raises ``Unmappable`` with the reason,
and the importer lists it instead of dropping it.
"""

from __future__ import annotations

import math

IGNORED = frozenset({"Name", "InPlace", "ParameterScope", "Seed", "SkipAtInspection"})
"""Properties with no bearing on what a layer computes: its label, memory reuse, weight sharing (mapped by the
importer), dropout's seed and whether the inspector skips it."""


class Unmappable(Exception):
    """An NNC layer, or one of its property values, that our registry cannot express."""


class NncProperties:
    """One NNC layer's properties (references already resolved), read with the types our params need."""

    def __init__(self, layer_type: str, properties: dict[str, str]):
        self.type = layer_type
        self.values = properties

    def text(self, name: str, default: str | None = None) -> str:
        """The value as written; a missing one without a default cannot be mapped."""
        value = self.values.get(name, default)
        if value is None:
            raise Unmappable(f"it has no {name} property")
        if value.startswith("*"):
            raise Unmappable(f"{name} = {value} refers to something this importer does not resolve yet")
        return value

    def ints(self, name: str, default: str | None = None) -> list[int]:
        """A comma-separated list of whole numbers (KernelShape, Strides, ...)."""
        text = self.text(name, default)
        try:
            return [int(v) for v in text.split(",") if v.strip()]
        except ValueError:
            raise Unmappable(f"{name} = {text} is not a list of whole numbers") from None

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
            raise Unmappable(f"{name} = {text} is not a number") from None

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


def product(values: list[int]) -> int:
    """The number of elements of a shape."""
    return math.prod(values)
