"""Inputs the network makes itself (NNC's Input generators): noise while training, its mean in eval mode."""

import pytest
import torch
from test_pytorch_source import run_standalone

import graphcompiler as gc
from conftest import ROOT
from graphcompiler.export.onnx_export import export_onnx
from runtime.csvdata import Variable
from runtime.data import bind
from runtime.example_data import write_dataset
from runtime.training import train

NOISY = """format: netcanvas/1
name: noisy
networks:
  main:
    nodes:
    - {id: x, type: Input, params: {shape: [2000]}}
    - {id: noise, type: Input, params: {shape: [2000], generator: GEN, multiplier: 0.5}}
    - {id: sum, type: Add2}
    links:
    - x -> sum.x0
    - noise -> sum.x1
"""


def _noise(generator: str, train: bool) -> torch.Tensor:
    model = gc.compile(gc.loads(NOISY.replace("GEN", generator)).network())
    model.train(train)
    return model.trace(x=torch.zeros(3, 2000))["noise"]


def test_normal_noise_has_the_multiplier_as_its_spread_while_training_and_is_zero_in_eval_mode():
    noise = _noise("normal", train=True)
    assert noise.shape == (3, 2000)
    assert abs(noise.mean().item()) < 0.03 and abs(noise.std().item() - 0.5) < 0.03
    assert torch.equal(_noise("normal", train=False), torch.zeros(3, 2000))


def test_uniform_noise_spans_minus_to_plus_the_multiplier():
    noise = _noise("uniform", train=True)
    assert noise.min() >= -0.5 and noise.max() <= 0.5 and noise.min() < -0.45 and noise.max() > 0.45
    assert torch.equal(_noise("uniform", train=False), torch.zeros(3, 2000))


@pytest.mark.parametrize("train", [True, False])
def test_a_constant_is_the_multiplier_everywhere(train):
    assert torch.equal(_noise("constant", train=train), torch.full((3, 2000), 0.5))


def test_generated_inputs_are_not_the_networks_inputs_nor_the_datasets():
    graph = gc.loads(NOISY.replace("GEN", "normal")).network()
    assert graph.fed_inputs() == ["x"] and gc.compile(graph).input_names == ["x"]

    class OneVariable:
        variables = {"x": Variable("x", "", tuple(range(2000)), "vector")}
        shapes = {"x": (2000,)}
        file = "data.csv"

    assert bind(graph, OneVariable(), {}).variables == {"x": "x"}


def test_a_network_whose_every_input_is_generated_says_what_gives_the_batch_size():
    text = NOISY.replace("GEN", "normal").replace("{id: x, type: Input, params: {shape: [2000]}}",
                                                   "{id: x, type: Input, params: {shape: [2000], generator: uniform}}")
    with pytest.raises(gc.GraphError) as caught:
        gc.compile(gc.loads(text).network())
    assert "every input of the network is generated (x, noise)" in caught.value.message


def test_exports_of_a_generated_input_run_deterministically(tmp_path):
    graph = gc.loads(NOISY.replace("GEN", "constant")).network()
    report = export_onnx(graph, tmp_path / "noisy.onnx")
    assert report.inputs == {"x": (2000,)} and max(report.max_relative_error.values()) <= 1e-5
    run_standalone(tmp_path, [("noisy", graph, True, {"x": torch.randn(2, 2000)}, ("eval",))])


def test_a_network_with_input_noise_trains_on_digit_vectors(tmp_path):
    """Gaussian noise on the input while training (a regulariser); the dataset feeds only x and y."""
    write_dataset("digits-vectors", tmp_path / "data/digits-vectors")
    project = gc.load(ROOT / "examples/mlp.graph.yaml")
    graph = project.network()
    graph.add_node("noise", "Input", {"shape": [64], "generator": "normal", "multiplier": 0.3})
    graph.add_node("noisy", "Add2")
    graph.disconnect("fc1", "x")
    graph.connect("x", "noisy", None, "x0")
    graph.connect("noise", "noisy", None, "x1")
    graph.connect("noisy", "fc1")
    project.sections["training"].update(epochs=15)
    result = train(project, tmp_path / "run", base_dir=tmp_path)
    print(f"MLP with input noise 0.3, 15 epochs: validation accuracy {result['accuracy']:.4f}")
    assert result["accuracy"] >= 0.94
