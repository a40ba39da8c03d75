"""NNC's loops as netcanvas runs them: Repeat loops unrolled into copies, recurrent loops taken out.

RepeatStart ... RepeatEnd becomes copies of its body in a chain; a recurrent loop (RecurrentInput,
RecurrentOutput, Delay) becomes a body network of its own, used through a Unit layer, that the
importer turns into a loop block. Both work on the reader's plain data (``sdcproj``).
"""

from __future__ import annotations

from typing import Any

from ..arithmetic import names_in
from ..layers.nnc import NncProperties, Unmappable
from .sdcproj import NncLayer, NncLink, NncLoop, NncNetwork


def unroll_repeats(network: NncNetwork, arguments: dict[str, Any], unit: bool) -> list[tuple[str, str]]:
    """Replace each RepeatStart ... RepeatEnd loop by ``Times`` copies of its body in a chain, innermost first.

    Each copy has its own layers (and so its own weights, as each NNC repetition has), named
    ``<name>_r<k>`` from the second on; a link into the body from outside the loop feeds every copy.
    ``Times`` may be arithmetic over the network's ``arguments`` (``n-1``), but not in a ``unit``, whose uses
    may give other values. Returns (RepeatStart name, why) for each loop that could not be unrolled as drawn.
    """
    problems = []
    while True:
        starts = [l for l in network.layers.values() if l.type == "RepeatStart"]
        loop = next((found for start in starts if (found := _loop(network, start))), None)
        if loop is None:
            problems += [(s.name, "no RepeatEnd closes it, so its layers are not repeated") for s in starts]
            return problems
        start, end, body = loop
        text = start.properties.get("Times", "1")
        try:
            if unit and (names_in(text) or set()) & set(arguments):
                raise Unmappable(f"Times = {text} follows a unit argument, and a block is one network for every use")
            times = NncProperties("RepeatStart", start.properties, None, arguments).int("Times", "1")
        except Unmappable as exc:
            problems.append((start.name, f"{exc}; its body is there once"))
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


def extract_loops(network: NncNetwork) -> tuple[list[NncNetwork], list[tuple[str, str]]]:
    """Take each recurrent loop out of ``network`` into a body network of its own, used there by a Unit layer.

    A loop is a RecurrentOutput with the RecurrentInputs and Delays that reach it (an LSTM auto-encoder has
    two: the encoder's, then the decoder's). Its body is every layer the RecurrentInputs and Delays reach
    before RecurrentOutput or a Delay. In the body, each RecurrentInput becomes an Input given one step at a
    time, each value from outside the loop an Input given whole, and each Delay an Input holding the value
    of the layer feeding it at the step before (``NncLoop``). Returns the bodies (none where a loop cannot be
    taken out) and (layer, why) for each problem.
    """
    found = {kind: [l for l in network.layers.values() if l.type == kind] for kind in _RECURRENT}
    starts, ends, delays = found["RecurrentInput"], found["RecurrentOutput"], found["Delay"]
    if not (starts or ends or delays):
        return [], []
    if not starts or not ends:
        first = (ends or starts or delays)[0]
        return [], [(first.name, f"a recurrent loop needs RecurrentInputs and a RecurrentOutput; this network has "
                                 f"{len(starts)} and {len(ends)}")]
    bodies, problems, claimed = [], [], set()
    for index, end in enumerate(ends):
        own_starts, own_delays = _members(network, end)
        claimed.update(layer.id for layer in own_starts + own_delays)
        if not own_starts:
            problems.append((end.name, "no RecurrentInput reaches it"))
            continue
        name = "Recurrent" if index == 0 else f"Recurrent_{index + 1}"
        body, why = _extract_loop(network, own_starts, end, own_delays, name)
        problems += why
        if body is not None:
            bodies.append(body)
    problems += [(layer.name, "it reaches no RecurrentOutput, so it belongs to no loop")
                 for layer in starts + delays if layer.id not in claimed]
    return bodies, problems


def _members(network: NncNetwork, end: NncLayer) -> tuple[list[NncLayer], list[NncLayer]]:
    """The RecurrentInputs and Delays of ``end``'s loop: those reached going back from it, through a Delay to
    what feeds it, never past a RecurrentInput or another loop's RecurrentOutput; in file order."""
    seen, frontier = set(), [l.src for l in network.links if l.dst == end.id]
    while frontier:
        layer_id = frontier.pop()
        if layer_id in seen:
            continue
        seen.add(layer_id)
        if network.layers[layer_id].type not in ("RecurrentInput", "RecurrentOutput"):
            frontier += [l.src for l in network.links if l.dst == layer_id]
    members = [network.layers[i] for i in network.layers if i in seen]
    return [l for l in members if l.type == "RecurrentInput"], [l for l in members if l.type == "Delay"]


def _extract_loop(network: NncNetwork, starts: list[NncLayer], end: NncLayer, delays: list[NncLayer],
                  name: str) -> tuple[NncNetwork | None, list[tuple[str, str]]]:
    """One loop out of ``network`` into the body network ``<network>_<name>``, used by a Unit layer ``name``."""
    axes = {layer.properties.get("Axis", "0") for layer in starts + [end]}
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
    loop_net = NncNetwork(f"{network.name}_{name}")
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
    unit = NncLayer(next_id, "Unit", name, {"Name": name, "Network": loop_net.name}, starts[0].pos,
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
