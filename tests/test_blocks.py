"""Reusable blocks: defined once in the project, used as layers, each use with its own weights."""

import torch

import graphcompiler as gc
from conftest import ROOT

TWO_USES = """format: netcanvas/1
name: twice
blocks:
  double_conv:
    params: {channels: 8}
    output: relu2
    nodes:
    - {id: x, type: Input, params: {shape: [3, 16, 16]}}
    - {id: conv1, type: Convolution, params: {out_channels: $channels, pad: [1, 1]}}
    - {id: relu1, type: ReLU}
    - {id: conv2, type: Convolution, params: {out_channels: $channels, pad: [1, 1]}}
    - {id: relu2, type: ReLU}
    links:
    - x -> conv1
    - conv1 -> relu1
    - relu1 -> conv2
    - conv2 -> relu2
networks:
  main:
    nodes:
    - {id: x, type: Input, params: {shape: [3, 16, 16]}}
    - {id: down1, type: double_conv}
    - {id: down2, type: double_conv, params: {channels: 16}}
    links:
    - x -> down1
    - down1 -> down2
"""


def _params(channels_in: int, channels: int) -> int:
    return channels * channels_in * 9 + channels + channels * channels * 9 + channels


def test_a_block_used_twice_counts_both_uses_with_their_own_params_and_weights():
    project = gc.loads(TWO_USES)
    assert gc.validate(project) == []
    graph = project.network()
    shapes = gc.infer_shapes(graph)
    assert shapes["down2"].outputs["y"] == (16, 16, 16)
    expected = _params(3, 8) + _params(8, 16)
    assert gc.cost(shapes).params == expected
    model = gc.compile(graph)
    assert sum(p.numel() for p in model.parameters()) == expected
    keys = list(model.state_dict())
    assert keys[:2] == ["down1.conv1.weight", "down1.conv1.bias"] and "down2.conv2.weight" in keys
    assert model.down1.conv2.weight.data_ptr() != model.down2.conv1.weight.data_ptr()
    out = model(torch.rand(2, 3, 16, 16))["down2"]
    assert out.shape == (2, 16, 16, 16)


def test_editing_the_block_definition_changes_every_use():
    edited = TWO_USES.replace("{id: conv1, type: Convolution, params: {out_channels: $channels, pad: [1, 1]}}",
                              "{id: conv1, type: Convolution, params: {out_channels: $channels, kernel: [1, 1]}}")
    shapes = gc.infer_shapes(gc.loads(edited).network())
    one_by_one = lambda cin, c: c * cin + c + c * c * 9 + c  # noqa: E731
    assert gc.cost(shapes).params == one_by_one(3, 8) + one_by_one(8, 16)


def test_blocks_round_trip_and_report_inner_problems_with_their_place():
    assert gc.dumps(gc.loads(TWO_USES)) == TWO_USES
    broken = TWO_USES.replace("{id: down2, type: double_conv, params: {channels: 16}}",
                              "{id: down2, type: double_conv, params: {channels: 0}}")
    (problem,) = gc.validate(gc.loads(broken))
    assert problem.where == "networks.main.nodes[2]"
    assert "inside block double_conv: conv1 (Convolution): param out_channels: expected a positive int, got 0" \
        in str(problem)
    bad_name = TWO_USES.replace("params: {channels: 16}", "params: {chanels: 16}")
    try:
        gc.loads(bad_name)
    except gc.GraphError as exc:
        assert "chanels" in str(exc) and "networks.main.nodes[2].params" in str(exc)
    else:
        raise AssertionError("an unknown block param was accepted")
    inner = TWO_USES.replace("pad: [1, 1]}}\n    - {id: relu2", "pad: [1, 1], dilation: [40, 40]}}\n    - {id: relu2")
    in_use, in_block = gc.validate(gc.loads(inner))
    assert in_use.where == "networks.main.nodes[1]" and "inside block double_conv: conv2" in str(in_use)
    assert in_block.where == "blocks.double_conv.nodes[3]" and "does not fit height 16" in str(in_block)


def test_resnet18_example_uses_its_blocks_and_has_torchvisions_size():
    project = gc.load(ROOT / "examples/resnet18.graph.yaml")
    assert list(project.blocks) == ["basic_block", "down_block"]
    graph = project.network()
    assert sum(1 for n in graph.nodes() if n.type in project.blocks) == 8
    model = gc.compile(graph, inference=True)
    assert sum(p.numel() for p in model.parameters()) == 11_689_512
    assert "layer2_0.down_conv.weight" in model.state_dict()
