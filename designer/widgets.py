"""One dearpygui input per declared param (layer params and project settings alike), from its type."""

from __future__ import annotations

from typing import Any, Callable

import dearpygui.dearpygui as dpg
import yaml

from graphcompiler.layers import Bool, Choice, Float, Int, Ints
from runtime.settings import Names, Space

WIDTH = 150
BOTTOM_HEIGHT = 130
"""Height of the status and problems panel under every tab."""


def param_widget(param: Any, value: Any, tag: str, on_change: Callable[[Any], None], label: str | None = None) -> None:
    """Add the input for ``param`` showing ``value``; ``on_change`` gets the plain value the user entered."""
    common = dict(label=label or param.name, tag=tag, callback=lambda s, v: on_change(from_widget(param, v)))
    if isinstance(param, Bool):
        dpg.add_checkbox(default_value=bool(value), **common)
    elif isinstance(param, Choice):
        dpg.add_combo(items=list(param.choices), default_value=str(value), width=WIDTH, **common)
    elif isinstance(param, Int):
        bounds = {}
        if param.lo is not None:
            bounds.update(min_value=param.lo, min_clamped=True)
        if param.hi is not None:
            bounds.update(max_value=param.hi, max_clamped=True)
        # No +/- steppers: they sat where a click into the number lands.
        dpg.add_input_int(default_value=value, on_enter=True, width=WIDTH, step=0, **bounds, **common)
    elif isinstance(param, Float):
        dpg.add_input_float(default_value=value, on_enter=True, format="%.6g", step=0, width=WIDTH, **common)
    elif isinstance(param, Space):
        # One line of YAML per searched setting; the box takes the panel's width, so its name goes above it.
        text = "".join(f"{path}: {yaml.safe_dump(spec, default_flow_style=True, sort_keys=False, width=1000).strip()}\n"
                       for path, spec in (value or {}).items())
        dpg.add_text(common.pop("label"))
        dpg.add_input_text(default_value=text, multiline=True, on_enter=True, width=-1, height=90, **common)
    else:
        text = ", ".join(map(str, value)) if isinstance(value, (list, tuple)) else "" if value is None else str(value)
        dpg.add_input_text(default_value=text, on_enter=True, width=WIDTH, **common)
    if param.doc:
        with dpg.tooltip(tag):
            dpg.add_text(f"{param.doc} ({param.expected()})", wrap=300)


def from_widget(param: Any, value: Any) -> Any:
    """Turn a widget's value into the param's plain value (the param's own check judges it)."""
    if isinstance(param, Ints):
        if not value.strip() and param.default is None:
            return None  # an optional setting left empty (dataset.image_size: keep the files' size)
        try:
            return [int(v) for v in value.replace("x", ",").split(",") if v.strip()]
        except ValueError:
            return value
    if isinstance(param, Names):
        return [v.strip() for v in value.split(",") if v.strip()]
    if isinstance(param, Space):
        try:
            return yaml.safe_load(value) or {}
        except yaml.YAMLError:
            return value  # the param's check then says what it expected
    return value


def rect(item: Any) -> list[float]:
    """An item's [x, y, width, height] on screen, as tests that drive the mouse need it."""
    state = dpg.get_item_state(item)
    (x, y), (w, h) = state.get("rect_min", state.get("pos", (0, 0))), state.get("rect_size", (0, 0))
    return [x, y, w, h]


def descendants(item: Any) -> list[int]:
    """Every item inside ``item``, depth first."""
    found = []
    for child in dpg.get_item_children(item, 1) or []:
        found.append(child)
        found.extend(descendants(child))
    return found
