"""The bundled examples: exact published sizes, hand-written equivalents, inferred vs real shapes."""

import pytest
import torch
from torch import nn

import graphcompiler as gc
from conftest import EXAMPLES, ROOT


def _params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def _set_input(graph: gc.Graph, node_id: str, shape: list[int]) -> None:
    graph.node(node_id).params["shape"] = shape


def _hand_vgg16() -> nn.Module:
    layers, channels = [], 3
    for width, count in ((64, 2), (128, 2), (256, 3), (512, 3), (512, 3)):
        for _ in range(count):
            layers += [nn.Conv2d(channels, width, 3, padding=1), nn.ReLU()]
            channels = width
        layers.append(nn.MaxPool2d(2, 2))
    return nn.Sequential(*layers, nn.Flatten(),
                         nn.Linear(512 * 7 * 7, 4096), nn.ReLU(), nn.Dropout(0.5),
                         nn.Linear(4096, 4096), nn.ReLU(), nn.Dropout(0.5), nn.Linear(4096, 1000))


def test_vgg16_has_the_published_parameter_count_and_matches_a_hand_written_vgg16():
    graph = gc.load(ROOT / "examples/vgg16.graph.yaml").network()
    assert gc.cost(gc.infer_shapes(graph)).params == 138_357_544
    model = gc.compile(graph, inference=True).eval()
    assert _params(model) == 138_357_544
    hand = _hand_vgg16().eval()
    with torch.no_grad():
        for mine, theirs in zip(model.parameters(), hand.parameters(), strict=True):
            theirs.copy_(mine)
        x = torch.randn(1, 3, 224, 224)
        ours = model(x)["fc8"]
        expected = hand(x)
    assert ours.shape == (1, 1000)
    assert (ours - expected).abs().max().item() <= 1e-6


def test_vgg16_state_dict_keys_are_node_ids():
    graph = gc.load(ROOT / "examples/vgg16.graph.yaml").network()
    graph.node("x").params["shape"] = [3, 32, 32]
    keys = list(gc.compile(graph).state_dict())
    assert keys[:4] == ["conv1_1.weight", "conv1_1.bias", "conv1_2.weight", "conv1_2.bias"]
    assert keys[-2:] == ["fc8.weight", "fc8.bias"]


def test_unet_has_the_published_parameter_count_and_keeps_the_input_size():
    graph = gc.load(ROOT / "examples/unet.graph.yaml").network()
    shapes = gc.infer_shapes(graph)
    assert gc.cost(shapes).params == 31_030_658
    assert shapes["out"].outputs["y"] == (2, 64, 64)
    _set_input(graph, "x", [1, 48, 64])
    _set_input(graph, "y", [1, 48, 64])
    model = gc.compile(graph, inference=True)
    assert _params(model) == 31_030_658
    with torch.no_grad():
        out = model(torch.rand(2, 1, 48, 64))["out"]
    assert out.shape == (2, 2, 48, 64)


def test_unet_refuses_a_size_the_four_poolings_cannot_undo():
    graph = gc.load(ROOT / "examples/unet.graph.yaml").network()
    _set_input(graph, "x", [1, 60, 64])
    errors = gc.shape_errors(gc.infer_shapes(graph))
    assert len(errors) == 1
    assert "cat" in errors[0].node and "differ in height" in str(errors[0])


# The published or hand-derived size each example states in its header comment.
REFERENCE_PARAMS = {
    ("vgg16", "main"): 138_357_544, ("unet", "main"): 31_030_658, ("lenet", "main"): 431_080,
    ("mlp", "main"): 17_226, ("dcgan", "generator"): 369_600, ("dcgan", "discriminator"): 166_784,
    ("autoencoder", "main"): 1_913, ("resnet18", "main"): 11_689_512, ("lstm", "main"): 19_594, ("dilated_segmentation", "main"): 28_130,
    ("centernet", "main"): 227_998,
}


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_every_example_has_its_reference_size_stated_and_exact(path):
    project = gc.load(path)
    name = path.name.removesuffix(".graph.yaml")
    for network, graph in project.networks.items():
        expected = REFERENCE_PARAMS[name, network]
        assert gc.cost(gc.infer_shapes(graph)).params == expected
        assert f"{expected:,}" in project.header, "the header comment states the reference size"


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_every_example_validates_and_its_inferred_shapes_are_the_real_ones(path):
    project = gc.load(path)
    assert gc.validate(project) == []
    for graph in project.networks.values():
        for node in graph.nodes():
            if node.type == "Input" and len(node.params["shape"]) == 3 and node.params["shape"][1] > 64:
                node.params["shape"] = node.params["shape"][:1] + [32, 32]
        shapes = gc.infer_shapes(graph)
        model = gc.compile(graph, outputs=[n.id for n in graph.nodes() if n.type != "Input"])
        inputs = {name: torch.randint(0, 2, (2,) + shape).float() if name == "y" else torch.rand((2,) + shape)
                  for name, shape in model.input_shapes.items()}
        with torch.no_grad():
            produced = model.eval()(**inputs)
        for name, tensor in produced.items():
            node_id, _, port = name.partition(".")  # node.port for each output of a layer with several
            assert tuple(tensor.shape) == (2,) + shapes[node_id].outputs[port or "y"], name
            assert torch.isfinite(tensor).all(), node_id
        assert gc.cost(shapes).params == _params(model)
