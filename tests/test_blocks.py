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


class _HandBlock(torch.nn.Module):
    def __init__(self, cin: int, c: int, stride: int):
        super().__init__()
        nn = torch.nn
        self.conv1 = nn.Conv2d(cin, c, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c)
        self.conv2 = nn.Conv2d(c, c, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c)
        if stride != 1:
            self.down_conv = nn.Conv2d(cin, c, 1, stride, bias=False)
            self.down_bn = nn.BatchNorm2d(c)

    def forward(self, x):
        out = self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x)))))
        shortcut = self.down_bn(self.down_conv(x)) if hasattr(self, "down_conv") else x
        return torch.relu(out + shortcut)


class _HandResNet18(torch.nn.Module):
    def __init__(self):
        super().__init__()
        nn = torch.nn
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.stages = []
        cin = 64
        for stage, c in enumerate([64, 128, 256, 512], 1):
            for i in range(2):
                name = f"layer{stage}_{i}"
                setattr(self, name, _HandBlock(cin, c, 2 if stage > 1 and i == 0 else 1))
                self.stages.append(name)
                cin = c
        self.fc = nn.Linear(512, 1000)

    def forward(self, x):
        x = torch.nn.functional.max_pool2d(torch.relu(self.bn1(self.conv1(x))), 3, 2, 1)
        for name in self.stages:
            x = getattr(self, name)(x)
        return self.fc(x.mean((2, 3)))


def test_resnet18_from_blocks_computes_what_a_hand_written_resnet18_computes():
    graph = gc.load(ROOT / "examples/resnet18.graph.yaml").network()
    graph.node("x").params["shape"] = [3, 64, 64]
    model = gc.compile(graph, inference=True)
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            if tensor.is_floating_point():
                tensor.normal_(0.0, 0.1 if "weight" in name or "bias" in name else 1.0).abs_()
    hand = _HandResNet18().eval()
    hand.load_state_dict(model.state_dict(), strict=True)
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(model(x)["fc"], hand(x), rtol=1e-4, atol=1e-5)
