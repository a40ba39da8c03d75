"""int8 export: LeNet trained on digits keeps its accuracy at a quarter of the file; kept layers stay float."""

import time

import onnx
import pytest
import torch

import graphcompiler as gc
from conftest import ROOT
from netcanvas.cli import main
from runtime.example_data import write_dataset
from runtime.int8 import quantize_run
from runtime.training import train

EPOCHS = 10
"""LeNet's validation accuracy on digits reached 97.8 % after 10 epochs (97.2 % after 8) in about 11 s."""


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A LeNet run on the 28 x 28 digits, trained on one thread (two gain nothing on a shared two-core machine)."""
    root = tmp_path_factory.mktemp("int8")
    write_dataset("digits", root / "data/digits-28", size=28)
    project = gc.load(ROOT / "examples/lenet.graph.yaml")
    project.sections["training"]["epochs"] = EPOCHS
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        started = time.perf_counter()
        result = train(project, root / "run", base_dir=root)
        print(f"LeNet, {EPOCHS} epochs: validation accuracy {result['accuracy']:.4f} in "
              f"{time.perf_counter() - started:.1f} s")
        yield root / "run"
    finally:
        torch.set_num_threads(threads)


def _producers(model: onnx.ModelProto) -> dict[str, onnx.NodeProto]:
    return {output: node for node in model.graph.node for output in node.output}


def _weight_source(model: onnx.ModelProto, op_name: str) -> str:
    """What feeds the weight input of the ONNX node ``op_name``: 'float' initializer or the producing op type."""
    node = next(n for n in model.graph.node if n.name == op_name)
    weight = node.input[1]
    initializers = {t.name: t for t in model.graph.initializer}
    if weight in initializers:
        assert initializers[weight].data_type == onnx.TensorProto.FLOAT
        return "float"
    return _producers(model)[weight].op_type


def test_int8_lenet_scores_within_a_point_of_float_in_a_third_of_the_file(run, tmp_path):
    report = quantize_run(run, tmp_path / "lenet-int8.onnx")
    print(report.summary())
    assert report.metric == "accuracy" and report.validation_rows == 360 and report.calibration_rows == 256
    assert report.float_score >= 0.97
    assert abs(report.int8_score - report.float_score) <= 0.01
    assert report.ratio <= 0.35
    model = onnx.load(str(report.path))
    for op in ("/conv1/Conv", "/conv2/Conv", "/ip1/Gemm", "/ip2/Gemm"):
        assert _weight_source(model, op) == "DequantizeLinear", op
    assert {"QuantizeLinear", "DequantizeLinear"} <= {n.op_type for n in model.graph.node}
    assert any(p.key == "netcanvas.int8" for p in model.metadata_props)
    assert any(p.key == "netcanvas.classes" for p in model.metadata_props)


def test_cli_keeps_the_named_layers_float_and_reports_both_scores(run, tmp_path, capsys):
    output = tmp_path / "kept.onnx"
    assert main(["export", str(run), "--int8", "--int8-layers", "conv1, ip2", "-o", str(output)]) == 0
    printed = capsys.readouterr().out
    assert "kept float: conv1, ip2" in printed
    assert "validation accuracy (360 rows, onnxruntime): float 0." in printed and ", int8 0." in printed
    assert "size: float 1.73 MB, int8 " in printed
    model = onnx.load(str(output))
    for op in ("/conv1/Conv", "/ip2/Gemm"):
        assert _weight_source(model, op) == "float", op
    kept = {"conv1.weight", "conv1.bias", "ip2.weight", "ip2.bias"}
    assert not [n.name for n in model.graph.node
                if n.op_type in ("QuantizeLinear", "DequantizeLinear") and kept & {*n.input, *n.output}]
    assert _weight_source(model, "/conv2/Conv") == "DequantizeLinear"


def test_bad_input_is_one_clear_error(run, tmp_path, capsys):
    def error(*argv) -> str:
        assert main(["export", *argv, "-o", str(tmp_path / "out.onnx")]) == 1
        lines = capsys.readouterr().err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), lines
        assert not (tmp_path / "out.onnx").exists()
        return lines[0]

    assert "names no weights file" in error(str(ROOT / "examples/lenet.graph.yaml"), "--int8")
    assert "the network has no node 'conv9' (its nodes: x, conv1," in error(str(run), "--int8", "--int8-layers",
                                                                           "conv1,conv9")
    assert "'loss' has no operator of its own" in error(str(run), "--int8", "--int8-layers", "loss")
    assert "add --int8" in error(str(run), "--int8-layers", "conv1")
