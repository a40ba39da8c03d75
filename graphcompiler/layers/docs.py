"""The layer reference (docs/layers.md), generated from the registry so it cannot drift."""

from __future__ import annotations

from . import REGISTRY, categories
from .spec import Param


def _param_text(param: Param) -> str:
    default = param.default
    if isinstance(default, list):
        default = "[" + ", ".join(map(str, default)) + "]"
    elif isinstance(default, bool):
        default = str(default).lower()
    if param.required:
        return f"`{param.name}`, required, e.g. {default} ({param.expected()})"
    return f"`{param.name}` = {default} ({param.expected()})"


def _ports(spec, output: bool) -> str:
    p = spec.resolve(spec.initial_params())
    ports = ", ".join(spec.output_ports(p) if output else spec.input_ports(p)) or "none"
    varies = callable(spec.outputs if output else spec.inputs)
    return f"{ports} (by default; the count follows the params)" if varies else ports


def markdown() -> str:
    """Markdown reference of every layer type, grouped by palette category."""
    lines = ["# Layer reference", "",
             "Generated from the layer registry by `netcanvas layers --markdown`; do not edit by hand.",
             "Shapes leave out the batch axis. Multiply-adds are counted for one sample.", ""]
    for category, types in categories().items():
        lines += [f"## {category}", "", "| type | inputs | outputs | params | output shape | what it does |",
                  "|---|---|---|---|---|---|"]
        for layer_type in types:
            spec = REGISTRY[layer_type]
            params = "<br>".join(_param_text(p) for p in spec.params) or "none"
            lines.append(f"| {spec.type} | {_ports(spec, False)} | {_ports(spec, True)} | {params} | {spec.shape_doc} "
                         f"| {spec.doc} |")
        lines.append("")
    return "\n".join(lines)
