"""Views: a network that takes another network's weights by node id (NNC's validation and runtime networks)."""

import numpy as np
import onnxruntime as ort
import pytest
import torch

import graphcompiler as gc
from graphcompiler.views import shared_nodes, view_weights
from runtime.example_data import write_dataset
from runtime.exporting import export, export_target
from runtime.training import train

PROJECT = """\
format: netcanvas/1
name: views
networks:
  main:
    nodes:
    - {id: x, type: Input, params: {shape: [64]}}
    - {id: fc1, type: Affine, params: {out_features: 32}}
    - {id: relu, type: ReLU}
    - {id: fc2, type: Affine, params: {out_features: 10}}
    - {id: y, type: Input, params: {shape: [1]}}
    - {id: loss, type: SoftmaxCrossEntropy}
    links:
    - x -> fc1
    - fc1 -> relu
    - relu -> fc2
    - fc2 -> loss.x
    - y -> loss.target
  Runtime:
    weights: main
    nodes:
    - {id: x, type: Input, params: {shape: [64]}}
    - {id: fc1, type: Affine, params: {out_features: 32}}
    - {id: relu, type: ReLU}
    - {id: fc2, type: Affine, params: {out_features: 10}}
    - {id: probabilities, type: Softmax}
    links:
    - x -> fc1
    - fc1 -> relu
    - relu -> fc2
    - fc2 -> probabilities
dataset:
  training: data/train.csv
  validation: data/validation.csv
training:
  epochs: 1
  batch_size: 32
"""


def test_a_view_names_its_source_in_the_file_and_keeps_it_on_save():
    project = gc.loads(PROJECT)
    assert project.weights_from == {"Runtime": "main"}
    assert gc.validate(project) == []
    assert gc.dumps(project) == PROJECT
    assert shared_nodes(project.networks["Runtime"], project.network()) == ["fc1", "fc2"]


@pytest.mark.parametrize("source, message", [
    ("nothing", "'nothing' is not another network of the project (it has main)"),
    ("Runtime", "'Runtime' is not another network of the project (it has main)"),
])
def test_a_view_of_no_other_network_is_refused_where_it_says_so(source, message):
    project = gc.loads(PROJECT.replace("weights: main", f"weights: {source}"))
    problems = gc.validate(project)
    assert [(p.where, p.message) for p in problems] == [("networks.Runtime.weights", message)]


def test_a_view_of_a_view_is_refused():
    text = PROJECT.replace("dataset:", "  Other:\n    weights: Runtime\n    nodes:\n"
                                       "    - {id: x, type: Input, params: {shape: [64]}}\n    links: []\ndataset:")
    problems = gc.validate(gc.loads(text))
    assert [(p.where, p.message) for p in problems] == [
        ("networks.Other.weights", "'Runtime' takes its weights from 'main': name that network here instead")]


def test_a_shared_node_of_another_size_names_the_node():
    project = gc.loads(PROJECT)
    project.networks["Runtime"].node("fc1").params["out_features"] = 16
    problems = gc.validate(project)
    assert [(p.node, p.where) for p in problems] == [("fc1", "networks.Runtime.weights"),
                                                     ("fc2", "networks.Runtime.weights")]
    assert problems[0].message.startswith("fc1 has 1,040 weights here but 2,080 in 'main'")
    with pytest.raises(gc.GraphError, match=r"fc1.weight is \(32, 64\) in 'main' but \(16, 64\) here"):
        view_weights(project, "Runtime", gc.compile(project.network()).state_dict())


def test_a_view_computes_with_its_source_weights():
    project = gc.loads(PROJECT)
    main = gc.compile(project.network()).eval()
    runtime = gc.compile(project.networks["Runtime"]).eval()
    runtime.load_state_dict(view_weights(project, "Runtime", main.state_dict()))
    x = torch.rand(5, 64)
    with torch.no_grad():
        logits = main.trace(x=x, y=torch.zeros(5, 1))["fc2"]
        assert torch.allclose(runtime(x=x)["probabilities"], logits.softmax(1))


def test_exporting_a_view_of_a_trained_run_uses_the_trained_weights(tmp_path):
    write_dataset("digits-vectors", tmp_path / "data", count=200)
    project = gc.loads(PROJECT)
    train(project, tmp_path / "run", base_dir=tmp_path)
    target = export_target(tmp_path / "run", "Runtime")
    assert target.metadata["netcanvas.weights"] == "trained, taken from network 'main' (2 layers)"
    export(target, tmp_path / "runtime.onnx")
    trained = export_target(tmp_path / "run").weights
    main = gc.compile(project.network()).eval()
    main.load_state_dict(trained)
    x = np.random.default_rng(0).random((4, 64), dtype=np.float32)
    with torch.no_grad():
        expected = main.trace(x=torch.from_numpy(x), y=torch.zeros(4, 1))["fc2"].softmax(1).numpy()
    got = ort.InferenceSession(str(tmp_path / "runtime.onnx")).run(None, {"x": x})[0]
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
