"""Rewrites of an NNC network before its layers are mapped: what NNC expresses with layers and we do not.

Augmentation layers become the training section's augmentation; running statistics in networks no
optimizer trains become plain BatchNormalization (our inference mode); a unit's own file gets values
for the properties its Unit layer would give; ShuffleNet's channel shuffle drawn as Reshape, Transpose,
Reshape becomes one ChannelShuffle layer. Loops are in ``nnc_loops``, the samples' layer patterns
(cutout, mixup, GAN) in ``nnc_patterns``. Each works on the reader's plain data (``sdcproj``) and says
what it changed.
"""

from __future__ import annotations

import math
import re

from ..arithmetic import evaluate
from .sdcproj import NncLayer, NncLink, NncNetwork


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


def fold_channel_shuffle(network: NncNetwork, notes: list[str]) -> None:
    """ShuffleNet's channel shuffle as NNC draws it (Reshape to G, C/G, H, W; Transpose 1,0,2,3; Reshape back
    to C, H, W) as one ChannelShuffle layer: the Reshapes' sizes follow each use's input, which a block
    param cannot, and one layer says what the three do."""
    def only_reader(layer: NncLayer) -> NncLayer | None:
        readers = [network.layers[l.dst] for l in network.links if l.src == layer.id]
        return readers[0] if len(readers) == 1 else None

    folded = []
    for first in [l for l in network.layers.values() if l.type == "Reshape"]:
        parts = first.properties.get("OutShape", "").replace(" ", "").split(",")
        swap = only_reader(first)
        back = only_reader(swap) if swap is not None and swap.type == "Transpose" else None
        if len(parts) != 4 or parts[1:] != [f"Input[0]/{parts[0]}", "Input[1]", "Input[2]"] or back is None \
                or swap.properties.get("Axes", "").replace(" ", "") != "1,0,2,3" or back.type != "Reshape" \
                or back.properties.get("OutShape", "").replace(" ", "") != "Input[0]*Input[1],Input[2],Input[3]":
            continue
        network.layers[first.id] = NncLayer(first.id, "ChannelShuffle", first.name,
                                            {"Name": first.name, "Groups": parts[0]}, first.pos, first.section)
        network.links = [NncLink(first.id, 0, l.dst, l.dst_pin) if l.src == back.id else l
                         for l in network.links if swap.id not in (l.src, l.dst) and l.dst != back.id]
        del network.layers[swap.id], network.layers[back.id]
        folded.append(first.name)
    if folded:
        notes.append(f"{network.name}: the channel shuffle drawn as Reshape, Transpose, Reshape is one ChannelShuffle "
                     f"layer ({', '.join(folded)})")


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
        return number(p.get(name, default))

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
    path = _feeding_path(network, layer)
    source = path[-1] if path else None
    shape = p.get("Shape", "*Input")  # *Input: the input's own shape
    if not shape.startswith("*") and source is not None and source.properties.get("Size") != shape:
        crops = [l for l in path if l.type == "Slice"]
        cropped = f" after {', '.join(l.name for l in crops)} cropped them" if crops else ""
        notes.append(f"{network.name} / {layer.name}: its crop of {source.properties.get('Size')}{cropped} to {shape} "
                     f"became a resize of the images to {shape} (dataset.image_size)")
        for crop in crops:  # the images come resized to the shape the augmentation gave: nothing left to crop
            into = next(l for l in network.links if l.dst == crop.id)
            network.links = [NncLink(into.src, into.src_pin, l.dst, l.dst_pin) if l.src == crop.id else l
                             for l in network.links if l.dst != crop.id]
            del network.layers[crop.id]
        source.properties["Size"] = shape
        augmentation.setdefault("_image_size", [int(v) for v in shape.split(",")][-2:])


def _feeding_path(network: NncNetwork, layer: NncLayer) -> list[NncLayer]:
    """The layers from ``layer`` back to the Input whose data reaches it through one-input layers (NNC scales
    and crops pixels before augmenting), the Input last; empty if no such Input."""
    path = []
    while True:
        sources = [network.layers[l.src] for l in network.links if l.dst == layer.id]
        if len(sources) != 1:
            return []
        layer = sources[0]
        path.append(layer)
        if layer.type == "Input":
            return path


def number(text: str) -> float:
    """A value NNC may write as arithmetic (Brightness = 10/255); ValueError if it is not a number."""
    try:
        return float(evaluate(text, {}))
    except (TypeError, SyntaxError, ZeroDivisionError):
        raise ValueError(f"not a number: {text!r}") from None


def _random_shift(layer: NncLayer, network: NncNetwork, augmentation: dict, notes: list[str]) -> None:
    augmentation["shift"] = max(int(v) for v in layer.properties.get("Shift", "0").split(","))
    if layer.properties.get("BorderMode", "nearest") != "constant":
        notes.append(f"{layer.name}: shifted-in borders are zeros here, {layer.properties.get('BorderMode')} in NNC")


def _random_flip(layer: NncLayer, network: NncNetwork, augmentation: dict, notes: list[str]) -> None:
    for axis in layer.properties.get("Axes", "").split(","):
        # Sample axes: 2 is the width of C x H x W, 1 the height.
        augmentation[{"2": "flip_x", "1": "flip_y"}.get(axis.strip(), "flip_x")] = True


_AUGMENTERS = {"ImageAugmentation": _image_augmentation, "RandomShift": _random_shift, "RandomFlip": _random_flip}
