"""Quantization-aware training: the straight-through gradients, the rewrite of a network into quantization
layers, the ONNX export of the result, and LeNet on digits trained in float and at 8 and 4 bits."""

import csv

import numpy as np
import onnxruntime
import pytest
import torch

import graphcompiler as gc
from conftest import ROOT
from graphcompiler.export.onnx_export import export_onnx
from graphcompiler.layers.modules.quantize import FixedPointQuantize, MinMaxQuantize, Pow2Quantize, QuantizedLinear
from graphcompiler.quantization import quantize_graph
from netcanvas.cli import main
from runtime.example_data import write_dataset
from runtime.qat import bit_sweep
from runtime.runs import evaluate_run, load_weights

SIZE = 16
"""LeNet's Input at 16 x 16 (conv 5, pool, conv 5, pool still fit) keeps three trainings within the test's time."""


def _gradient(module, x: torch.Tensor) -> torch.Tensor:
    x = x.clone().requires_grad_(True)
    module(x).sum().backward()
    return x.grad


@pytest.mark.parametrize("fine", [True, False])
def test_fixed_point_gradient_passes_inside_the_range_and_stops_outside_when_fine_grained(fine):
    quantizer = FixedPointQuantize(sign=True, n=4, delta=0.25, ste_fine_grained=fine)  # levels -1.75 .. 1.75
    x = torch.tensor([-3.0, -1.75, -0.6, 0.0, 0.1, 1.7, 1.75, 1.8, 5.0])
    inside = torch.tensor([0.0, 1, 1, 1, 1, 1, 1, 0, 0])
    assert torch.equal(quantizer(x), torch.tensor([-1.75, -1.75, -0.5, 0.0, 0.0, 1.75, 1.75, 1.75, 1.75]))
    assert torch.equal(_gradient(quantizer, x), inside if fine else torch.ones_like(x))


def test_pow2_and_min_max_gradients_stop_where_the_value_is_clipped():
    pow2 = Pow2Quantize(sign=False, with_zero=True, n=4, m=1, ste_fine_grained=True)  # 0, 2^-6 .. 2^1
    x = torch.tensor([-1.0, 0.3, 1.9, 2.9, 3.0, 9.0])
    assert torch.equal(pow2(x), torch.tensor([0.0, 0.25, 2.0, 2.0, 2.0, 2.0]))
    # Unsigned: no gradient below 0; above 2^m once |x| rounds to a larger power in log scale (2^1.5 = 2.83).
    assert torch.equal(_gradient(pow2, x), torch.tensor([0.0, 1, 1, 0, 0, 0]))

    min_max = MinMaxQuantize(n=2, decay=0.5).train()
    min_max(torch.tensor([0.0, 3.0]))  # the first batch sets the range: levels 0, 1, 2, 3
    x = torch.tensor([-1.0, 0.4, 2.6, 3.5])
    assert torch.equal(min_max.eval()(x), torch.tensor([0.0, 0.0, 3.0, 3.0]))
    assert torch.equal(_gradient(min_max, x), torch.tensor([0.0, 1, 1, 0]))


def test_weight_layer_trains_its_float_weights_through_the_quantized_ones():
    layer = QuantizedLinear(3, 2, bias=False, weight_rule=(True, 4, 0.25, True))
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[0.3, -0.1, 9.0], [1.0, 0.0, -0.4]]))
    x = torch.ones(1, 3)
    assert torch.equal(layer(x), torch.tensor([[0.25 + 0.0 + 1.75, 1.0 + 0.0 - 0.5]]))
    layer(x).sum().backward()
    assert torch.equal(layer.weight.grad, torch.tensor([[1.0, 1, 0], [1, 1, 1]]))  # 9.0 was clipped
    assert list(layer.state_dict()) == ["weight"]


def _lenet(size: int = 28) -> gc.Project:
    project = gc.load(ROOT / "examples/lenet.graph.yaml")
    project.network().node("x").params["shape"] = [1, size, size]
    return project


def test_rewrite_quantizes_weight_layers_and_activations_and_keeps_input_loss_and_output():
    graph = _lenet().network()
    rewritten = quantize_graph(graph, 4)
    types = {node.id: node.type for node in rewritten.nodes()}
    assert types == {"x": "Input", "conv1": "FixedPointQuantizedConvolution", "pool1": "MaxPooling",
                     "conv2": "FixedPointQuantizedConvolution", "pool2": "MaxPooling",
                     "ip1": "FixedPointQuantizedAffine", "relu1": "ReLU", "relu1_q": "FixedPointQuantize",
                     "ip2": "FixedPointQuantizedAffine", "y": "Input", "loss": "SoftmaxCrossEntropy"}
    assert rewritten.source_of("ip2", "x") == ("relu1_q", "y")
    assert rewritten.node("relu1_q").params == {"sign": False, "n": 4, "delta": 0.5}  # 0 .. 7.5
    assert rewritten.node("conv1").params["n_w"] == 4 and rewritten.node("ip2").params["n_w"] == 8  # the output
    # fan-in 25: 4 / sqrt(25) = 0.8, up to 1; signed 4 bits: steps of 1/8
    assert rewritten.node("conv1").params["delta_w"] == 0.125
    assert gc.cost(gc.infer_shapes(rewritten)).params == gc.cost(gc.infer_shapes(graph)).params
    assert quantize_graph(rewritten, 4) == rewritten, "a second rewrite must change nothing"
    kept = quantize_graph(graph, 8, "pow2", keep=("ip2", "relu1"))
    assert kept.node("ip2").type == "Affine" and "relu1_q" not in kept
    assert kept.node("conv1").params["m_w"] == 0 and kept.node("conv1").params["with_zero_w"]
    with pytest.raises(gc.GraphError, match="pow2 needs at least 3 bits"):
        quantize_graph(graph, 2, "pow2")


def test_quantized_network_exports_to_onnx_and_onnxruntime_agrees(tmp_path):
    graph = gc.Graph()
    graph.add_node("x", "Input", {"shape": [2, 8, 8]})
    chain = [("conv", "FixedPointQuantizedConvolution", {"out_channels": 4, "kernel": [3, 3], "delta_w": 0.125}),
             ("act", "ReLU", {}), ("fq", "FixedPointQuantize", {"sign": False, "delta": 0.125}),
             ("conv2", "Pow2QuantizedConvolution", {"out_channels": 3, "kernel": [3, 3], "m_w": 0}),
             ("p2", "Pow2Quantize", {"m": 2}), ("mm", "MinMaxQuantize", {"n": 6}),
             ("fc", "Pow2QuantizedAffine", {"out_features": 5, "with_zero_w": True, "m_w": -1}),
             ("fc2", "FixedPointQuantizedAffine", {"out_features": 3, "delta_w": 0.0625})]
    previous = "x"
    for node_id, layer_type, params in chain:
        graph.add_node(node_id, layer_type, params)
        graph.connect(previous, node_id)
        previous = node_id
    model = gc.compile(graph)
    model.train()
    model(x=torch.randn(16, 2, 8, 8))  # sets MinMaxQuantize's running range
    report = export_onnx(graph, tmp_path / "q.onnx", weights=model.state_dict())
    assert max(report.max_relative_error.values()) <= 1e-5
    session = onnxruntime.InferenceSession(str(tmp_path / "q.onnx"))
    x = torch.randn(4, 2, 8, 8)
    model.eval()
    with torch.no_grad():
        expected = model(x=x)["fc2"].numpy()
    np.testing.assert_allclose(session.run(None, {"x": x.numpy()})[0], expected, rtol=1e-5, atol=1e-6)


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    root = tmp_path_factory.mktemp("qat")
    write_dataset("digits", root / "data/digits-28", size=SIZE)
    project = _lenet(SIZE)
    project.sections["training"].update(epochs=4)
    rows = bit_sweep(project, root, bits=(8, 4), output=root / "sweep")
    return root / "sweep", {row["bits"]: row for row in rows}


def test_lenet_at_8_bits_is_within_a_point_of_float_and_4_bits_is_reported(sweep):
    folder, rows = sweep
    for bits, row in rows.items():
        print(f"LeNet {SIZE}x{SIZE} on digits, {bits}: validation accuracy {row['accuracy']:.4f}")
    assert rows["8"]["accuracy"] >= rows["float"]["accuracy"] - 0.01
    assert rows["4"]["accuracy"] > 0.5
    with open(folder / "bits.csv", newline="") as handle:
        table = list(csv.DictReader(handle))
    assert [row["bits"] for row in table] == ["float", "8", "4"]
    assert float(table[1]["accuracy"]) == rows["8"]["accuracy"]
    assert (folder / "bits.png").stat().st_size > 0


def test_the_quantized_run_reopens_to_the_same_accuracy_with_at_most_2_to_the_n_weight_values(sweep):
    folder, rows = sweep
    run = folder / "4"
    project = gc.load(run / "project.graph.yaml")
    assert project.network().node("conv1").type == "FixedPointQuantizedConvolution"
    assert evaluate_run(run, output=run / "again")["accuracy"] == rows["4"]["accuracy"]
    model = gc.compile(project.network()).eval()
    model.load_state_dict(load_weights(run))
    for node_id in ("conv1", "conv2", "ip1", "ip2"):
        layer = getattr(model, node_id)
        weight, bias = layer.quantized()
        bits = project.network().node(node_id).params["n_w"]
        assert len(weight.unique()) <= 2 ** bits and len(bias.unique()) <= 2 ** bits, node_id
        assert len(layer.weight.unique()) > 2 ** bits, f"{node_id}: the float weights are what is trained"


def test_qat_sweep_command_writes_the_table_and_the_plot(tmp_path, capsys):
    write_dataset("digits-vectors", tmp_path / "data/digits-vectors", count=120)
    project = gc.load(ROOT / "examples/mlp.graph.yaml")
    project.sections["training"]["epochs"] = 1
    gc.save(project, tmp_path / "mlp.graph.yaml")
    assert main(["qat-sweep", str(tmp_path / "mlp.graph.yaml"), "--bits", "8", "-o", str(tmp_path / "sweep")]) == 0
    with open(tmp_path / "sweep/bits.csv", newline="") as handle:
        assert [row["bits"] for row in csv.DictReader(handle)] == ["float", "8"]
    assert (tmp_path / "sweep/bits.png").stat().st_size > 0
    assert main(["qat-sweep", str(tmp_path / "mlp.graph.yaml"), "--bits", "8,0"]) == 1
    assert capsys.readouterr().err.strip().endswith("error: --bits 8,0: give widths from 1 to 32 bits")
