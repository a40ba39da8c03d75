"""Turn a Neural Network Console project (.sdcproj) into a netcanvas project.

Layers map through the registry: our layer names follow NNC's, and each spec's ``nnc`` translator reads
NNC's properties of its type. A loss layer's ``T.Dataset`` becomes a label Input wired to its target (or
the Input already reading that variable, as in an autoencoder). The network the optimizer trains becomes
``main``; validation and runtime networks that share its weights become views of it (``nnc_views``).
Datasets, epochs, batch size and the solver become the project's dataset and training sections.
What does not map is listed (network, layer, type, why) and the import fails unless asked for a partial one.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import networkx as nx

from ..arithmetic import names_in, whole
from ..blocks import Block, Loop, State, block_spec, fill, filled
from ..errors import GraphError
from ..graph import Graph
from ..layers import ShapeError, get_spec
from ..layers.io import is_fed
from ..layers.nnc import IGNORED, NncProperties, Unmappable
from ..layout import auto_layout
from ..project import Project
from ..shapes import infer_shapes
from .nnc_loops import extract_loops, unroll_repeats
from .nnc_patterns import fold_cutout, fold_mixup, own_weights, split_gan, split_vat
from .nnc_rewrites import fold_augmentation, fold_channel_shuffle, inference_statistics, unit_properties
from .nnc_views import frozen_layers, link_views
from .sdcproj import NncLayer, NncLoop, NncNetwork, NncProject, read_sdcproj

CANVAS_SCALE = (1.0, 2.0)
"""NNC draws layers 240 x 48 on a 24-unit grid, one under the other; our nodes are narrower and taller."""


@dataclass(frozen=True)
class Unmapped:
    """One thing of the NNC project that has no netcanvas counterpart yet."""

    network: str
    layer: str
    type: str
    why: str

    def __str__(self) -> str:
        return f"{self.network} / {self.layer} ({self.type}): {self.why}"


@dataclass
class NncImport:
    """The imported project, what could not be mapped, and settings only partly carried over."""

    project: Project
    unmapped: list[Unmapped] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def import_sdcproj(path: str | os.PathLike, partial: bool = False) -> NncImport:
    """Import an .sdcproj; raises GraphError listing every unmapped layer unless ``partial``."""
    nnc = read_sdcproj(path)
    result = NncImport(Project(name=_identifier(Path(path).stem.removesuffix(".sdcproj")), networks={}))
    augmentation: dict = {}
    # The network a mixup's data-setting optimizer runs is not trained: the last optimizer's network is.
    trained = next((o.get("Optimizer_NetworkName") for o in reversed(nnc.optimizers)), None) or next(iter(nnc.networks))
    fold_mixup(nnc, trained, augmentation, result.notes)
    vat = split_vat(nnc, result.notes)
    gan = split_gan(nnc, result.notes)
    trained = next((o.get("Optimizer_NetworkName") for o in nnc.optimizers), None) or next(iter(nnc.networks))
    inputs: dict[str, str] = {}
    comments: list[str] = []
    optimized = {o.get("Optimizer_NetworkName") for o in nnc.optimizers}
    units = {l.properties.get("Network") for n in nnc.networks.values() for l in n.layers.values() if l.type == "Unit"}
    for name, network in nnc.networks.items():
        if not nnc.config:
            unit_properties(network, result.notes)
        if name not in optimized:
            inference_statistics(network, result.notes)
        own_weights(network, result.notes)
        fold_channel_shuffle(network, result.notes)
        fold_cutout(network, augmentation if name == trained else {}, result.notes if name == trained else [])
        fold_augmentation(network, augmentation if name == trained else {}, result.notes if name == trained else [])
        for layer, why in unroll_repeats(network, _arguments(network, name, [])[0], unit=name in units):
            result.unmapped.append(Unmapped(name, layer, "RepeatStart", why))
    for name, network in list(nnc.networks.items()):
        bodies, problems = extract_loops(network)
        result.unmapped += [Unmapped(name, layer, "recurrent loop", why) for layer, why in problems]
        for body in bodies:
            nnc.networks[body.name] = body
    modes: dict[str, set[str]] = {}
    specs = _units(nnc, result, comments, modes)
    for name, network in nnc.networks.items():
        if name in result.project.blocks or _identifier(name) in result.project.blocks:
            continue
        ours = "main" if name == trained and not gan else _identifier(name)
        arguments, _ = _arguments(network, name, result.unmapped)
        result.project.networks[ours] = _NetworkImport(network, result.unmapped, inputs, comments, specs, modes,
                                                       trained=name in optimized, arguments=arguments).graph
    _size_loop_inputs(result.project)
    link_views(result.project, result.notes)
    # NNC draws top to bottom with pins above and below; ours are at the sides, so the canvas is laid out anew.
    for graph in result.project.networks.values():
        for node_id, pos in auto_layout(graph).items():
            graph.node(node_id).pos = pos
    if comments:
        result.project.description = "\n".join(comments)
    result.project.sections = _sections(nnc, inputs, result.notes, augmentation)
    if vat:
        result.project.sections.setdefault("training", {}).update(vat)
    if gan:
        result.project.sections.setdefault("training", {})["mode"] = "gan"
    elif trained in nnc.networks:
        frozen = [_identifier(name) for name in frozen_layers(nnc.networks[trained], result.notes)]
        if frozen:
            result.project.sections.setdefault("training", {}).setdefault("transfer", {})["freeze"] = frozen
    if result.unmapped and not partial:
        listing = "\n".join(f"  {u}" for u in result.unmapped)
        raise GraphError(f"{len(result.unmapped)} layer(s) cannot be imported yet:\n{listing}\n(--partial imports "
                         "the rest and leaves these out)", file=str(path))
    return result


def _units(nnc: NncProject, result: NncImport, comments: list[str], modes: dict[str, set[str]]) -> dict:
    """The networks that Unit layers use, as the project's blocks (a unit inside a unit comes first).

    A unit's Argument layers become its block's params; a Boolean argument that only BatchNormalization's
    BatchStat reads is no param (``modes``): our BatchNormalization uses batch statistics while training and
    the running ones in inference mode by itself.
    """
    wanted = {l.properties.get("Network", "") for n in nnc.networks.values() for l in n.layers.values()
              if l.type == "Unit"}
    specs: dict = {}
    pending = [name for name in nnc.networks if name in wanted]
    while pending:
        ready = [name for name in pending if all(l.properties.get("Network") not in pending
                                                 for l in nnc.networks[name].layers.values() if l.type == "Unit")]
        for name in ready or pending:
            pending.remove(name)
            network = nnc.networks[name]
            arguments, mode = _arguments(network, name, result.unmapped)
            modes[_identifier(name)] = mode
            imported = _NetworkImport(network, result.unmapped, {}, comments, specs, modes, arguments=arguments,
                                      unit=True)
            graph = imported.graph
            fed = {link.src for link in graph.links()}
            sinks = [n.id for n in graph.nodes() if n.id not in fed]
            if network.loop is not None:
                loop = _loop(network.loop, imported.ends)
                if loop is None:
                    continue  # a layer it names was not imported; it is in the unmapped list already
                block = Block(_identifier(name), graph, imported.ends[network.loop.output][1], arguments, loop)
            elif len(sinks) != 1:
                result.unmapped.append(Unmapped(name, name, "Unit", f"a unit needs one output layer, it has "
                                                                   f"{len(sinks)}"))
                continue
            else:
                block = Block(_identifier(name), graph, sinks[0], arguments)
            result.project.blocks[block.name] = block
            specs[block.name] = block_spec(block)
    return specs


_NUMBER = r"-?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?"


def _argument_value(kind: str, value: str) -> Any:
    """An NNC argument's value with the type its Type names; ValueError if it does not have that form.

    Int, PInt (positive) and UInt are whole numbers, Float and PFloat real ones (an int where whole, since
    NNC's samples count channels with them), the Arrays comma-separated whole numbers, Boolean True or False;
    Text is read as a number where it is one (NNC's samples keep channel counts in Text arguments too), since
    a block param cannot hold words.
    """
    base = kind.removesuffix("OrMacro")
    if base in ("Int", "PInt", "UInt") and re.fullmatch(r"-?\d+", value):
        return int(value)
    if base in ("Float", "PFloat", "Int", "PInt", "UInt") and re.fullmatch(_NUMBER, value):
        # NNC's own samples give PInt arguments such as 0.6, and Float ones that count channels (384)
        return whole(float(value))
    if base in ("IntArray", "PIntArray", "UIntArray") and re.fullmatch(r"-?\d+(,-?\d+)*", value.replace(" ", "")):
        return [int(v) for v in value.split(",")]
    if base == "Boolean" and value in ("True", "False"):
        return value == "True"
    if base == "Text" and re.fullmatch(_NUMBER, value):
        return int(value) if re.fullmatch(r"-?\d+", value) else float(value)
    raise ValueError(value)


def _arguments(network: NncNetwork, name: str, unmapped: list[Unmapped]) -> tuple[dict[str, Any], set[str]]:
    """A network's arguments with their defaults, and those only BatchStat reads (which it takes as True)."""
    arguments, modes = {}, set()
    for layer in [l for l in network.layers.values() if l.type == "Argument"]:
        value, kind = layer.properties.get("Value", ""), layer.properties.get("Type", "")
        readers = [(l, key) for l in network.layers.values() for key, v in l.properties.items()
                   if v == f"*{layer.name}"]
        if kind.startswith("Boolean") and all(key == "BatchStat" or l.type == "Unit" for l, key in readers):
            modes.add(layer.name)
            for reader, key in readers:
                if key == "BatchStat":
                    reader.properties[key] = "True"
            continue
        try:
            arguments[layer.name] = _argument_value(kind, value.strip())
        except ValueError:
            unmapped.append(Unmapped(name, layer.name, "Argument", f"an argument of type {kind} = {value} is not "
                                     f"{'a number' if kind == 'Text' else f'a value of type {kind}'}; a block "
                                     "param holds numbers, lists of whole numbers or True/False"))
    return arguments, modes


def _loop(loop: NncLoop, ends: dict[int, tuple[str, str]]) -> Loop | None:
    """A body network's loop in our node ids; None if one of its layers was not imported."""
    named = [loop.output, *loop.sequences, *loop.states, *(source for source, _ in loop.states.values())]
    if any(layer_id not in ends for layer_id in named):
        return None
    return Loop(loop.axis, tuple(ends[i][0] for i in loop.sequences),
                {ends[i][0]: State(ends[source][1], initial) for i, (source, initial) in loop.states.items()})


def _size_loop_inputs(project: Project) -> None:
    """A loop body's inputs as one step of what its first use is fed: NNC's RecurrentInput has no size of its own."""
    for graph in project.networks.values():
        shapes = infer_shapes(graph)
        for node in graph.nodes():
            block = project.blocks.get(node.type)
            if block is None or block.loop is None or shapes[node.id].error is not None:
                continue
            for port, shape in zip(block.inputs, block.steps(shapes[node.id].inputs)[1]):
                block.graph.node(port).params["shape"] = list(shape)


def _probe(value: Any) -> Any:
    """A unit argument's value changed to see which params follow it: another number that the divisions NNC's
    samples write (``ConvMaps/4``, ``Maps/3``) still divide evenly."""
    return [_probe(v) for v in value] if isinstance(value, list) else (value + 1) * 60


def _in_link_order(network: NncNetwork) -> list[NncLayer]:
    """The layers so that each comes after those that feed it, in file order where free to; in file order alone
    where the links close a cycle (a Delay whose loop could not be taken out, which is listed already)."""
    links = nx.DiGraph([(l.src, l.dst) for l in network.links])
    links.add_nodes_from(network.layers)
    place = {layer_id: i for i, layer_id in enumerate(network.layers)}
    try:
        order = list(nx.lexicographical_topological_sort(links, key=place.get))
    except nx.NetworkXUnfeasible:
        order = list(network.layers)
    return [network.layers[i] for i in order]


def _identifier(text: str) -> str:
    """NNC names (``Convolution_2``, ``Main_``, ``Top-1 Error``) as node and network ids."""
    cleaned = re.sub(r"\W", "_", text)
    return cleaned if re.match(r"[A-Za-z_]", cleaned) else f"n_{cleaned}"


def _target_shape(graph: Graph, loss: str, predicted: tuple[int, ...]) -> tuple[int, ...] | None:
    """What the loss's own shape rule accepts as target: the prediction's shape, or a class index per position."""
    spec = graph.spec(graph.node(loss).type)
    params = spec.resolve(graph.node(loss).params)
    for candidate in (predicted, (1,) + predicted[1:]):
        try:
            spec.shape((predicted, candidate), params)
        except ShapeError:
            continue
        return candidate
    return None


class _NetworkImport:
    """One NNC network into one Graph: layers through the registry, links by pin, loss targets as Inputs."""

    def __init__(self, network: NncNetwork, unmapped: list[Unmapped], inputs: dict[str, str], comments: list[str],
                 blocks: dict, modes: dict[str, set[str]], trained: bool = False,
                 arguments: dict[str, Any] | None = None, unit: bool = False):
        self.network, self.unmapped, self.inputs, self.trained = network, unmapped, inputs, trained
        self.arguments = arguments or {}
        """The network's arguments and their defaults: a unit's are its block's params, another network's
        only constants its properties name."""
        self.unit = unit
        self.modes = modes
        """Block -> its unit's arguments that only say whether BatchNormalization uses batch statistics."""
        self.graph = Graph(blocks=blocks)
        self.ends: dict[int, tuple[str, str]] = {}
        """NNC layer id -> (first node, last node) of what it became."""
        self.reads: dict[str, str] = {}
        """Dataset variable -> the Input node reading it."""
        self.slot: dict[int, int] = {}
        """Index of each link in the network's list -> the input it feeds of its layer, counted in port order."""
        for layer_id in network.layers:
            into = [i for i, l in enumerate(network.links) if l.dst == layer_id]
            pins = [network.links[i].dst_pin for i in into]
            # Where NNC numbers a layer's input pins they say the order; where it gives them all 0, the links do.
            ordered = sorted(into, key=lambda i: network.links[i].dst_pin) if len(set(pins)) == len(pins) else into
            self.slot.update((index, slot) for slot, index in enumerate(ordered))
        self.slices: list[str] = []
        """Our Slice nodes made from NNC's all-axes Slices."""
        fan_in = {layer_id: sum(l.dst == layer_id for l in network.links) for layer_id in network.layers}
        targets = []
        # In link order, so that a layer's input shapes are known when its properties are worked out.
        for layer in _in_link_order(network):
            if layer.type == "Comment":
                comments.append(f"{network.name}: {layer.properties.get('Text', '').strip()}")
                continue
            if layer.type != "Argument" and self._layer(layer, fan_in[layer.id]) and "T.Dataset" in layer.properties:
                targets.append(layer)
            for index, link in enumerate(network.links):
                if link.dst == layer.id:
                    self._link(index)
        for layer in targets:
            self._target(layer)
        self._drop_whole_axis_slices()

    def _refuse(self, layer: NncLayer, why: str) -> None:
        self.unmapped.append(Unmapped(self.network.name, layer.name or layer.section, layer.type, why))

    def _layer(self, layer: NncLayer, fan_in: int) -> bool:
        if layer.type == "Unit":
            return self._unit(layer)
        try:
            spec = get_spec(layer.type)
        except GraphError:
            self._refuse(layer, "netcanvas has no such layer yet")
            return False
        try:
            chain = self._translate(layer, spec, self.arguments)
            if layer.type != "Input":  # a unit's Input shape is an example, worked out with the defaults
                chain = self._bind_arguments(layer, spec, chain)
        except Unmappable as exc:
            self._refuse(layer, str(exc))
            return False
        if any(p.name == "num_inputs" for p in spec.params):
            chain[0][1]["num_inputs"] = fan_in
        x, y = layer.pos
        stem = _identifier(layer.name or f"{layer.type}_{layer.id}")
        ids = []
        for step, (layer_type, params) in enumerate(chain):
            node_id = self.graph.unique_id(stem) if stem in self.graph or step else stem
            pos = (x * CANVAS_SCALE[0] + 180 * step, y * CANVAS_SCALE[1])
            try:
                self.graph.add_node(node_id, layer_type, params, pos)
            except GraphError as exc:
                self._refuse(layer, f"its properties give invalid params: {exc}")
                for added in ids:
                    self.graph.remove_node(added)
                return False
            if ids:
                self.graph.connect(ids[-1], node_id)
            ids.append(node_id)
        self.ends[layer.id] = (ids[0], ids[-1])
        if layer.type == "Slice":
            self.slices += ids
        if layer.type == "Input" and is_fed(chain[0][1]):
            variable = layer.properties.get("Dataset", ids[0])
            self.reads.setdefault(variable, ids[0])
            if variable != ids[0]:
                self.inputs[ids[0]] = variable
        return True

    def _translate(self, layer: NncLayer, spec, arguments: dict[str, Any]) -> list[tuple[str, dict]]:
        """The (type, params) chain the layer becomes, its values worked out with these argument values."""
        properties = NncProperties(layer.type, layer.properties, self._input_shape(layer), arguments)
        if spec.nnc is not None:
            chain = spec.nnc(properties)
        elif spec.params:
            raise Unmappable("its properties have no translation to our params yet")
        else:
            chain = {}
            # T.* and R.* say what feeds an input pin left unlinked (a target, a second operand); linked, as
            # every sample's are, they are unused, and an unlinked pin is refused as an unconnected input.
            unread = sorted(k for k in layer.properties if k not in IGNORED and not k.startswith(("T.", "R.")))
            if unread:
                raise Unmappable(f"properties {', '.join(unread)} have no counterpart")
        return chain if isinstance(chain, list) else [(layer.type, chain)]

    def _bind_arguments(self, layer: NncLayer, spec, chain: list[tuple[str, dict]]) -> list[tuple[str, dict]]:
        """Params that follow a unit argument become ``$argument``: found by translating again with it changed."""
        if not self.unit:
            return chain
        base = self._translate(layer, spec, self.arguments)  # ``chain`` takes the $names as they are found
        for name, default in self.arguments.items():
            if isinstance(default, bool) or not any(name in v for v in layer.properties.values()):
                continue
            probed = _probe(default)
            changed = self._translate(layer, spec, dict(self.arguments, **{name: probed}))
            for (_, params), (_, before), (_, other) in zip(chain, base, changed):
                for key, value in before.items():
                    if value == other[key]:
                        continue
                    if value == default and other[key] == probed:
                        params[key] = f"${name}"
                    elif not isinstance(default, list) and isinstance(value, list) and \
                            all(v == o or (v, o) == (default, probed) for v, o in zip(value, other[key])):
                        params[key] = [f"${name}" if v != o else mine
                                       for v, o, mine in zip(value, other[key], params[key])]
                    else:
                        params[key] = self._expression(layer, name, key, value, other[key], probed)
        return chain

    def _expression(self, layer: NncLayer, name: str, key: str, value: Any, probed_value: Any, probed: Any) -> Any:
        """A param that is arithmetic over unit arguments (``ConvMaps/4``) as ``$ConvMaps/4``, element by element
        for a list; found in the one property that names the argument, and checked at both values."""
        readers = [v for v in layer.properties.values() if name in (names_in(v.split(",")[0]) or ())
                   or any(name in (names_in(part) or ()) for part in v.split(","))]
        values, others = (value, probed_value) if isinstance(value, list) else ([value], [probed_value])
        parts = readers[0].split(",") if len(readers) == 1 else []
        if len(parts) != len(values) or any("Input" in (names_in(part) or {"Input"}) for part in parts):
            raise Unmappable(f"its {key} is a function of the unit argument {name} that a block param cannot "
                             "express (it needs the layer's input shape, or several properties name the argument)")
        found = []
        for part, v, o in zip(parts, values, others):
            term = f"${part.strip()}"
            if v == o:
                found.append(v)
            elif fill(term, self.arguments) == v and fill(term, dict(self.arguments, **{name: probed})) == o:
                found.append(term)
            else:
                raise Unmappable(f"its {key} follows the unit argument {name} in a way the block param "
                                 f"{term} does not give")
        return found if isinstance(value, list) else found[0]

    def _input_shape(self, layer: NncLayer) -> tuple[int, ...] | None:
        """The shape of the layer's first input, where a property's arithmetic needs it (``Input[1]``)."""
        if not any("Input[" in value for value in layer.properties.values()):
            return None
        link = next((l for l in self.network.links if l.dst == layer.id and l.src in self.ends), None)
        if link is None:
            return None
        graph = filled(self.graph, self.arguments) if self.arguments else self.graph  # a unit's: at the defaults
        source = self.ends[link.src][1]
        info = infer_shapes(graph)[source]
        return tuple(info.outputs[graph.output_ports(source)[link.src_pin]]) if info.outputs else None

    def _drop_whole_axis_slices(self) -> None:
        """A Slice that keeps its axis whole (NNC slices every axis, most of them whole) is left out; a stop past
        the end of its axis becomes the axis size."""
        for node_id in self.slices:
            info = infer_shapes(self.graph)[node_id]
            if not info.outputs or info.inputs[0] != info.outputs["y"]:
                params = self.graph.node(node_id).params
                if info.inputs and params["stop"] > info.inputs[0][params["axis"]]:
                    params["stop"] = info.inputs[0][params["axis"]]
                continue
            source = self.graph.source_of(node_id, "x")
            targets = [(l.dst, l.dst_port) for l in self.graph.links() if l.src == node_id]
            self.graph.remove_node(node_id)
            for dst, port in targets:
                self.graph.connect(source[0], dst, source[1], port)

    def _unit(self, layer: NncLayer) -> bool:
        """A Unit layer: a node of the block its network became, with the arguments it gives as params."""
        block = _identifier(layer.properties.get("Network", ""))
        if block not in self.graph.blocks:
            self._refuse(layer, f"its unit network '{layer.properties.get('Network')}' could not be imported")
            return False
        spec = self.graph.blocks[block]
        values = NncProperties("Unit", layer.properties, self._input_shape(layer), self.arguments)
        params = {}
        try:
            for param in spec.params:
                given = layer.properties.get(param.name)
                if given is None:
                    continue
                if self.unit and given.startswith("*") and given[1:] in self.arguments:
                    params[param.name] = f"${given[1:]}"  # the enclosing unit's argument, passed on
                elif isinstance(param.default, bool):
                    params[param.name] = values.flag(param.name)
                elif isinstance(param.default, list):
                    params[param.name] = values.ints(param.name)
                elif isinstance(param.default, float):
                    params[param.name] = values.number(param.name)
                else:
                    params[param.name] = values.int(param.name)
            for name, value in layer.properties.items():
                if name in self.modes.get(block, ()) and value == "False" and self.trained:
                    raise Unmappable(f"{name} = False makes its BatchNormalization layers use running statistics "
                                     "while training, which netcanvas has no counterpart for")
        except Unmappable as exc:
            self._refuse(layer, str(exc))
            return False
        node_id = _identifier(layer.name)
        node_id = self.graph.unique_id(node_id) if node_id in self.graph else node_id
        self.graph.add_node(node_id, block, params, (layer.pos[0] * CANVAS_SCALE[0], layer.pos[1] * CANVAS_SCALE[1]))
        self.ends[layer.id] = (node_id, node_id)
        return True

    def _link(self, index: int) -> None:
        link = self.network.links[index]
        if link.src not in self.ends or link.dst not in self.ends:
            return  # an end was not imported; it is in the unmapped list already
        src, dst = self.ends[link.src][1], self.ends[link.dst][0]
        outputs, inputs = self.graph.output_ports(src), self.graph.input_ports(dst)
        taken = self.slot[index]
        if link.src_pin >= len(outputs) or taken >= len(inputs):
            self._refuse(self.network.layers[link.dst], f"it has more inputs than our {self.graph.node(dst).type} "
                                                        f"({len(inputs)})")
            return
        self.graph.connect(src, dst, outputs[link.src_pin], inputs[taken])

    def _target(self, layer: NncLayer) -> None:
        """Wire the loss's target: the Input reading T.Dataset, or a new label Input of the right shape."""
        loss = self.ends[layer.id][0]
        if self.graph.source_of(loss, "target"):
            return  # a second link feeds the target (NNC then ignores T.Dataset)
        generator = layer.properties.get("T.Generator", "None").lower()
        variable = layer.properties["T.Dataset"]
        if generator == "none" and variable in self.reads:
            self.graph.connect(self.reads[variable], loss, None, "target")
            return
        shapes = infer_shapes(self.graph)
        source = self.graph.source_of(loss, "x")
        predicted = shapes[source[0]].outputs.get(source[1]) if source and shapes[source[0]].outputs else None
        if predicted is None:
            self._refuse(layer, "the shape of its input is unknown, so its target Input cannot be sized")
            return
        shape = _target_shape(self.graph, loss, tuple(predicted))
        if shape is None:
            self._refuse(layer, f"no target shape fits its input {predicted}")
            return
        # A generated target (NNC's T.Generator: a GAN's constant labels) is an Input the network makes itself.
        stem = _identifier(variable if generator == "none" else f"{layer.name}_target")
        node_id = stem if stem not in self.graph else self.graph.unique_id(stem)
        params = {"shape": list(shape)}
        if generator != "none":
            try:
                params.update(generator=generator, multiplier=float(layer.properties.get("T.GeneratorMultiplier", 1)))
                get_spec("Input").resolve(params)
            except (ValueError, GraphError):
                self._refuse(layer, f"its target generator {layer.properties['T.Generator']} x "
                                    f"{layer.properties.get('T.GeneratorMultiplier')} has no counterpart")
                return
        x, y = self.graph.node(loss).pos
        self.graph.add_node(node_id, "Input", params, (x - 200, y))
        self.graph.connect(node_id, loss, None, "target")
        if generator != "none":
            return
        self.reads[variable] = node_id
        if variable != node_id:
            self.inputs[node_id] = variable


def _sections(nnc: NncProject, inputs: dict[str, str], notes: list[str], augmentation: dict) -> dict:
    """The dataset and training sections from NNC's datasets, config and first optimizer."""
    sections: dict = {}
    datasets = {d.get("Name", ""): d for d in nnc.datasets}
    optimizer = nnc.optimizers[0] if nnc.optimizers else {}
    training_set = datasets.get(optimizer.get("Optimizer_DatasetName", "Training"))
    validation_set = next((datasets[m["Monitor_DatasetName"]] for m in nnc.monitors
                           if m.get("Monitor_DatasetName") in datasets
                           and m.get("Monitor_DatasetName") != optimizer.get("Optimizer_DatasetName")),
                          datasets.get("Validation"))
    dataset: dict = {}
    for key, source in (("training", training_set), ("validation", validation_set)):
        if source and source.get("URI"):
            dataset[key] = _data_path(source["URI"])
    if training_set:
        dataset["cache"] = training_set.get("EnableCache", "1") == "1"
        dataset["normalize"] = "unit" if training_set.get("ImageNormalization", "1") == "1" else "none"
    if inputs:
        dataset["inputs"] = dict(inputs)
    if "_image_size" in augmentation:
        dataset["image_size"] = augmentation.pop("_image_size")
    if dataset:
        sections["dataset"] = dataset
    training: dict = {}
    if nnc.config.get("MaxEpoch"):
        training["epochs"] = int(nnc.config["MaxEpoch"])
    if nnc.config.get("BatchSize"):
        training["batch_size"] = int(nnc.config["BatchSize"])
    if optimizer:
        training["optimizer"] = _solver(optimizer, notes)
        schedule = _schedule(optimizer, notes)
        if schedule:
            training["schedule"] = schedule
    if augmentation:
        training["augmentation"] = augmentation
    if training:
        sections["training"] = training
    search = _search(nnc.structure_search, notes)
    if search:
        sections["search"] = search
    return sections


def _search(settings: dict[str, str], notes: list[str]) -> dict:
    """NNC's structure search settings as the search section: its size limit and number of attempts."""
    def setting(key: str) -> int:
        try:
            return int(float(settings.get(key) or -1))
        except ValueError:
            return -1

    search = {}
    if setting("CostMultiplyAdd_Max") > 0:
        search["max_macs"] = setting("CostMultiplyAdd_Max")
    if setting("AttemptTimes") > 0:
        search["max_trials"] = setting("AttemptTimes")
    left = [f"{key} = {settings[key]}" for key in ("CostMultiplyAdd_Min", "Validation_Min", "Validation_Max")
            if setting(key) > 0]
    if settings.get("Enabled") == "1" and settings.get("Method", "Random") != "Random":
        left.append(f"Method = {settings['Method']} (the search here mutates at random)")
    if left:
        notes.append(f"structure search: {', '.join(left)} not carried over")
    return search


def _data_path(uri: str) -> str:
    """NNC's dataset URI as a path: forward slashes, the {SDCPATH} of NNC's install left out."""
    return uri.replace("{SDCPATH}", "").replace("\\", "/")


def _solver(optimizer: dict[str, str], notes: list[str]) -> dict:
    count = int(optimizer.get("SolverParameterNum", "0"))
    values = {optimizer.get(f"SolverParameterName_{i}"): optimizer.get(f"SolverParameter_{i}") for i in range(count)}
    name = optimizer.get("SolverName", "Adam")
    if name in ("Adam", "AdamW"):
        settings = {"type": name, "lr": float(values.get("Alpha", 0.001)), "beta1": float(values.get("Beta1", 0.9)),
                    "beta2": float(values.get("Beta2", 0.999))}
    elif name in ("Sgd", "Momentum", "Nesterov"):
        settings = {"type": "SGD", "lr": float(values.get("LearningRate", values.get("Lr", 0.01))),
                    "momentum": float(values.get("Momentum", 0.0)), "nesterov": name == "Nesterov"}
    else:
        notes.append(f"solver {name} has no counterpart; Adam with NNC's defaults instead")
        settings = {"type": "Adam"}
    if float(optimizer.get("WeightDecay", "0") or 0):
        settings["weight_decay"] = float(optimizer["WeightDecay"])
    return settings


def _schedule(optimizer: dict[str, str], notes: list[str]) -> dict:
    """NNC's learning-rate scheduler as training.schedule: Cosine, and Exponential stepped in epochs (our step
    schedule); what has no counterpart is a note, its interval in NNC's unit (epochs, or updates)."""
    scheduler = optimizer.get("LearningRateScheduler") or "None"
    multiplier = float(optimizer.get("LearningRateMultiplier", "1") or 1)
    interval = optimizer.get("LearningRateUpdateInterval", "?")
    in_epochs = optimizer.get("LearningRateUpdateIntervalUnit") == "0"
    if scheduler == "Cosine":
        return {"type": "cosine"}
    if scheduler == "Exponential" and multiplier != 1 and in_epochs and interval.isdigit() and 0 < multiplier < 1:
        return {"type": "step", "step_epochs": int(interval), "gamma": multiplier}
    if multiplier != 1 or scheduler not in ("None", "Exponential"):
        notes.append(f"learning-rate schedule {scheduler} (multiplier {multiplier:g} every {interval} "
                     f"{'epochs' if in_epochs else 'updates'}) is not carried over; set training.schedule")
    return {}
