"""A project keeps its network's weights in a file beside it (an imported model's): every command honours it."""

import warnings

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from torch import nn

import graphcompiler as gc
from netcanvas.cli import main
from runtime.example_data import write_dataset
from runtime.runs import load_weights
from runtime.training import train
from runtime.weights import read_weights


@pytest.fixture
def imported(tmp_path):
    """A model nobody here made, exported by torch and brought in with `netcanvas import`."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 48), nn.ReLU(), nn.Linear(48, 10)).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (torch.randn(2, 64),), str(tmp_path / "deployed.onnx"), dynamo=False,
                          opset_version=17, input_names=["x"], output_names=["y"], dynamic_axes={"x": {0: "N"}})
    assert main(["import", str(tmp_path / "deployed.onnx"), "-o", str(tmp_path / "mlp.graph.yaml")]) == 0
    return tmp_path


def _run(path, x: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x})[0]


def test_the_project_names_its_weights_and_export_from_the_command_line_keeps_them(imported, capsys):
    project = gc.load(imported / "mlp.graph.yaml")
    assert project.weight_files == {"main": "mlp.weights.pt"}
    assert main(["info", str(imported / "mlp.graph.yaml")]) == 0
    assert "weights: from mlp.weights.pt" in capsys.readouterr().out
    assert main(["export", str(imported / "mlp.graph.yaml"), "-o", str(imported / "again.onnx")]) == 0
    x = np.random.default_rng(1).standard_normal((5, 64)).astype(np.float32)
    np.testing.assert_allclose(_run(imported / "again.onnx", x), _run(imported / "deployed.onnx", x),
                               rtol=1e-5, atol=1e-6)
    metadata = {p.key: p.value for p in onnx.load(imported / "again.onnx").metadata_props}
    assert metadata["netcanvas.weights"] == "from mlp.weights.pt"
    assert main(["export", str(imported / "mlp.graph.yaml"), "--format", "pytorch",
                 "-o", str(imported / "again.py")]) == 0
    saved = torch.load(imported / "again.pt", weights_only=True)
    for key, tensor in read_weights(imported / "mlp.weights.pt").items():
        assert torch.equal(saved[key], tensor), key


def test_saving_keeps_the_reference_and_a_changed_network_is_named(imported, capsys):
    project = gc.load(imported / "mlp.graph.yaml")
    gc.save(project, imported / "mlp.graph.yaml")
    assert "weights: mlp.weights.pt" in (imported / "mlp.graph.yaml").read_text()
    first = next(n for n in project.network().nodes() if n.type == "Affine")
    first.params["out_features"] = 32
    gc.save(project, imported / "changed.graph.yaml")
    assert main(["export", str(imported / "changed.graph.yaml"), "-o", str(imported / "x.onnx")]) == 1
    message = capsys.readouterr().err
    assert message.count("error:") == 1 and f"{first.id}:" in message and "mlp.weights.pt" in message
    (imported / "mlp.weights.pt").unlink()
    assert main(["validate", str(imported / "mlp.graph.yaml")]) == 1
    assert "mlp.weights.pt is not beside the project" in capsys.readouterr().err


def test_training_starts_from_the_weights_file_and_freezing_keeps_them(imported):
    write_dataset("digits-vectors", imported / "data", count=200)
    project = gc.load(imported / "mlp.graph.yaml")
    graph = project.network()
    output = next(n.id for n in graph.nodes() if not list(graph.nx.successors(n.id)))
    graph.add_node("label", "Input", {"shape": [1]})
    graph.add_node("loss", "SoftmaxCrossEntropy")
    graph.connect(output, "loss", None, "x")
    graph.connect("label", "loss", None, "target")
    saved = read_weights(imported / "mlp.weights.pt")
    first = min({key.split(".")[0] for key in saved}, key=lambda n: [l.src for l in graph.links()].index(n))
    project.sections = {"dataset": {"training": "data/train.csv", "validation": "data/validation.csv",
                                    "inputs": {graph.fed_inputs()[0]: "x", "label": "y"}},
                        "training": {"epochs": 1, "batch_size": 50, "optimizer": {"type": "SGD", "lr": 1e-6},
                                     "transfer": {"freeze": [first]}}}
    train(project, imported / "run", base_dir=imported)
    trained = load_weights(imported / "run")
    for key, tensor in saved.items():
        if key.startswith(f"{first}."):
            assert torch.equal(trained[key], tensor), key  # frozen: exactly the file's
        else:
            assert 0 < (trained[key] - tensor).abs().max() < 1e-4, key  # trained, from the file's values
    # transfer.from takes the .onnx file itself too.
    project.sections["training"]["transfer"] = {"from": "deployed.onnx"}
    train(project, imported / "run2", base_dir=imported)
    # The project itself is evaluated with its file's weights, as a run would be.
    gc.save(project, imported / "finetune.graph.yaml")
    assert main(["evaluate", str(imported / "finetune.graph.yaml")]) == 0
    report = imported / "finetune-evaluation"
    assert (report / "output_result.csv").is_file() and (report / "confusion_matrix.png").is_file()
