"""The binary layers (NNC's and nnabla's): binarised forward, straight-through gradients, NNC parameter counts,
export, and binary networks trained on scikit-learn's digits against the same float networks."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import graphcompiler as gc
from graphcompiler.export.onnx_export import export_onnx


def _chain(shape: list[int], *layers: tuple[str, dict]) -> gc.Graph:
    """Input x -> the layers in a row; the last one's id is 'out'."""
    graph = gc.Graph()
    graph.add_node("x", "Input", {"shape": shape})
    previous = "x"
    for i, (layer_type, params) in enumerate(layers):
        node = "out" if i == len(layers) - 1 else f"n{i}"
        graph.add_node(node, layer_type, params)
        graph.connect(previous, node)
        previous = node
    return graph


def _layer(layer_type: str, params: dict, shape: list[int]):
    model = gc.compile(_chain(shape, (layer_type, params)))
    return model, model.out


def test_binary_connect_affine_computes_with_the_signs_of_its_weights_and_zero_to_for_zeros():
    model, layer = _layer("BinaryConnectAffine", {"out_features": 3, "zero_to": -1.0}, [2, 2])
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[0.3, -0.2, 0.0, 5.0], [-1.0, -0.1, 0.2, 0.0], [0.0, 0.0, 0.0, 0.0]]))
        layer.bias.copy_(torch.tensor([0.5, 0.0, -0.5]))
    x = torch.randn(4, 2, 2)
    signs = torch.tensor([[1.0, -1.0, -1.0, 1.0], [-1.0, -1.0, 1.0, -1.0], [-1.0, -1.0, -1.0, -1.0]])
    torch.testing.assert_close(model(x=x)["out"], x.flatten(1) @ signs.T + layer.bias.detach())


def test_binary_weight_layers_scale_each_output_by_its_mean_absolute_weight():
    model, layer = _layer("BinaryWeightConvolution", {"out_channels": 2, "kernel": [2, 2], "bias": False}, [1, 3, 3])
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[[[1.0, -2.0], [3.0, -4.0]]], [[[0.5, 0.5], [-0.5, 0.0]]]]))
    alpha = torch.tensor([2.5, 0.375]).reshape(2, 1, 1, 1)
    binary = torch.tensor([[[[1.0, -1.0], [1.0, -1.0]]], [[[1.0, 1.0], [-1.0, 1.0]]]]) * alpha
    x = torch.randn(2, 1, 3, 3)
    torch.testing.assert_close(model(x=x)["out"], F.conv2d(x, binary))


@pytest.mark.parametrize("layer_type, params, shape", [
    ("BinaryConnectAffine", {"out_features": 4}, [6]),
    ("BinaryWeightAffine", {"out_features": 4}, [6]),
    ("BinaryNetConvolution", {"out_channels": 3, "kernel": [3, 3]}, [2, 5, 5]),
    ("BinaryWeightConvolution", {"out_channels": 3, "kernel": [3, 3], "pad": [1, 1]}, [2, 5, 5]),
])
def test_the_gradient_reaches_the_float_weights_straight_through(layer_type, params, shape):
    # nnabla's Sign passes the gradient unchanged: d loss / d W is d loss / d (binary weight), neither gated nor
    # scaled, and BinaryWeight's alpha takes none of it.
    model, layer = _layer(layer_type, params, shape)
    x = torch.randn((3, *shape))
    out = model(x=x)["out"]
    upstream = torch.randn_like(out)
    (out * upstream).sum().backward()

    binary = layer.binary_weight().detach().requires_grad_()
    if layer_type.endswith("Affine"):
        reference = F.linear(x.flatten(1), binary, layer.bias)
    else:
        reference = F.conv2d(x, binary, layer.bias, layer.stride, layer.padding)
    (reference * upstream).sum().backward()
    torch.testing.assert_close(layer.weight.grad, binary.grad)
    assert layer.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("layer_type, low, slope", [("BinarySigmoid", 0.0, 0.5), ("BinaryTanh", -1.0, 1.0)])
def test_binary_activations_step_forward_and_gate_the_gradient_to_inside_one(layer_type, low, slope):
    model, _ = _layer(layer_type, {}, [7])
    x = torch.tensor([[-2.0, -1.0, -0.5, 0.0, 0.3, 1.0, 1.5]], requires_grad=True)
    y = model(x=x)["out"]
    torch.testing.assert_close(y.detach(), torch.tensor([[low, low, low, low, 1.0, 1.0, 1.0]]))
    y.sum().backward()
    torch.testing.assert_close(x.grad, torch.tensor([[0.0, 0.0, slope, slope, slope, 0.0, 0.0]]))


def test_parameter_counts_are_nnablas_trained_parameters():
    # nnabla's binary_connect_affine makes W (trained), Wb (sign(W), not trained) and b; binary_weight_affine adds
    # alpha (not trained). Wb and alpha are recomputed from W on every forward: the count is W and b.
    graph = _chain([1, 28, 28], ("BinaryConnectConvolution", {"out_channels": 64, "kernel": [5, 5]}),
                   ("BinaryWeightAffine", {"out_features": 512}), ("BinaryConnectAffine", {"out_features": 10}))
    cost = gc.cost(gc.infer_shapes(graph))
    assert cost.per_node["n0"] == (64 * 25 + 64, 64 * 25 * 24 * 24)
    assert cost.per_node["n1"][0] == 64 * 24 * 24 * 512 + 512
    assert cost.per_node["out"][0] == 512 * 10 + 10
    assert cost.params == sum(t.numel() for t in gc.compile(graph).parameters())


def test_a_binary_network_exports_to_onnx_and_onnxruntime_agrees(tmp_path):
    graph = _chain([1, 8, 8], ("BinaryWeightConvolution", {"out_channels": 4, "kernel": [3, 3]}),
                   ("BinaryTanh", {}), ("BinaryConnectConvolution", {"out_channels": 4, "kernel": [3, 3]}),
                   ("BinarySigmoid", {}), ("BinaryNetAffine", {"out_features": 5, "zero_to": -1.0}))
    report = export_onnx(graph, tmp_path / "binary.onnx")
    assert max(report.max_relative_error.values()) <= 1e-5


# ----------------------------------------------------------------------------- training on digits

def _digits():
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x = torch.tensor(digits.images / 16.0, dtype=torch.float32).unsqueeze(1)
    y = torch.tensor(digits.target)
    train, test = train_test_split(np.arange(len(y)), test_size=0.2, random_state=0, stratify=digits.target)
    return x[train], y[train], x[test], y[test]


def _mlp(affine: str, activation: str) -> gc.Graph:
    """NNC's binary MLP sample's structure on 8 x 8 digits: (Affine, BatchNormalization, activation) x 2, then 10."""
    return _chain([1, 8, 8], (affine, {"out_features": 256}), ("BatchNormalization", {}), (activation, {}),
                  (affine, {"out_features": 256}), ("BatchNormalization", {}), (activation, {}),
                  (affine, {"out_features": 10}), ("BatchNormalization", {}))


def _lenet(convolution: str, affine: str) -> gc.Graph:
    """NNC's binary LeNet sample's structure, sized for 8 x 8 digits."""
    return _chain([1, 8, 8], (convolution, {"out_channels": 32, "kernel": [3, 3], "pad": [1, 1]}),
                  ("MaxPooling", {}), ("BatchNormalization", {}), ("ReLU", {}),
                  (convolution, {"out_channels": 64, "kernel": [3, 3], "pad": [1, 1]}),
                  ("MaxPooling", {}), ("BatchNormalization", {}), ("ReLU", {}),
                  (affine, {"out_features": 10}), ("BatchNormalization", {}))


def _accuracy(graph: gc.Graph, data, epochs: int = 12) -> float:
    """Validation accuracy after Adam with a cosine schedule, batch 32, seeded."""
    x, y, x_test, y_test = data
    torch.manual_seed(0)
    model = gc.compile(graph)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.003)
    steps = epochs * -(-len(y) // 32)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, steps)
    for _ in range(epochs):
        model.train()
        for batch in torch.randperm(len(y)).split(32):
            loss = F.cross_entropy(model(x=x[batch])["out"], y[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
    model.eval()
    with torch.no_grad():
        return (model(x=x_test)["out"].argmax(1) == y_test).float().mean().item()


@pytest.mark.parametrize("name, binary, full", [
    ("BinaryConnect MLP", _mlp("BinaryConnectAffine", "BinaryTanh"), _mlp("Affine", "Tanh")),
    ("BinaryWeight MLP", _mlp("BinaryWeightAffine", "ReLU"), _mlp("Affine", "ReLU")),
    ("BinaryConnect LeNet", _lenet("BinaryConnectConvolution", "BinaryConnectAffine"), _lenet("Convolution", "Affine")),
])
def test_binary_networks_on_digits_come_within_a_few_points_of_the_float_ones(name, binary, full, one_thread):
    data = _digits()
    started = time.perf_counter()
    binary_accuracy, float_accuracy = _accuracy(binary, data), _accuracy(full, data)
    seconds = time.perf_counter() - started
    print(f"{name} on digits: binary {binary_accuracy:.4f}, float {float_accuracy:.4f} ({seconds:.1f} s)")
    assert float_accuracy >= 0.95
    assert binary_accuracy >= float_accuracy - 0.04
