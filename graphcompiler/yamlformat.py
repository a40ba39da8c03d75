"""Reading and writing .graph.yaml project files: safe, strict, located errors, canonical output."""

from __future__ import annotations

import math
import os
import re
from pathlib import Path
from typing import Any

import yaml

from .atomic import write_text
from .collector import paused
from .errors import GraphError, short_repr
from .expansion import Expansion
from .graph import Graph, check_id
from .blocks import Block, Loop, State, block_spec, fill, param_for
from .layers import REGISTRY
from .project import FORMAT, Project, validate
from .readfile import project_text
from .yamlread import read

_LINK = re.compile(r"\s*([A-Za-z_]\w*)(?:\.(\w+))?\s*->\s*([A-Za-z_]\w*)(?:\.(\w+))?\s*\Z")
_NAME = re.compile(r"[A-Za-z_]\w*\Z")
_NODE_KEYS = ("id", "type", "params", "pos")
_NETWORK_KEYS = ("weights", "nodes", "links")
_OWN_KEYS = ("format", "name", "description", "blocks", "networks")
_BLOCK_KEYS = ("params", "output", "loop", "nodes", "links")
_LOOP_KEYS = ("axis", "sequences", "states")


def load(path: str | os.PathLike) -> Project:
    """Read a project file; any problem raises GraphError naming file, line and field."""
    return loads(project_text(path), file=str(path))


def loads(text: str, file: str | None = None) -> Project:
    """Parse project text; ``file`` is only used in error messages."""
    return _parse(text, file)[0]


def check_file(path: str | os.PathLike) -> list[GraphError]:
    """Every problem of a project file, each with file, line and field: what `validate` prints."""
    # One pause for reading and checking: turned on in between, the collector swept the whole new heap once.
    with paused():
        try:
            project, tree = _parse(project_text(path), str(path))
        except GraphError as exc:
            return [exc.located(file=str(path))]
        problems = validate(project)
    for name, weights in project.weight_files.items():
        if not (Path(path).parent / weights).is_file():
            problems.append(GraphError(f"the weights file {weights} is not beside the project: put it there, or "
                                       "remove the line to start from fresh weights", where=f"networks.{name}.weights"))
    return [p.located(file=str(path), line=_line_of(tree, p.where)) for p in problems]


def locate(error: GraphError, path: str | os.PathLike) -> GraphError:
    """The error with the project file and the line of its field filled in, where they are missing."""
    if error.file:
        return error
    try:
        tree = read(project_text(path))[1]
    except (yaml.YAMLError, GraphError):
        tree = None
    return error.located(file=str(path), line=_line_of(tree, error.where))


def _parse(text: str, file: str | None) -> tuple[Project, yaml.Node | None]:
    try:
        data, tree = read(text)
    except GraphError as exc:
        raise exc.located(file=file) from None
    except yaml.constructor.ConstructorError as exc:
        raise GraphError(f"{exc.problem}; project files hold plain data only (no tags such as !!python/...)",
                         file=file, line=_mark_line(exc.problem_mark)) from None
    except yaml.MarkedYAMLError as exc:
        context = f" ({exc.context} at line {_mark_line(exc.context_mark)})" if exc.context_mark else ""
        raise GraphError(f"not valid YAML: {exc.problem}{context}", file=file,
                         line=_mark_line(exc.problem_mark)) from None
    except yaml.YAMLError as exc:
        raise GraphError(f"not valid YAML: {exc}", file=file) from None
    except (ValueError, TypeError, OverflowError) as exc:
        raise GraphError(f"a value cannot be read: {exc}", file=file) from None
    try:
        with paused():
            return _project(data, text), tree
    except GraphError as exc:
        raise exc.located(file=file, line=exc.line or _line_of(tree, exc.where)) from None


def _mark_line(mark: Any) -> int | None:
    return mark.line + 1 if mark is not None else None


def _expect(value: Any, kind: type | tuple, where: str, what: str) -> Any:
    if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
        raise GraphError(f"expected {what}, got {short_repr(value)}", where=where)
    return value


def _project(data: Any, text: str) -> Project:
    if data is None:
        raise GraphError(f"the file is empty; a project starts with 'format: {FORMAT}'")
    _expect(data, dict, "top level", "a mapping of sections (format, name, networks, ...)")
    if data.get("format") != FORMAT:
        raise GraphError(f"expected '{FORMAT}', got {data.get('format')!r}; is this a netcanvas project?",
                         where="format")
    name = _expect(data.get("name", "untitled"), str, "name", "a string")
    description = data.get("description")
    if description is not None:
        _expect(description, str, "description", "a string")
    networks = _expect(data.get("networks"), dict, "networks", "a mapping from network name to network")
    if not networks:
        raise GraphError("expected at least one network", where="networks")
    project = Project(name=name, networks={}, description=description, header=_header(text),
                      sections={k: v for k, v in data.items() if k not in _OWN_KEYS})
    specs: dict[str, Any] = {}
    # Counted before any shape is inferred: nested blocks can expand to more nodes than checking could ever finish.
    expansion = Expansion()
    for block_name, body in (_expect(data.get("blocks") or {}, dict, "blocks", "a mapping of block name to block")
                             ).items():
        block = _block(block_name, body, specs)
        expansion.add(block_name, block.graph, f"blocks.{block_name}")
        project.blocks[block_name] = block
        specs[block_name] = block_spec(block)
    for net_name, body in networks.items():
        where = f"networks.{net_name}"
        if not isinstance(net_name, str) or not _NAME.match(net_name):
            raise GraphError(f"network name {net_name!r} must be letters, digits and _", where=where)
        project.networks[net_name] = _graph(body, where, specs)
        expansion.check(project.networks[net_name], f"network {net_name}", where)
        if body.get("weights") is not None:
            source = _expect(body["weights"], str, f"{where}.weights",
                             "a network's name (its weights are shared) or a .pt or .onnx file")
            if _NAME.match(source):
                project.weights_from[net_name] = source
            elif source.lower().endswith((".pt", ".onnx")):
                project.weight_files[net_name] = source
            else:
                raise GraphError(f"weights {source!r} is neither a network's name nor a .pt or .onnx file: name "
                                 "the network whose weights this one shares, or the weights file beside the project",
                                 where=f"{where}.weights")
    return project


def _block(name: Any, body: Any, specs: dict[str, Any]) -> Block:
    where = f"blocks.{name}"
    if not isinstance(name, str) or not _NAME.match(name):
        raise GraphError(f"block name {name!r} must be letters, digits and _", where=where)
    if name in REGISTRY or name in specs:
        raise GraphError(f"block name '{name}' is taken by a {'layer' if name in REGISTRY else 'block'}", where=where)
    _expect(body, dict, where, "a mapping with params, output, loop, nodes and links")
    for key in body:
        if key not in _BLOCK_KEYS:
            raise GraphError(f"unknown key '{key}' (a block has {', '.join(_BLOCK_KEYS)})", where=where)
    params = _expect(body.get("params") or {}, dict, f"{where}.params", "a mapping of block params to defaults")
    for key, default in params.items():
        try:
            param_for(key, default)
        except GraphError as exc:
            raise exc.located(where=f"{where}.params.{key}") from None
    graph = _graph({k: v for k, v in body.items() if k in ("nodes", "links")}, where, specs, params)
    output = _expect(body.get("output"), str, f"{where}.output", "the id of the node whose result the block returns")
    if output not in graph:
        raise GraphError(f"no node '{output}' in the block", where=f"{where}.output")
    loop = None if body.get("loop") is None else _loop(body["loop"], graph, f"{where}.loop")
    return Block(name, graph, output, params, loop)


def _loop(body: Any, graph: Graph, where: str) -> Loop:
    _expect(body, dict, where, "a mapping with axis, sequences and states")
    for key in body:
        if key not in _LOOP_KEYS:
            raise GraphError(f"unknown key '{key}' (a loop has {', '.join(_LOOP_KEYS)})", where=where)
    sequences = _expect(body.get("sequences"), list, f"{where}.sequences", "a list of the block's Input ids")
    states = {}
    for name, state in _expect(body.get("states") or {}, dict, f"{where}.states",
                               "a mapping of state Input id to {source, initial}").items():
        at = f"{where}.states.{name}"
        _expect(state, dict, at, "a mapping with source and initial")
        for key in state:
            if key not in ("source", "initial"):
                raise GraphError(f"unknown key '{key}' (a state has source and initial)", where=at)
        source = _expect(state.get("source"), str, f"{at}.source", "the id of the node giving the next value")
        initial = _expect(state.get("initial", 0.0), (int, float), f"{at}.initial", "a number")
        states[name] = State(source, float(initial))
    loop = Loop(body.get("axis", 0), tuple(sequences), states)
    loop.check(graph, where)
    return loop


def _graph(body: Any, where: str, specs: dict[str, Any], block_params: dict[str, Any] | None = None) -> Graph:
    _expect(body, dict, where, "a mapping with nodes and links")
    for key in body:
        if key not in _NETWORK_KEYS:
            raise GraphError(f"unknown key '{key}' (a network has {', '.join(_NETWORK_KEYS)})", where=where)
    graph = Graph(specs)
    first_seen: dict[str, int] = {}
    for i, item in enumerate(_expect(body.get("nodes") or [], list, f"{where}.nodes", "a list of nodes")):
        _node(graph, item, f"{where}.nodes[{i}]", first_seen, i, block_params)
    for j, item in enumerate(_expect(body.get("links", []) or [], list, f"{where}.links", "a list of links")):
        _link(graph, item, f"{where}.links[{j}]")
    return graph


def _node(graph: Graph, item: Any, where: str, first_seen: dict[str, int], index: int,
          block_params: dict[str, Any] | None) -> None:
    _expect(item, dict, where, "a node mapping {id, type, params, pos}")
    for key in item:
        if key not in _NODE_KEYS:
            raise GraphError(f"unknown key '{key}' (a node has {', '.join(_NODE_KEYS)})", where=where)
    for key in ("id", "type"):
        if key not in item:
            raise GraphError(f"missing '{key}'", where=where)
    node_id = item["id"]
    try:
        check_id(node_id)
    except GraphError as exc:
        raise exc.located(where=f"{where}.id") from None
    if node_id in first_seen:
        raise GraphError(f"duplicate node id '{node_id}' (first used by nodes[{first_seen[node_id]}])",
                         where=f"{where}.id")
    first_seen[node_id] = index
    spec = graph.spec(_expect(item["type"], str, f"{where}.type", "a layer type name"), where=f"{where}.type")
    params = item.get("params")
    params = {} if params is None else _expect(params, dict, f"{where}.params", "a mapping of param names to values")
    # Inside a block, $name values are checked with the block param's default filled in.
    spec.resolve(params if block_params is None else {k: fill(v, block_params) for k, v in params.items()},
                 where=f"{where}.params")
    pos = item.get("pos")
    if pos is not None and not (isinstance(pos, list) and len(pos) == 2 and
                                all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
                                    for v in pos)):
        raise GraphError(f"expected two numbers [x, y], got {short_repr(pos)}", where=f"{where}.pos")
    graph.add_node(node_id, spec.type, params, pos)


def _link(graph: Graph, item: Any, where: str) -> None:
    match = _LINK.match(item) if isinstance(item, str) else None
    if not match:
        raise GraphError(f"expected 'source -> target' (ports as node.port), got {short_repr(item)}", where=where)
    src, src_port, dst, dst_port = match.groups()
    try:
        graph.connect(src, dst, src_port, dst_port)
    except GraphError as exc:
        raise GraphError(exc.message, where=where, node=exc.node) from None


def _header(text: str) -> str:
    lines = []
    for line in text.splitlines(keepends=True):
        if not line.startswith("#") and line.strip():
            break
        lines.append(line)
    return "".join(lines)


def _path_parts(where: str) -> list[str | int]:
    parts: list[str | int] = []
    for piece in where.split("."):
        name, *indices = re.split(r"\[(\d+)\]", piece)
        if name:
            parts.append(name)
        parts.extend(int(i) for i in indices if i)
    return parts


def _line_of(node: yaml.Node | None, where: str | None) -> int | None:
    """Line of the deepest YAML node along the path ``where``."""
    if not where:
        return None
    line = node.start_mark.line + 1 if node else None
    for part in _path_parts(where):
        if isinstance(node, yaml.MappingNode) and isinstance(part, str):
            found = [v for k, v in node.value if getattr(k, "value", None) == part]
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            found = [node.value[part]]
        else:
            found = []
        if not found:
            break
        node = found[0]
        line = node.start_mark.line + 1
    return line


def _loop_data(loop: Loop) -> dict:
    data = {"axis": loop.axis, "sequences": list(loop.sequences)}
    if loop.states:
        data["states"] = {name: {"source": s.source, "initial": _number(s.initial)} for name, s in loop.states.items()}
    return data


def _flow(value: Any) -> str:
    return yaml.safe_dump(value, default_flow_style=True, sort_keys=False, width=1 << 30,
                          allow_unicode=True).strip()


def _number(v: float) -> int | float:
    return int(v) if float(v).is_integer() else v


def _link_text(graph: Graph, link) -> str:
    src = link.src if len(graph.output_ports(link.src)) == 1 else f"{link.src}.{link.src_port}"
    dst_ports = graph.input_ports(link.dst)
    dst = link.dst if len(dst_ports) == 1 else f"{link.dst}.{link.dst_port}"
    return f"{src} -> {dst}"


def _graph_lines(graph: Graph) -> list[str]:
    out = ["    nodes:\n" if len(graph) else "    nodes: []\n"]
    for node in graph.nodes():
        item: dict[str, Any] = {"id": node.id, "type": node.type}
        if node.params:
            item["params"] = node.params
        if node.pos is not None:
            item["pos"] = [_number(node.pos[0]), _number(node.pos[1])]
        out.append(f"    - {_flow(item)}\n")
    links = graph.links()
    out.append("    links:\n" if links else "    links: []\n")
    out.extend(f"    - {_link_text(graph, link)}\n" for link in links)
    return out


def dumps(project: Project) -> str:
    """The canonical text of a project: one node and one link per line, sections as block YAML."""
    out = [project.header, yaml.safe_dump({"format": FORMAT, "name": project.name}, sort_keys=False,
                                          allow_unicode=True)]
    if project.description is not None:
        out.append(yaml.safe_dump({"description": project.description}, allow_unicode=True, width=100))
    if project.blocks:
        out.append("blocks:\n")
        for name, block in project.blocks.items():
            out.append(f"  {name}:\n")
            if block.params:
                out.append(f"    params: {_flow(block.params)}\n")
            out.append(f"    output: {block.output}\n")
            if block.loop:
                out.append(f"    loop: {_flow(_loop_data(block.loop))}\n")
            out.extend(_graph_lines(block.graph))
    out.append("networks:\n")
    for net_name, graph in project.networks.items():
        out.append(f"  {net_name}:\n")
        source = project.weights_from.get(net_name) or project.weight_files.get(net_name)
        if source:
            out.append(f"    weights: {yaml.safe_dump(source, default_style=None).splitlines()[0]}\n")
        out.extend(_graph_lines(graph))
    if project.sections:
        out.append(yaml.safe_dump(project.sections, sort_keys=False, default_flow_style=False,
                                  allow_unicode=True, width=100))
    return "".join(out)


def save(project: Project, path: str | os.PathLike) -> None:
    """Write the project atomically: a temporary file in the same folder, then a rename."""
    write_text(path, dumps(project))
