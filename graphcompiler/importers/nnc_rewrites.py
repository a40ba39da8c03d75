"""Rewrites of an NNC network before its layers are mapped: what NNC expresses with layers and we do not.

Repeat loops become copies of their body; a recurrent loop (RecurrentInput, RecurrentOutput, Delay)
becomes a body network of its own, used through a Unit layer, that the importer turns into a loop
block; augmentation layers become the training section's augmentation; running statistics in
networks no optimizer trains become plain BatchNormalization (our inference mode). Each works on the reader's plain data (``sdcproj``) and says what it changed.
"""

from __future__ import annotations

import math
import re

from .sdcproj import NncLayer, NncLink, NncLoop, NncNetwork


def inference_statistics(network: NncNetwork, notes: list[str]) -> None:
    """BatchStat = False (use the running statistics) is what our inference mode does anyway, in a network no
    optimizer trains (NNC's validation and runtime networks); there it maps as plain BatchNormalization."""
    frozen = [l for l in network.layers.values() if l.type == "BatchNormalization"
              and l.properties.get("BatchStat") == "False"]
    for layer in frozen:
        layer.properties["BatchStat"] = "True"
    if frozen:
        notes.append(f"{network.name}: {len(frozen)} BatchNormalization layer(s) with BatchStat = False use the "
                     "running statistics, as every network does in inference mode")


def unit_properties(network: NncNetwork, notes: list[str]) -> None:
    """Give a unit's own file (the network behind a Unit layer, imported by itself) values for the
    ``*UnitProperty(X)`` its layers read from the Unit layer that would use it.

    NNC's LSTM unit reads Axis (the time axis) and Size (the hidden state); by itself the unit takes
    time on the first axis of its Input and a hidden state as wide as the Input's last axis.
    """
    inputs = [l for l in network.layers.values() if l.type == "Input" and "," in l.properties.get("Size", "")]
    defaults = {"Axis": "0"}
    if inputs:
        defaults["Size"] = inputs[0].properties["Size"].split(",")[-1]
    used: set[str] = set()
    for layer in network.layers.values():
        for key, value in layer.properties.items():
            found = re.fullmatch(r"\*UnitProperty\((\w+)\)", value)
            if found and found.group(1) in defaults:
                layer.properties[key] = defaults[found.group(1)]
                used.add(found.group(1))
    if used:
        notes.append(f"{network.name}: a unit imported by itself; the properties its Unit layer would give are "
                     + ", ".join(f"{name} = {defaults[name]}" for name in sorted(used)))


def fold_augmentation(network: NncNetwork, augmentation: dict, notes: list[str]) -> None:
    """Take NNC's augmentation layers out of the network into the training section's augmentation.

    ImageAugmentation, RandomShift and RandomFlip change training samples only (NNC skips them at
    test time), which is what our augmentation does to every training batch. An ImageAugmentation
    that crops to a smaller Shape becomes the Input's shape and a resize of the images
    (dataset.image_size): a resize, not a random crop, which the notes say.
    """
    for layer in [l for l in network.layers.values() if l.type in _AUGMENTERS]:
        _AUGMENTERS[layer.type](layer, network, augmentation, notes)
        entering = [l for l in network.links if l.dst == layer.id]
        leaving = [l for l in network.links if l.src == layer.id]
        network.links = [l for l in network.links if layer.id not in (l.src, l.dst)]
        if entering:
            network.links += [NncLink(entering[0].src, entering[0].src_pin, l.dst, l.dst_pin) for l in leaving]
        del network.layers[layer.id]


def _image_augmentation(layer: NncLayer, network: NncNetwork, augmentation: dict, notes: list[str]) -> None:
    p = layer.properties

    def value(name: str, default: str) -> float:
        return _number(p.get(name, default))

    low, high = value("MinScale", "1"), value("MaxScale", "1")
    if low != 1 or high != 1:
        augmentation["scale"] = round(min(max(1 - low, high - 1), 0.9), 6)
        if abs((1 - low) - (high - 1)) > 1e-6:
            notes.append(f"{layer.name}: zoom {low:g}-{high:g} became the symmetric 1 +- {augmentation['scale']:g}")
    if value("Angle", "0"):
        augmentation["rotate"] = round(math.degrees(value("Angle", "0")), 6)
    for ours, theirs in (("flip_x", "FlipLR"), ("flip_y", "FlipUD")):
        if p.get(theirs) == "True":
            augmentation[ours] = True
    if value("Brightness", "0"):
        augmentation["brightness"] = value("Brightness", "0")
    if value("Contrast", "1") > 1:
        augmentation["contrast"] = min(value("Contrast", "1") - 1, 1.0)
    if value("Noise", "0"):
        augmentation["noise"] = value("Noise", "0")
    if value("AspectRatio", "1") != 1 or value("Distortion", "0") or any(int(v) for v in p.get("Pad", "0").split(",")):
        notes.append(f"{layer.name}: AspectRatio {p.get('AspectRatio')}, Distortion {p.get('Distortion')} and Pad "
                     f"{p.get('Pad')} are not carried over")
    source = _feeding_input(network, layer)
    shape = p.get("Shape", "*Input")  # *Input: the input's own shape
    if not shape.startswith("*") and source is not None and source.type == "Input" and source.properties.get("Size") != shape:
        notes.append(f"{layer.name}: its random crop of {source.properties.get('Size')} to {shape} became a resize "
                     f"of the images to {shape} (dataset.image_size)")
        source.properties["Size"] = shape
        augmentation.setdefault("_image_size", [int(v) for v in shape.split(",")][-2:])


def _feeding_input(network: NncNetwork, layer: NncLayer) -> NncLayer | None:
    """The Input whose data reaches ``layer`` through one-input layers (NNC scales pixels before augmenting)."""
    while True:
        sources = [network.layers[l.src] for l in network.links if l.dst == layer.id]
        if len(sources) != 1:
            return None
        layer = sources[0]
        if layer.type == "Input":
            return layer


def _number(text: str) -> float:
    """NNC writes some values as fractions (Brightness = 10/255)."""
    if "/" in text:
        top, bottom = text.split("/", 1)
        return float(top) / float(bottom)
    return float(text)


def _random_shift(layer: NncLayer, network: NncNetwork, augmentation: dict, notes: list[str]) -> None:
    augmentation["shift"] = max(int(v) for v in layer.properties.get("Shift", "0").split(","))
    if layer.properties.get("BorderMode", "nearest") != "constant":
        notes.append(f"{layer.name}: shifted-in borders are zeros here, {layer.properties.get('BorderMode')} in NNC")


def _random_flip(layer: NncLayer, network: NncNetwork, augmentation: dict, notes: list[str]) -> None:
    for axis in layer.properties.get("Axes", "").split(","):
        # Sample axes: 2 is the width of C x H x W, 1 the height.
        augmentation[{"2": "flip_x", "1": "flip_y"}.get(axis.strip(), "flip_x")] = True


_AUGMENTERS = {"ImageAugmentation": _image_augmentation, "RandomShift": _random_shift, "RandomFlip": _random_flip}


def unroll_repeats(network: NncNetwork) -> list[tuple[str, str]]:
    """Replace each RepeatStart ... RepeatEnd loop by ``Times`` copies of its body in a chain, innermost first.

    Each copy has its own layers (and so its own weights, as each NNC repetition has), named
    ``<name>_r<k>`` from the second on; a link into the body from outside the loop feeds every copy.
    Returns (RepeatStart name, why) for each loop that could not be unrolled.
    """
    problems = []
    while True:
        starts = [l for l in network.layers.values() if l.type == "RepeatStart"]
        loop = next((found for start in starts if (found := _loop(network, start))), None)
        if loop is None:
            problems += [(s.name, "no RepeatEnd closes it") for s in starts]
            return problems
        start, end, body = loop
        try:
            times = int(start.properties.get("Times", "1"))
        except ValueError:
            problems.append((start.name, f"Times = {start.properties.get('Times')} is not a whole number"))
            times = 1
        _unroll(network, start, end, body, max(times, 1))


def _loop(network: NncNetwork, start: NncLayer):
    """(start, end, body ids) when no other loop begins inside this one; else None."""
    successors: dict[int, list[int]] = {}
    for link in network.links:
        successors.setdefault(link.src, []).append(link.dst)
    body, end, frontier = set(), None, list(successors.get(start.id, []))
    while frontier:
        layer_id = frontier.pop()
        layer = network.layers[layer_id]
        if layer.type == "RepeatEnd":
            end = end or layer
            continue
        if layer.type == "RepeatStart":
            return None
        if layer_id not in body:
            body.add(layer_id)
            frontier.extend(successors.get(layer_id, []))
    return (start, end, body) if end is not None else None


def _unroll(network: NncNetwork, start: NncLayer, end: NncLayer, body: set[int], times: int) -> None:
    touched = {start.id, end.id, *body}
    entering = [l for l in network.links if l.dst == start.id]
    into_body = [l for l in network.links if l.dst in body]
    to_end = [l for l in network.links if l.dst == end.id]
    leaving = [l for l in network.links if l.src == end.id]
    network.links = [l for l in network.links if l.src not in touched and l.dst not in touched]
    value = (entering[0].src, entering[0].src_pin) if entering else None
    next_id = max(network.layers) + 1
    for copy in range(times):
        ids = {layer_id: layer_id for layer_id in body}
        for layer_id in sorted(body) if copy else ():
            original = network.layers[layer_id]
            name = f"{original.name}_r{copy + 1}"
            network.layers[next_id] = NncLayer(next_id, original.type, name, dict(original.properties, Name=name),
                                               (original.pos[0] + 280 * copy, original.pos[1]), original.section)
            ids[layer_id] = next_id
            next_id += 1
        for link in into_body:
            if link.src == start.id:
                source = value
            else:
                source = (ids.get(link.src, link.src), link.src_pin)
            if source is not None:
                network.links.append(NncLink(source[0], source[1], ids[link.dst], link.dst_pin))
        if to_end:
            value = (ids.get(to_end[0].src, to_end[0].src), to_end[0].src_pin)
    if value is not None:
        network.links += [NncLink(value[0], value[1], l.dst, l.dst_pin) for l in leaving]
    del network.layers[start.id], network.layers[end.id]


_RECURRENT = ("RecurrentInput", "RecurrentOutput", "Delay")


def extract_loop(network: NncNetwork) -> tuple[NncNetwork | None, list[tuple[str, str]]]:
    """Take a recurrent loop out of ``network`` into a body network of its own, used there by a Unit layer.

    The body is every layer the RecurrentInputs and Delays reach before RecurrentOutput or a Delay. In
    the body, each RecurrentInput becomes an Input given one step at a time, each value from outside
    the loop an Input given whole, and each Delay an Input holding the value of the layer feeding it at
    the step before (``NncLoop``). Returns the body (None where there is no loop, or where it cannot be
    taken out) and (layer, why) for each problem.
    """
    found = {kind: [l for l in network.layers.values() if l.type == kind] for kind in _RECURRENT}
    starts, ends, delays = found["RecurrentInput"], found["RecurrentOutput"], found["Delay"]
    if not (starts or ends or delays):
        return None, []
    if not starts or len(ends) != 1:
        first = (ends or starts or delays)[0]
        return None, [(first.name, f"a recurrent loop needs RecurrentInputs and one RecurrentOutput; this network "
                                   f"has {len(starts)} and {len(ends)}")]
    end = ends[0]
    axes = {layer.properties.get("Axis", "0") for layer in starts + ends}
    if len(axes) != 1 or not axes.copy().pop().isdigit():
        return None, [(end.name, f"its loop's RecurrentInputs and RecurrentOutput need one time axis, they have "
                                 f"Axis {', '.join(sorted(axes))}")]
    into = {layer_id: [l for l in network.links if l.dst == layer_id] for layer_id in network.layers}
    carriers = {layer.id for layer in starts + delays}
    body: set[int] = set()
    frontier = [l.dst for l in network.links if l.src in carriers]
    while frontier:
        layer_id = frontier.pop()
        if layer_id not in body and layer_id not in carriers and layer_id != end.id:
            body.add(layer_id)
            frontier += [l.dst for l in network.links if l.src == layer_id]
    problems = _loop_problems(network, body, into, end, delays, starts)
    if problems:
        return None, problems
    loop_net = NncNetwork(f"{network.name}_Recurrent")
    for start in starts:
        loop_net.layers[start.id] = NncLayer(start.id, "Input", start.name, {"Name": start.name, "Size": "1"},
                                             start.pos, start.section)
    next_id = max(network.layers) + 1
    outside: dict[tuple[int, int], int] = {}
    for link in network.links:
        if link.dst in body and link.src not in body and link.src not in carriers \
                and (link.src, link.src_pin) not in outside:
            source = network.layers[link.src]
            loop_net.layers[next_id] = NncLayer(next_id, "Input", source.name, {"Name": source.name, "Size": "1"},
                                                source.pos, source.section)
            outside[(link.src, link.src_pin)] = next_id
            next_id += 1
    states = {}
    for delay in delays:
        loop_net.layers[delay.id] = NncLayer(delay.id, "Input", delay.name,
                                             {"Name": delay.name, "Size": delay.properties.get("Size", "1")},
                                             delay.pos, delay.section)
        states[delay.id] = (into[delay.id][0].src, float(delay.properties.get("Initial.GeneratorMultiplier", "0")))
    for layer_id in sorted(body):
        loop_net.layers[layer_id] = network.layers[layer_id]
    for link in network.links:
        if link.dst not in body:
            continue
        if (link.src, link.src_pin) in outside:
            loop_net.links.append(NncLink(outside[(link.src, link.src_pin)], 0, link.dst, link.dst_pin))
        else:
            loop_net.links.append(link)
    loop_net.loop = NncLoop(int(axes.pop()), [s.id for s in starts], states, into[end.id][0].src)
    unit = NncLayer(next_id, "Unit", "Recurrent", {"Name": "Recurrent", "Network": loop_net.name}, starts[0].pos,
                    starts[0].section)
    feeds = [NncLink(into[s.id][0].src, into[s.id][0].src_pin, unit.id, 0) for s in starts]
    feeds += [NncLink(src, pin, unit.id, 0) for src, pin in outside]
    leaving = [NncLink(unit.id, 0, l.dst, l.dst_pin) for l in network.links if l.src == end.id]
    taken = body | carriers | {end.id}
    network.links = [l for l in network.links if l.src not in taken and l.dst not in taken] + feeds + leaving
    for layer_id in taken:
        del network.layers[layer_id]
    network.layers[unit.id] = unit
    return loop_net, []


def _loop_problems(network: NncNetwork, body: set[int], into: dict, end: NncLayer, delays: list[NncLayer],
                   starts: list[NncLayer]) -> list[tuple[str, str]]:
    """Why a loop cannot be taken out as it is drawn: each (layer, why)."""
    problems = []
    for layer in starts + [end] + delays:
        if len(into[layer.id]) != 1:
            problems.append((layer.name, f"it has {len(into[layer.id])} inputs; it needs one"))
        elif layer.type != "RecurrentInput" and into[layer.id][0].src not in body:
            problems.append((layer.name, "what feeds it is not inside the loop"))
    for delay in delays:
        generator = delay.properties.get("Initial.Generator", "None")
        if generator != "Constant":
            problems.append((delay.name, f"its initial value comes from {'the dataset' if generator == 'None' else generator},"
                                         " which netcanvas has no counterpart for yet (only Constant)"))
    reached, frontier = set(), [l.src for layer in [end] + delays for l in into[layer.id]]
    while frontier:
        layer_id = frontier.pop()
        if layer_id in body and layer_id not in reached:
            reached.add(layer_id)
            frontier += [l.src for l in into[layer_id]]
    problems += [(network.layers[i].name, "it is inside a recurrent loop but feeds neither RecurrentOutput nor a Delay")
                 for i in sorted(body - reached)]
    return problems
