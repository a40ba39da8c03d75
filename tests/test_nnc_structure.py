"""NNC structures beyond one network of layers: two recurrent loops in one network, read backwards."""

import pytest
import torch

import graphcompiler as gc
from conftest import ROOT
from graphcompiler.importers import import_sdcproj

SAMPLES = ROOT.parent / "shared" / "nnc-samples"
pytestmark = pytest.mark.skipif(not SAMPLES.is_dir(), reason=f"NNC's samples are not at {SAMPLES}")


def _lstm_params(inputs: int, hidden: int) -> int:
    """NNC's LSTM drawn as layers: four Affines over [input, state] with a bias each."""
    return 4 * ((inputs + hidden) * hidden + hidden)


def test_an_lstm_auto_encoder_has_its_two_loops_as_two_loop_blocks():
    project = import_sdcproj(SAMPLES / "LSTM_auto_encoder.sdcproj").project
    assert gc.validate(project) == []
    graph = project.network()
    assert [n.type for n in graph.nodes() if n.type in project.blocks] == ["Main_Recurrent", "Main_Recurrent_2"]
    assert all(project.blocks[b].loop is not None for b in ("Main_Recurrent", "Main_Recurrent_2"))
    shapes = gc.infer_shapes(graph)
    assert shapes["Recurrent"].outputs["y"] == (1, 28, 256) and shapes["Recurrent_2"].outputs["y"] == (1, 28, 28)
    cost = gc.cost(shapes)
    assert cost.per_node["Recurrent"][0] == _lstm_params(28, 256)  # the encoder: 28 inputs, 256 units
    assert cost.per_node["Recurrent_2"][0] == _lstm_params(256, 28)  # the decoder: 256 inputs, 28 units
    model = gc.compile(graph)
    x = torch.rand(3, 1, 28, 28)
    trace = model.trace(Input=x)
    assert torch.equal(trace["Flip"], torch.flip(x, (2,)))  # the encoder reads the rows from the last
    assert trace["Sigmoid_4"].shape == (3, 1, 28, 28)
