"""Rewrites of an NNC network before its layers are mapped: what NNC expresses with layers and we do not.

A GAN's training networks become a generator and a discriminator network; Repeat loops become
copies of their body; cutout and mixup drawn as layers in the pattern of NNC's
samples become the training section's cutout and mixup; a recurrent loop (RecurrentInput, RecurrentOutput, Delay)
becomes a body network of its own, used through a Unit layer, that the importer turns into a loop
block; augmentation layers become the training section's augmentation; running statistics in
networks no optimizer trains become plain BatchNormalization (our inference mode). Each works on the reader's plain data (``sdcproj``) and says what it changed.
"""

from __future__ import annotations

import math
import re

import numpy as np

from .sdcproj import NncLayer, NncLink, NncLoop, NncNetwork, NncProject


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


def _sources(network: NncNetwork, layer_id: int) -> list[NncLayer]:
    return [network.layers[l.src] for l in network.links if l.dst == layer_id]


def _descendants(network: NncNetwork, ids: set[int]) -> set[int]:
    found, frontier = set(), list(ids)
    while frontier:
        layer_id = frontier.pop()
        for link in network.links:
            if link.src == layer_id and link.dst not in found:
                found.add(link.dst)
                frontier.append(link.dst)
    return found


def _fed(network: NncNetwork) -> list[NncLayer]:
    """The Inputs the dataset feeds."""
    return [l for l in network.layers.values() if l.type == "Input" and l.properties.get("Generator", "None") == "None"]


def _generated(layer: NncLayer, *kinds: str) -> bool:
    return layer.type == "Input" and layer.properties.get("Generator") in kinds


def _replace_by(network: NncNetwork, layer_id: int, source: NncLayer, removed: set[int]) -> None:
    """Feed what ``layer_id`` fed from ``source`` instead, and delete the ``removed`` layers."""
    network.links = [NncLink(source.id, 0, l.dst, l.dst_pin) if l.src == layer_id else l for l in network.links]
    network.links = [l for l in network.links if l.src not in removed and l.dst not in removed]
    for gone in removed:
        del network.layers[gone]


def fold_cutout(network: NncNetwork, augmentation: dict, notes: list[str]) -> None:
    """NNC's cutout drawn as layers (its resnet-110-cutout sample) becomes training.augmentation.cutout.

    The pattern: ``Add2(image x RSubScalar(1 - M), noise x M)``, where the mask M is a generated
    constant square Input, padded and shifted at random (Pad, RandomShift) and the noise a generated
    Input. Our cutout erases a square of the same size to zero, which the notes say.
    """
    for add in [l for l in network.layers.values() if l.type == "Add2"]:
        found = _cutout(network, add)
        if found is None:
            continue
        image, mask, noise, removed = found
        _replace_by(network, add.id, image, removed)
        size = [int(v) for v in mask.properties.get("Size", "1,1").split(",")][-2:]
        augmentation["cutout"] = {"size": max(size)}
        notes.append(f"{add.name}: cutout drawn as layers became training.augmentation.cutout (size {max(size)}); "
                     f"the square is erased to zero, not filled with {noise.properties.get('Generator')} noise x "
                     f"{noise.properties.get('GeneratorMultiplier')} as in NNC")


def _cutout(network: NncNetwork, add: NncLayer):
    """(image source, mask Input, noise Input, layers to remove) where ``add`` ends NNC's cutout pattern."""
    parts = _sources(network, add.id)
    if len(parts) != 2 or any(p.type != "Mul2" for p in parts):
        return None
    for kept, filled in (parts, parts[::-1]):
        kept_in, filled_in = _sources(network, kept.id), _sources(network, filled.id)
        inverse = next((l for l in kept_in if l.type == "RSubScalar" and _number(l.properties.get("Value", "0")) == 1),
                       None)
        if inverse is None or len(kept_in) != 2 or len(filled_in) != 2:
            continue
        image = next(l for l in kept_in if l is not inverse)
        mask = _sources(network, inverse.id)
        noise = [l for l in filled_in if _generated(l, "Normal", "Uniform", "Constant")]
        if len(mask) != 1 or mask[0] not in filled_in or len(noise) != 1:
            continue
        chain, square = [mask[0]], mask[0]
        while square.type in ("RandomShift", "Pad") and len(_sources(network, square.id)) == 1:
            square = _sources(network, square.id)[0]
            chain.append(square)
        if _generated(square, "Constant") and any(l.type == "RandomShift" for l in chain):
            return image, square, noise[0], {add.id, kept.id, filled.id, inverse.id, noise[0].id, *(l.id for l in chain)}
    return None


def fold_mixup(nnc: NncProject, trained: str, augmentation: dict, notes: list[str]) -> None:
    """NNC's mixup drawn as layers (its resnet-110-mixup sample) becomes training.augmentation.mixup.

    The pattern: a second network that another optimizer runs (SetData) writes a second batch of images
    and labels to WorkingMemory layers; the trained network mixes its images with them by weight
    lambda = Sigmoid(a generated Normal Input x sigma) and its losses by the same weight. The writing
    network and its optimizer are dropped, the mixing layers with them; lambda's distribution becomes
    Beta(alpha, alpha) with the same variance. Our mixup pairs the samples of one batch.
    """
    network = nnc.networks.get(trained)
    memories = {l.id for l in network.layers.values() if l.type == "WorkingMemory"} if network else set()
    weights = [l for l in network.layers.values() if _generated(l, "Normal")
               and any(c.type == "Sigmoid" for c in network.layers.values() if l in _sources(network, c.id))] \
        if memories else []
    writers = [n for n in nnc.networks.values() if n is not network and any(
        l.type == "WorkingMemory" and _sources(n, l.id) for l in n.layers.values())]
    if len(weights) != 1 or len(writers) != 1:
        return
    weight = weights[0]
    mixed = _descendants(network, {weight.id}) & _descendants(network, memories)
    losses = {l.id for l in network.layers.values() if "T.Dataset" in l.properties}
    adds = [network.layers[i] for i in mixed if network.layers[i].type == "Add2"
            and _descendants(network, {i}) & losses]
    if len(adds) != 1:
        return
    add = adds[0]
    plain = [m for m in _sources(network, add.id) if m.type == "Mul2" and m.id not in _descendants(network, memories)]
    image = [l for m in plain for l in _sources(network, m.id) if l.id not in _descendants(network, {weight.id})]
    if len(image) != 1:
        return
    network.links = [NncLink(image[0].id, 0, l.dst, l.dst_pin) if l.src == add.id else l for l in network.links]
    removed = {weight.id, *memories} | _descendants(network, {weight.id}) | _descendants(network, memories)
    _replace_by(network, -1, image[0], removed)
    del nnc.networks[writers[0].name]
    nnc.optimizers[:] = [o for o in nnc.optimizers if o.get("Optimizer_NetworkName") != writers[0].name]
    sigma = _number(weight.properties.get("GeneratorMultiplier", "1"))
    alpha = round(_beta_alpha(sigma), 3)
    augmentation["mixup"] = {"alpha": alpha}
    notes.append(f"{trained}: mixup drawn as layers (network {writers[0].name} writing WorkingMemory, weight "
                 f"Sigmoid(N(0, {sigma:g}^2))) became training.augmentation.mixup alpha {alpha:g}, a Beta weight of the "
                 "same variance; samples are paired within a batch, not with a second pass over the data")


def _beta_alpha(sigma: float) -> float:
    """The alpha of the Beta(alpha, alpha) whose variance is that of Sigmoid(N(0, sigma^2))."""
    z, w = np.polynomial.hermite_e.hermegauss(80)
    weight = 1 / (1 + np.exp(-sigma * z))
    variance = float(np.sum(w * (weight - 0.5) ** 2) / np.sum(w))
    return (1 / (4 * variance) - 1) / 2


def split_gan(nnc: NncProject, notes: list[str]) -> bool:
    """NNC's GAN as our GAN project: a ``generator`` and a ``discriminator`` network; False if it is not one.

    NNC draws a GAN as two trained networks (its mnist_dcgan sample): one, fed real images, trains the
    discriminator on them and on generated ones; the other trains the generator through a frozen copy
    of the discriminator (LRateMultiplier = 0), the copies sharing weights by ParameterScope. The
    generator is the network without a loss that only generated inputs feed (the executor's, first);
    the discriminator is what the real images reach in the first network. Our GAN training does the
    alternation itself, feeding the latent input N(0, 1) and scoring real images as 1.
    """
    trained = [nnc.networks.get(o.get("Optimizer_NetworkName", "")) for o in nnc.optimizers]
    if len(trained) != 2 or None in trained:
        return False
    d_trainers = [n for n in trained if _fed(n)]
    executed = [nnc.networks.get(e.get("Executor_NetworkName", "")) for e in nnc.executors]
    generators = [n for n in executed + list(nnc.networks.values()) if n is not None and n not in trained
                  and not _fed(n) and any(_generated(l, "Normal", "Uniform") for l in n.layers.values())
                  and not any("T.Dataset" in l.properties for l in n.layers.values())]
    if len(d_trainers) != 1 or len(_fed(d_trainers[0])) != 1 or not generators:
        return False
    source, generator = d_trainers[0], generators[0]
    real = _fed(source)[0]
    kept = {real.id} | _descendants(source, {real.id})
    discriminator = NncNetwork("discriminator", {i: source.layers[i] for i in source.layers if i in kept},
                               [l for l in source.links if l.src in kept and l.dst in kept])
    losses = [l for l in discriminator.layers.values() if "T.Dataset" in l.properties]
    if len(losses) != 1:
        return False
    losses[0].properties["T.Generator"] = "None"
    for layer in generator.layers.values():
        if _generated(layer, "Normal", "Uniform"):
            layer.properties["Generator"] = "None"
            layer.properties.pop("Dataset", None)  # the GAN training feeds it, not the dataset
        if layer.type == "BatchNormalization":
            layer.properties["BatchStat"] = "True"
    others = [n for n in nnc.networks if n != generator.name]
    notes.append(f"a GAN: the generator is network {generator.name}, the discriminator what the real images "
                 f"({real.name}) reach in {source.name}; NNC's training networks ({', '.join(others)}) are what "
                 "training.mode gan does: it feeds the latent input N(0, 1), scores real images as 1 and generated "
                 "ones as 0 (NNC's sample swaps the two labels), and trains the generator to make them score 1")
    nnc.networks = {"generator": generator, "discriminator": discriminator}
    generator.name = "generator"
    nnc.optimizers[:] = [o for o in nnc.optimizers if o.get("Optimizer_NetworkName") == source.name]
    return True


_WEIGHTED = ("Convolution", "Deconvolution", "Affine")
_SCALAR = ("AddScalar", "MulScalar", "RSubScalar")


def own_weights(network: NncNetwork, notes: list[str]) -> None:
    """A Convolution, Deconvolution or Affine whose weight is an input fed by a Parameter layer, through
    scalar arithmetic at most, gets its own weight instead: both are a free parameter of the same shape
    (only the initial value differs, which the notes say)."""
    for layer in [l for l in network.layers.values() if l.type in _WEIGHTED]:
        feeds = [l for l in network.links if l.dst == layer.id]
        # The weight pin is 1 where NNC numbers the pins; otherwise the links come in pin order.
        weights = [l for l in feeds if l.dst_pin == 1] or feeds[1:]
        if len(feeds) != 2 or len(weights) != 1:
            continue
        chain, source = [], network.layers[weights[0].src]
        while source.type in _SCALAR and len(_sources(network, source.id)) == 1:
            chain.append(source)
            source = _sources(network, source.id)[0]
        if source.type != "Parameter" or any(l.src in {source.id, *(c.id for c in chain)} and l.dst != layer.id
                                              and l.dst not in {c.id for c in chain} for l in network.links):
            continue
        removed = {source.id, *(c.id for c in chain)}
        network.links = [l for l in network.links if l.src not in removed and l.dst not in removed]
        for gone in removed:
            del network.layers[gone]
        notes.append(f"{network.name} / {layer.name}: its weight, fed from {source.name} through "
                     f"{' and '.join(c.name for c in reversed(chain)) or 'nothing'}, is its own weight here "
                     "(a free parameter of the same shape; its initial value is drawn as for any such layer)")
