"""PyTorch source export: standalone files that load compile()'s weights and compute its outputs.

Generated files run in a fresh interpreter where netcanvas's packages cannot be imported, batched
into one subprocess per test so that torch's import cost is paid a few times, not per network.
"""

from __future__ import annotations

import json
import os
import runpy
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from conftest import EXAMPLES
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from test_layer_reference import LAYER_TYPES, draw_example
from torch import nn

import graphcompiler as gc
from graphcompiler.export.pytorch_source import pytorch_source
from graphcompiler.layers import REGISTRY

RUNNER = r"""
import sys
for name in ("graphcompiler", "netcanvas", "runtime", "designer"):
    sys.modules[name] = None  # any import of them fails: the file must stand alone
import importlib.util, json, torch
for job in json.load(open(sys.argv[1])):
    spec = importlib.util.spec_from_file_location(job["module"], job["source"])
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    model = getattr(module, job["class"])()
    model.load_state_dict(torch.load(job["weights"], weights_only=True), strict=True)
    inputs = torch.load(job["inputs"], weights_only=True)
    results = {}
    for mode in job["modes"]:
        model.train(mode == "train")
        torch.manual_seed(0)
        with torch.no_grad():
            results[mode] = model(*inputs)
    torch.save(results, job["outputs"])
"""


def _randomise(model: nn.Module) -> None:
    """No weight or running statistic left at a value that could hide a swap."""
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for tensor in model.parameters():
            tensor.normal_(std=tensor.shape[-1] ** -0.5 if tensor.dim() > 1 else 1.0, generator=gen)
        for name, buffer in model.named_buffers():
            if buffer.is_floating_point():
                buffer.copy_(torch.rand(buffer.shape, generator=gen) + 0.5)


def run_standalone(tmp_path: Path, cases: list[tuple[str, gc.Graph, bool, dict[str, torch.Tensor], tuple[str, ...]]]):
    """Export each (name, graph, inference, inputs, modes), run all in one clean subprocess, compare."""
    jobs, expected = [], {}
    for i, (name, graph, inference, inputs, modes) in enumerate(cases):
        source = pytorch_source(graph, class_name="Net", inference=inference, title=name)
        assert "graphcompiler" not in source
        model = gc.compile(graph, inference=inference)
        _randomise(model)
        stem = tmp_path / f"case{i}"
        stem.with_suffix(".py").write_text(source)
        torch.save(model.state_dict(), stem.with_suffix(".pt"))
        args = [inputs[n] for n in model.input_names]
        torch.save(args, stem.with_suffix(".in"))
        results = {}
        for mode in modes:
            model.train(mode == "train")
            torch.manual_seed(0)
            with torch.no_grad():
                results[mode] = model(*args)
        expected[name] = (results, model.output_names, stem.with_suffix(".out"))
        jobs.append({"module": f"case{i}", "source": str(stem.with_suffix(".py")), "class": "Net",
                     "weights": str(stem.with_suffix(".pt")), "inputs": str(stem.with_suffix(".in")),
                     "outputs": str(stem.with_suffix(".out")), "modes": list(modes)})
    manifest = tmp_path / "jobs.json"
    manifest.write_text(json.dumps(jobs))
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run([sys.executable, "-c", RUNNER, str(manifest)], check=False, cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    for name, (results, output_names, path) in expected.items():
        got = torch.load(path, weights_only=True)
        for mode, wanted in results.items():
            assert list(got[mode]) == output_names, name
            for key, tensor in wanted.items():
                scale = max(1.0, tensor.abs().max().item()) if tensor.numel() else 1.0
                diff = (got[mode][key] - tensor).abs().max().item() if tensor.numel() else 0.0
                assert got[mode][key].shape == tensor.shape and diff <= 1e-5 * scale, f"{name} {mode} {key}: {diff}"


def _small(graph: gc.Graph) -> gc.Graph:
    """Large image inputs shrunk to 32 x 32, which every example's poolings divide."""
    for node in graph.nodes():
        if node.type == "Input" and len(node.params["shape"]) == 3 and node.params["shape"][1] > 64:
            node.params["shape"] = node.params["shape"][:1] + [32, 32]
    return graph


def test_every_example_network_runs_standalone_with_the_compiled_weights(tmp_path):
    cases = []
    gen = torch.Generator().manual_seed(0)
    for path in EXAMPLES:
        for network, graph in gc.load(path).networks.items():
            model = gc.compile(_small(graph), inference=True)
            inputs = {n: torch.randn((2,) + s, generator=gen) for n, s in model.input_shapes.items()}
            cases.append((f"{path.name} {network}", graph, True, inputs, ("eval",)))
    assert len(cases) == 11  # ten examples, the DCGAN with two networks
    run_standalone(tmp_path, cases)


def test_every_layer_type_runs_standalone_in_training_and_inference_graphs(tmp_path_factory):
    covered = set()

    # Each example is one subprocess over every layer type; shrinking such examples would take minutes.
    @settings(max_examples=8, deadline=None, derandomize=True, phases=(Phase.explicit, Phase.generate),
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(data=st.data())
    def check(data):
        cases = []
        for layer_type in LAYER_TYPES:
            ex = draw_example(data, layer_type)
            if gc.infer_shapes(ex.graph)["probe"].outputs is None:
                continue  # a draw the shape rule refuses: test_layer_reference covers those
            covered.add(layer_type)
            cases.append((f"{layer_type} training", ex.graph, False, ex.inputs, ("eval", "train")))
            if not REGISTRY[layer_type].is_loss:
                cases.append((f"{layer_type} inference", ex.graph, True, ex.inputs, ("eval",)))
        run_standalone(tmp_path_factory.mktemp("layers"), cases)

    check()
    assert covered == set(LAYER_TYPES), f"never drawn valid: {sorted(set(LAYER_TYPES) - covered)}"


def test_ids_and_block_names_that_clash_get_distinct_names(tmp_path):
    graph = gc.Graph()
    graph.add_node("self", "Input", {"shape": [4, 6]})
    graph.add_node("torch", "Split", {"axis": 1})
    graph.add_node("torch_y0", "ReLU")   # the name the split's first output would take
    graph.add_node("F", "Add2")
    graph.add_node("input", "Tanh")
    graph.connect("self", "torch")
    graph.connect("torch", "torch_y0", src_port="y0")
    graph.connect("torch_y0", "F", dst_port="x0")
    graph.connect("torch", "F", src_port="y1", dst_port="x1")
    graph.connect("F", "input")
    source = pytorch_source(graph, class_name="Net")
    assert "def forward(self, self_: Tensor)" in source
    assert "torch_y0_, torch_y1 = self.torch(self_)" in source
    assert "torch_y0 = self.torch_y0(torch_y0_)" in source
    assert "input_ = self.input(F_)" in source
    nested = gc.loads(NESTED_BLOCKS).network()
    source = pytorch_source(nested, title="binary")
    assert "class Binary(nn.Module)" in source and "class Binary2(nn.Module)" in source  # layer class vs block
    assert "class Outer(nn.Module)" in source and "class Binary_(nn.Module)" in source
    run_standalone(tmp_path, [("clash", graph, True, {"self": torch.randn(3, 4, 6)}, ("eval",)),
                              ("nested", nested, True, {"x": torch.randn(3, 4)}, ("eval",))])


NESTED_BLOCKS = """
format: netcanvas/1
name: nested
blocks:
  binary:
    params: {n: 4}
    output: add
    nodes:
    - {id: x, type: Input, params: {shape: [4]}}
    - {id: fc, type: Affine, params: {out_features: $n}}
    - {id: add, type: Add2}
    links: [x -> fc, x -> add.x1, fc -> add.x0]
  outer:
    output: b
    nodes:
    - {id: x, type: Input, params: {shape: [4]}}
    - {id: b, type: binary}
    links: [x -> b]
networks:
  main:
    nodes:
    - {id: x, type: Input, params: {shape: [4]}}
    - {id: b1, type: binary}
    - {id: o1, type: outer}
    - {id: o2, type: outer}
    links: [x -> b1, b1 -> o1, o1 -> o2]
"""


def test_source_is_readable_and_names_modules_after_nodes(root):
    graph = gc.load(root / "examples/lenet.graph.yaml").network()
    source = pytorch_source(graph, title="lenet")
    assert "import torch\n" in source and "from torch import Tensor, nn" in source
    assert "self.conv1 = nn.Conv2d(1, 20, (5, 5))" in source
    assert "def forward(self, x: Tensor)" in source and "conv1 = self.conv1(x)" in source
    assert "class Lenet(nn.Module)" in source and "class FlatLinear(nn.Linear)" in source
    assert "SoftmaxCrossEntropy" not in source and "graphcompiler" not in source
    assert "class SoftmaxCrossEntropy" in pytorch_source(graph, inference=False)


def test_block_classes_are_shared_by_equal_uses_and_keys_match(root, tmp_path):
    graph = gc.load(root / "examples/resnet18.graph.yaml").network()
    source = pytorch_source(graph, class_name="ResNet18")
    assert source.count("class BasicBlock") == 4 and source.count("class DownBlock") == 3
    assert "self.layer1_0 = BasicBlock()" in source and "self.layer1_1 = BasicBlock()" in source
    (tmp_path / "resnet18.py").write_text(source)
    namespace = runpy.run_path(str(tmp_path / "resnet18.py"))
    assert list(namespace["ResNet18"]().state_dict()) == list(gc.compile(graph, inference=True).state_dict())


def test_invalid_graph_is_a_graph_error(root):
    graph = gc.load(root / "examples/lenet.graph.yaml").network()
    graph.node("x").params["shape"] = [1, 3, 3]
    with pytest.raises(gc.GraphError, match="conv1"):
        pytorch_source(graph)
    with pytest.raises(gc.GraphError, match="class name"):
        pytorch_source(gc.load(root / "examples/mlp.graph.yaml").network(), class_name="not valid")


def test_a_module_without_a_recorded_call_is_a_graph_error_naming_the_node(root, monkeypatch):
    monkeypatch.setitem(REGISTRY, "ReLU", replace(REGISTRY["ReLU"], build=lambda ins, p: nn.ReLU()))
    graph = gc.load(root / "examples/lenet.graph.yaml").network()
    with pytest.raises(gc.GraphError, match=r"relu1 \(ReLU\)"):
        pytorch_source(graph)
