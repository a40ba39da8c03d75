"""Hypothesis strategies for random graphs: valid ones grown from the registry, and arbitrary ones."""

from __future__ import annotations

from hypothesis import strategies as st

import graphcompiler as gc
from graphcompiler.layers import REGISTRY, Bool, Choice, Float, Int, Ints

def _ports(spec) -> tuple[str, ...]:
    return spec.input_ports(spec.resolve(spec.initial_params()))


# Every registered one-input layer; a draw its shape rule refuses is dropped from the graph.
SINGLE = sorted(t for t, s in REGISTRY.items() if not s.is_loss and t != "Input" and _ports(s) == ("x",)
                and s.outputs == ("y",))
PAIRS = sorted(t for t, s in REGISTRY.items() if not s.is_loss and _ports(s) == ("x0", "x1"))


def _small_value(draw, param):
    """A small, in-range value for a param, so graphs stay cheap to run."""
    if isinstance(param, Bool):
        return draw(st.booleans())
    if isinstance(param, Choice):
        return draw(st.sampled_from(param.choices))
    if isinstance(param, Float):
        return draw(st.sampled_from([0.0, 0.1, 0.3])) if param.name != "eps" else 1e-5
    if isinstance(param, Int):
        if param.name == "axis":
            return draw(st.integers(-1, 0))
        return draw(st.integers(max(param.lo or 1, 1), 4))
    if isinstance(param, Ints):
        if param.name == "shape":
            return None
        lo = param.lo if param.lo is not None else 0
        return [draw(st.integers(lo, lo + 2)) for _ in range(param.length or 1)]
    raise AssertionError(param)


@st.composite
def valid_graphs(draw, max_steps: int = 10) -> gc.Graph:
    """A sound DAG: an Input, then layers and merges appended wherever their shape rule accepts."""
    graph = gc.Graph()
    rank = draw(st.integers(1, 3))
    shape = [[draw(st.integers(1, 12))], [draw(st.integers(2, 8)), draw(st.integers(1, 6))],
             [draw(st.integers(1, 4)), draw(st.integers(3, 10)), draw(st.integers(3, 10))]][rank - 1]
    graph.add_node("x", "Input", {"shape": shape})
    known = {"x": tuple(shape)}
    for step in range(draw(st.integers(1, max_steps))):
        node_id = f"n{step}"
        merge = {0: draw(st.sampled_from(PAIRS)), 1: "Concatenate"}.get(draw(st.integers(0, 7)), "layer")
        if merge != "layer":
            a = draw(st.sampled_from(sorted(known)))
            partners = [n for n, s in known.items() if len(s) == len(known[a]) and
                        (s == known[a] if merge != "Concatenate" else s[1:] == known[a][1:])]
            b = draw(st.sampled_from(sorted(partners)))
            graph.add_node(node_id, merge, {})
            graph.connect(a, node_id, dst_port="x0")
            graph.connect(b, node_id, dst_port="x1")
        else:
            src = draw(st.sampled_from(sorted(known)))
            layer = draw(st.sampled_from(SINGLE))
            if layer == "Embed" and src != "x":
                continue  # token ids come from data; a computed value (after Exp, say) is no id
            params = {p.name: v for p in REGISTRY[layer].params
                      if (v := _small_value(draw, p)) is not None}
            if layer == "Reshape":
                params["shape"] = [-1]
            if layer == "Transpose":
                params["axes"] = draw(st.permutations(range(len(known[src]))))
            if params.get("groups", 1) > 1:
                params["groups"] = 1
            graph.add_node(node_id, layer, params)
            try:
                graph.connect(src, node_id)
            except gc.GraphError:
                graph.remove_node(node_id)
                continue
        info = gc.shapes.infer_node(graph, node_id, gc.infer_shapes(graph))
        if info.ok:
            known[node_id] = info.outputs["y"]
        else:
            graph.remove_node(node_id)
    return graph


GARBAGE = st.one_of(st.none(), st.booleans(), st.integers(-3, 5), st.floats(allow_nan=True),
                    st.text(max_size=4), st.lists(st.integers(-2, 4), max_size=4))


@st.composite
def arbitrary_graphs(draw) -> gc.Graph:
    """A valid graph damaged at random: params set to anything, links added or cut, types swapped."""
    graph = draw(valid_graphs(max_steps=6))
    types = sorted(REGISTRY)
    for _ in range(draw(st.integers(1, 4))):
        ids = [n.id for n in graph.nodes()]
        node = graph.node(draw(st.sampled_from(ids)))
        action = draw(st.sampled_from(["param", "param", "link", "unlink", "retype"]))
        if action == "param":
            spec = REGISTRY[node.type]
            names = [p.name for p in spec.params] + ["bogus"]
            name = draw(st.sampled_from(names))
            param = spec.param(name)
            node.params[name] = draw(GARBAGE) if param is None or draw(st.booleans()) \
                else _small_value(draw, param)
        elif action == "retype":
            node.type = draw(st.sampled_from(types))
        elif action == "link":
            port = draw(st.sampled_from(["x", "x0", "x1", "x2", "target", None]))
            try:
                graph.connect(draw(st.sampled_from(ids)), node.id, None, port)
            except gc.GraphError:
                pass
        else:
            feeds = sorted(graph.inputs_of(node.id))
            if feeds:
                graph.disconnect(node.id, draw(st.sampled_from(feeds)))
    return graph


def resnet101() -> gc.Project:
    """ResNet-101 as torchvision builds it (bottleneck blocks 3, 4, 23, 3; 345 layers; 44,549,160 parameters)."""
    graph = gc.Graph()
    graph.add_node("x", "Input", {"shape": [3, 224, 224]})

    def add(node_id: str, layer_type: str, params: dict, *sources: str) -> str:
        graph.add_node(node_id, layer_type, params)
        for port, source in zip(("x0", "x1") if len(sources) > 1 else (None,), sources):
            graph.connect(source, node_id, None, port)
        return node_id

    def conv(node_id: str, source: str, channels: int, kernel: int, stride: int = 1) -> str:
        params = {"out_channels": channels, "kernel": [kernel, kernel], "stride": [stride, stride],
                  "pad": [kernel // 2, kernel // 2], "bias": False}
        return add(f"{node_id}_bn", "BatchNormalization", {}, add(node_id, "Convolution", params, source))

    last = add("relu1", "ReLU", {}, conv("conv1", "x", 64, 7, 2))
    last = add("pool1", "MaxPooling", {"kernel": [3, 3], "stride": [2, 2], "pad": [1, 1]}, last)
    for stage, blocks in enumerate((3, 4, 23, 3)):
        width = 64 * 2 ** stage
        for block in range(blocks):
            name, stride = f"s{stage + 1}b{block + 1}", 2 if block == 0 and stage > 0 else 1
            path = add(f"{name}_relu1", "ReLU", {}, conv(f"{name}_conv1", last, width, 1))
            path = add(f"{name}_relu2", "ReLU", {}, conv(f"{name}_conv2", path, width, 3, stride))
            path = conv(f"{name}_conv3", path, width * 4, 1)
            skip = conv(f"{name}_down", last, width * 4, 1, stride) if block == 0 else last
            last = add(f"{name}_out", "ReLU", {}, add(f"{name}_add", "Add2", {}, path, skip))
    add("fc", "Affine", {"out_features": 1000}, add("pool", "GlobalAveragePooling", {}, last))
    return gc.Project(name="resnet101", networks={"main": graph})
