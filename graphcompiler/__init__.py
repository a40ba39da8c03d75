"""graphcompiler: the graph model, layer registry, project files, shape inference, cost and compiler."""

from .blocks import Block
from .cost import Cost, cost
from .errors import GraphError
from .graph import Graph, Link, Node
from .layers import REGISTRY, get_spec
from .project import FORMAT, Project, validate
from .shapes import NodeShapes, infer_shapes, shape_errors
from .yamlformat import check_file, dumps, load, loads, locate, save

__all__ = [
    "Block", "GraphModule", "compile", "inference_outputs", "Cost", "cost", "GraphError", "Graph", "Link", "Node",
    "REGISTRY", "get_spec", "FORMAT", "Project", "validate", "NodeShapes", "infer_shapes", "shape_errors",
    "check_file", "dumps", "load", "loads", "locate", "save",
]

# The compiler imports torch, which takes longer than all of the rest: it is imported on first use, so that
# opening, checking and drawing a project (the designer's first frame) never waits for it.
_COMPILER = ("GraphModule", "compile", "inference_outputs")


def __getattr__(name: str):
    """GraphModule, compile and inference_outputs, from the compiler imported on first use."""
    if name in _COMPILER:
        from . import compiler

        return getattr(compiler, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
