"""Search mutations: every accepted candidate validates, compiles, and its inferred shapes are torch's."""

import random

import pytest
import torch

import graphcompiler as gc
from conftest import EXAMPLES
from graphcompiler.mutations import Limits, fixed_shapes, mutate, problem

# Big networks get a smaller input (their shape rules do not care) and fewer draws, to keep CI quick.
SMALL_INPUT = {"vgg16": {"x": [3, 32, 32]}, "resnet18": {"x": [3, 32, 32]},
               "unet": {"x": [1, 32, 32], "y": [1, 32, 32]}}
DRAWS = {"vgg16": 40, "resnet18": 60, "unet": 40}
NETWORKS = [(path, name) for path in EXAMPLES for name in gc.load(path).networks]


def _real_shapes_match(graph: gc.Graph) -> None:
    shapes = gc.infer_shapes(graph)
    model = gc.compile(graph).eval()
    inputs = {}
    for name in model.input_names:
        shape = (2,) + model.input_shapes[name]
        target_of_class_loss = any(graph.node(link.dst).type in ("SoftmaxCrossEntropy", "CategoricalCrossEntropy")
                                   and link.dst_port == "target" for link in graph.links() if link.src == name)
        inputs[name] = torch.zeros(shape) if target_of_class_loss else torch.rand(shape)
    with torch.no_grad():
        values = model.trace(**inputs)
    for node_id, info in shapes.items():
        for port, shape in info.outputs.items():
            key = node_id if len(info.outputs) == 1 else f"{node_id}.{port}"
            if key in values:
                assert tuple(values[key].shape[1:]) == shape, (node_id, port)


@pytest.mark.parametrize("path,network", NETWORKS, ids=[f"{p.name.split('.')[0]}-{n}" for p, n in NETWORKS])
def test_every_accepted_candidate_validates_compiles_and_has_its_inferred_shapes(path, network):
    stem = path.name.split(".")[0]
    graph = gc.load(path).network(network)
    for node, shape in SMALL_INPUT.get(stem, {}).items():
        graph.node(node).params["shape"] = shape
    fixed = fixed_shapes(graph)
    rng = random.Random(stem)
    kinds = set()
    for _ in range(DRAWS.get(stem, 150)):
        candidate, changes, _ = mutate(graph, rng, count=rng.randint(1, 2))
        assert problem(candidate, Limits(), fixed) is None
        kinds.update(change.split()[0] for change in changes)
        _real_shapes_match(candidate)
    assert {"remove", "insert"} <= kinds
    assert any("." in k for k in kinds), "some params were changed"


def test_pinned_nodes_are_never_touched_and_limits_hold():
    graph = gc.load(EXAMPLES[0].parent / "lenet.graph.yaml").network()
    pinned = frozenset({"conv1", "pool1", "ip1"})
    base_macs = gc.cost(gc.infer_shapes(graph)).macs
    limits = Limits(pinned=pinned, max_macs=base_macs)
    rng = random.Random(1)
    for _ in range(200):
        candidate, _, _ = mutate(graph, rng, limits, count=2)
        for node in pinned:
            assert candidate.node(node).type == graph.node(node).type
            assert candidate.node(node).params == graph.node(node).params
        assert gc.cost(gc.infer_shapes(candidate)).macs <= base_macs


def test_class_count_and_image_size_never_change():
    for stem in ("lenet", "lstm", "dcgan"):
        project = gc.load(EXAMPLES[0].parent / f"{stem}.graph.yaml")
        for graph in project.networks.values():
            expected = fixed_shapes(graph)
            rng = random.Random(stem)
            for _ in range(100):
                candidate, _, _ = mutate(graph, rng, count=2)
                assert {k: v for k, v in fixed_shapes(candidate).items() if k in expected} == \
                    {k: v for k, v in expected.items() if k in candidate}
