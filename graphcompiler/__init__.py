"""graphcompiler: the graph model, layer registry, project files, shape inference, cost and compiler."""

from .blocks import Block
from .compiler import GraphModule, compile, inference_outputs
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
