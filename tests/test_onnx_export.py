"""ONNX export: every example passes onnx.checker and runs in onnxruntime with torch's outputs."""

import json
import subprocess
import sys

import numpy as np
import onnx
import onnxruntime
import pytest
import torch
from torch import nn

import graphcompiler as gc
from conftest import EXAMPLES, ROOT
from graphcompiler.export import onnx_export
from graphcompiler.export.onnx_export import example_inputs, export_onnx, inference_module

NETWORKS = [(path, name) for path in EXAMPLES for name in gc.load(path).networks]


@pytest.mark.parametrize("path,network", NETWORKS, ids=[f"{p.name.split('.')[0]}-{n}" for p, n in NETWORKS])
def test_every_example_exports_and_onnxruntime_matches_torch(path, network, tmp_path):
    graph = gc.load(path).network(network)
    report = export_onnx(graph, tmp_path / "model.onnx")
    assert sorted(report.max_relative_error) == [1, 3]
    assert max(report.max_relative_error.values()) <= 1e-5
    model = onnx.load(tmp_path / "model.onnx")
    module = gc.compile(graph, inference=True)
    assert [i.name for i in model.graph.input] == module.input_names
    assert [o.name for o in model.graph.output] == module.output_names
    assert model.opset_import[0].version == 17
    batch_axis = model.graph.input[0].type.tensor_type.shape.dim[0]
    assert batch_axis.dim_param == "N"
    print(f"{path.name} {network}: exported and checked in {report.seconds:.2f} s")


def test_node_names_follow_node_ids_and_metadata_is_kept(tmp_path):
    graph = gc.load(ROOT / "examples/resnet18.graph.yaml").network()
    graph.node("x").params["shape"] = [3, 32, 32]
    export_onnx(graph, tmp_path / "r.onnx", metadata={"netcanvas.project": "resnet18"})
    model = onnx.load(tmp_path / "r.onnx")
    names = [n.name for n in model.graph.node]
    assert "/conv1/Conv" in names and "/layer1_0/conv2/Conv" in names
    meta = {p.key: p.value for p in model.metadata_props}
    assert meta["netcanvas.project"] == "resnet18"
    assert json.loads(meta["netcanvas.inputs"]) == {"x": [3, 32, 32]}
    assert model.producer_name == "netcanvas"


def test_given_weights_are_the_ones_exported(tmp_path):
    graph = gc.load(ROOT / "examples/mlp.graph.yaml").network()
    torch.manual_seed(5)
    trained = gc.compile(graph).state_dict()
    export_onnx(graph, tmp_path / "m.onnx", weights=trained)
    session = onnxruntime.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    x = torch.randn(4, 64)
    expected = inference_module(graph, trained)(x)["fc3"].detach().numpy()
    assert np.allclose(session.run(None, {"x": x.numpy()})[0], expected, atol=1e-5)
    with pytest.raises(gc.GraphError, match="do not fit"):
        export_onnx(graph, tmp_path / "bad.onnx", weights={k: v[:1] for k, v in trained.items()})


def test_fp16_weights_halve_the_file_and_still_verify(tmp_path):
    graph = gc.load(ROOT / "examples/lenet.graph.yaml").network()
    full = export_onnx(graph, tmp_path / "full.onnx")
    half = export_onnx(graph, tmp_path / "half.onnx", fp16=True)
    ratio = (tmp_path / "half.onnx").stat().st_size / (tmp_path / "full.onnx").stat().st_size
    assert 0.45 < ratio < 0.55
    assert half.fp16 and not full.fp16 and max(half.max_relative_error.values()) <= 1e-5


@pytest.mark.parametrize("opset", [14, 18])
def test_opset_choice(opset, tmp_path):
    graph = gc.load(ROOT / "examples/lstm.graph.yaml").network()
    export_onnx(graph, tmp_path / "l.onnx", opset=opset)
    assert onnx.load(tmp_path / "l.onnx").opset_import[0].version == opset
    with pytest.raises(gc.GraphError, match="too old"):
        export_onnx(graph, tmp_path / "old.onnx", opset=9)


def test_a_layer_torch_cannot_export_is_named(tmp_path, monkeypatch):
    class Untraceable(nn.Module):
        def forward(self, x):
            return torch.special.bessel_j0(x)

    real_compile = onnx_export.compile

    def compile_with_untraceable(graph, **kwargs):
        module = real_compile(graph, **kwargs)
        module.relu1 = Untraceable()
        return module

    monkeypatch.setattr(onnx_export, "compile", compile_with_untraceable)
    graph = gc.load(ROOT / "examples/lenet.graph.yaml").network()
    with pytest.raises(gc.GraphError, match=r"relu1 \(ReLU\) cannot be exported to ONNX opset 17: .*bessel_j0"):
        export_onnx(graph, tmp_path / "x.onnx")


def test_a_layer_the_tracer_freezes_into_a_constant_fails_verification(tmp_path, monkeypatch):
    class Frozen(nn.Module):
        def forward(self, x):
            return torch.from_numpy(x.detach().numpy() * 2)

    real_compile = onnx_export.compile

    def compile_with_frozen(graph, **kwargs):
        module = real_compile(graph, **kwargs)
        module.fc1 = Frozen()
        module.fc2 = nn.Linear(64, 64)
        return module

    monkeypatch.setattr(onnx_export, "compile", compile_with_frozen)
    graph = gc.load(ROOT / "examples/mlp.graph.yaml").network()
    with pytest.raises(gc.GraphError, match="onnxruntime"):
        export_onnx(graph, tmp_path / "frozen.onnx")


def test_embed_inputs_are_token_ids():
    graph = gc.Graph()
    graph.add_node("x", "Input", {"shape": [5]})
    graph.add_node("embed", "Embed", {"num_embeddings": 7, "dim": 3})
    graph.connect("x", "embed")
    (ids,) = example_inputs(gc.compile(graph, inference=True), 4)
    assert ids.min() >= 0 and ids.max() < 7 and torch.equal(ids, ids.round())


def test_label_inputs_that_reach_a_one_hot_are_drawn_as_class_indices_and_export(tmp_path):
    graph = gc.Graph()
    graph.add_node("label", "Input", {"shape": [4, 4]})
    graph.add_node("keep", "MulScalar", {"value": 1.0})
    graph.add_node("cells", "Reshape", {"shape": [16, 1]})
    graph.add_node("hot", "OneHot", {"shape": [5]})
    for src, dst in (("label", "keep"), ("keep", "cells"), ("cells", "hot")):
        graph.connect(src, dst)
    (labels,) = example_inputs(gc.compile(graph, inference=True), 3)
    assert labels.min() >= 0 and labels.max() < 5 and torch.equal(labels, labels.round())
    report = export_onnx(graph, tmp_path / "hot.onnx")
    assert max(report.max_relative_error.values()) == 0


def test_a_node_that_cannot_run_on_the_export_inputs_is_named(tmp_path):
    graph = gc.Graph()
    graph.add_node("x", "Input", {"shape": [3]})
    graph.add_node("shift", "AddScalar", {"value": -10.0})
    graph.add_node("cells", "Reshape", {"shape": [3, 1]})
    graph.add_node("hot", "OneHot", {"shape": [5]})
    for src, dst in (("x", "shift"), ("shift", "cells"), ("cells", "hot")):
        graph.connect(src, dst)
    with pytest.raises(gc.GraphError, match=r"^hot \(OneHot\) cannot run on the random inputs the export traces "
                                            r"the network with: ") as caught:
        export_onnx(graph, tmp_path / "hot.onnx")
    assert caught.value.node == "hot"


def _cli(*argv, cwd=ROOT):
    return subprocess.run([sys.executable, "-m", "netcanvas", *argv], cwd=cwd, capture_output=True, text=True,
                          timeout=600)


def test_cli_exports_a_project_and_refuses_an_invalid_one(tmp_path):
    proc = _cli("export", "examples/autoencoder.graph.yaml", "-o", str(tmp_path / "ae.onnx"))
    assert proc.returncode == 0, proc.stderr
    assert "onnxruntime agrees with torch" in proc.stdout and (tmp_path / "ae.onnx").exists()
    proc = _cli("export", "examples/autoencoder.graph.yaml", "-o", str(tmp_path / "fast.onnx"), "--no-verify")
    assert proc.returncode == 0 and "not verified" in proc.stdout
    bad = tmp_path / "bad.graph.yaml"
    bad.write_text((ROOT / "examples/lenet.graph.yaml").read_text().replace(
        "out_channels: 50, kernel: [5, 5]", "out_channels: 50, kernel: [50, 50]"))
    proc = _cli("export", str(bad), "-o", str(tmp_path / "bad.onnx"))
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "conv2" in proc.stderr
    assert not (tmp_path / "bad.onnx").exists()


@pytest.mark.parametrize("stem,network", [("lenet", "main"), ("dcgan", "discriminator"), ("dcgan", "generator"),
                                          ("lstm", "main"), ("mlp", "main"), ("dilated_segmentation", "main")])
def test_import_of_an_export_gives_the_same_network(stem, network, tmp_path):
    from graphcompiler.importers import import_onnx
    graph = gc.load(ROOT / f"examples/{stem}.graph.yaml").network(network)
    trained = inference_module(graph).state_dict()
    export_onnx(graph, tmp_path / "m.onnx", weights=trained)
    project, weights = import_onnx(tmp_path / "m.onnx")
    imported = project.network()

    def layers(g):
        return sorted(n.type for n in g.nodes() if n.type not in ("Input", "Dropout", "Identity")
                      and not g.spec(n.type).is_loss)

    assert layers(imported) == layers(graph)
    assert gc.cost(gc.infer_shapes(imported)).params == gc.cost(gc.infer_shapes(graph)).params
    original = inference_module(graph, trained)
    again = gc.compile(imported, inference=True).eval()
    again.load_state_dict(weights)
    args = example_inputs(original, 3)
    with torch.no_grad():
        expected, got = original(*args), again(*args)
    for name, value in zip(original.output_names, got.values()):
        assert torch.allclose(value, expected[name], atol=1e-5, rtol=1e-5), name


def test_cli_import_writes_a_project_and_reports_a_truncated_file_in_one_line(tmp_path):
    export_onnx(gc.load(ROOT / "examples/lenet.graph.yaml").network(), tmp_path / "l.onnx", verify_with=None)
    proc = _cli("import", str(tmp_path / "l.onnx"), "-o", str(tmp_path / "l.graph.yaml"))
    assert proc.returncode == 0, proc.stderr
    assert gc.check_file(tmp_path / "l.graph.yaml") == [] and (tmp_path / "l.weights.pt").exists()
    (tmp_path / "cut.onnx").write_bytes((tmp_path / "l.onnx").read_bytes()[:100])
    proc = _cli("import", str(tmp_path / "cut.onnx"), "-o", str(tmp_path / "cut.graph.yaml"))
    assert proc.returncode == 1 and "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert "cut.onnx" in proc.stderr
