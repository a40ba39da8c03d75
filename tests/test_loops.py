"""Blocks with a loop: a step network run once per time step, carrying states (NNC's recurrent layers)."""

import pytest
import torch
from test_pytorch_source import run_standalone

import graphcompiler as gc
from graphcompiler.export.onnx_export import export_onnx

ELMAN = """format: netcanvas/1
name: elman
blocks:
  cell:
    params: {hidden: 8}
    output: tanh
    loop: {axis: 0, sequences: [x], states: {h: {source: tanh, initial: 0.5}}}
    nodes:
    - {id: x, type: Input, params: {shape: [4]}}
    - {id: h, type: Input, params: {shape: [$hidden]}}
    - {id: cat, type: Concatenate}
    - {id: fc, type: Affine, params: {out_features: $hidden}}
    - {id: tanh, type: Tanh}
    links:
    - x -> cat.x0
    - h -> cat.x1
    - cat -> fc
    - fc -> tanh
networks:
  main:
    nodes:
    - {id: seq, type: Input, params: {shape: [6, 4]}}
    - {id: rnn, type: cell}
    - {id: head, type: Affine, params: {out_features: 3}}
    links:
    - seq -> rnn
    - rnn -> head
"""


def _elman_by_hand(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, initial: float) -> torch.Tensor:
    h = torch.full((x.shape[0], weight.shape[0]), initial)
    steps = []
    for t in range(x.shape[1]):
        h = torch.tanh(torch.cat([x[:, t], h], 1) @ weight.T + bias)
        steps.append(h)
    return torch.stack(steps, 1)


def test_a_loop_block_equals_the_recurrence_written_by_hand():
    project = gc.loads(ELMAN)
    graph = project.network()
    shapes = gc.infer_shapes(graph)
    assert shapes["rnn"].outputs["y"] == (6, 8)
    model = gc.compile(graph)
    x = torch.randn(5, 6, 4)
    out = model.trace(seq=x)
    fc = model.rnn.step.fc
    assert torch.allclose(out["rnn"], _elman_by_hand(x, fc.weight, fc.bias, 0.5), atol=1e-6)
    assert tuple(out["head"].shape) == (5, 3)
    # Weights are counted once, multiply-adds once per step.
    total = gc.cost(shapes)
    assert total.params == 8 * 12 + 8 + 48 * 3 + 3
    assert total.macs == 6 * 8 * 12 + 48 * 3
    assert set(model.state_dict()) == {"rnn.step.fc.weight", "rnn.step.fc.bias", "head.weight", "head.bias"}


def test_a_loop_trains_through_time():
    model = gc.compile(gc.loads(ELMAN).network())
    model.rnn.step.fc.weight.grad = None
    model(seq=torch.randn(2, 6, 4))["head"].sum().backward()
    assert model.rnn.step.fc.weight.grad.abs().sum() > 0


def test_a_loop_block_saves_as_it_was_read():
    assert gc.dumps(gc.loads(ELMAN)) == ELMAN


def test_block_params_reach_the_step_and_its_states():
    text = ELMAN.replace("- {id: rnn, type: cell}", "- {id: rnn, type: cell, params: {hidden: 5}}")
    assert gc.infer_shapes(gc.loads(text).network())["rnn"].outputs["y"] == (6, 5)


def test_a_loop_over_a_middle_axis_keeps_the_others():
    text = (ELMAN.replace("axis: 0", "axis: 1").replace("shape: [4]}", "shape: [2]}")
            .replace("shape: [6, 4]", "shape: [2, 6]"))
    graph = gc.loads(text).network()
    model = gc.compile(graph)
    x = torch.randn(3, 2, 6)
    fc = model.rnn.step.fc
    expected = _elman_by_hand(x.transpose(1, 2), fc.weight, fc.bias, 0.5).transpose(1, 2)
    assert gc.infer_shapes(graph)["rnn"].outputs["y"] == (8, 6)  # each step's output, stacked on axis 1
    assert torch.allclose(model.trace(seq=x)["rnn"], expected, atol=1e-6)


def test_onnx_export_of_a_loop_runs_in_onnxruntime(tmp_path):
    report = export_onnx(gc.loads(ELMAN).network(), tmp_path / "elman.onnx")
    assert report.max_relative_error.keys() == {1, 3} and max(report.max_relative_error.values()) <= 1e-5


def test_pytorch_source_of_a_loop_runs_standalone_with_the_same_weights(tmp_path):
    graph = gc.loads(ELMAN).network()
    run_standalone(tmp_path, [("elman", graph, True, {"seq": torch.randn(3, 6, 4)}, ("eval",))])


@pytest.mark.parametrize("change, where, words", [
    ("source: tanh", "blocks.cell.loop.states.h.source", "no node 'tanho'"),
    ("sequences: [x]", "blocks.cell.loop.sequences", "'h' is not an Input of the block that is not a state"),
    ("states: {h:", "blocks.cell.loop.states.cat", "state 'cat' is not an Input of the block"),
    ("axis: 0", "blocks.cell.loop.axis", "expected a time axis >= 0"),
])
def test_a_bad_loop_names_its_field(change, where, words):
    bad = {"source: tanh": "source: tanho", "sequences: [x]": "sequences: [h]",
           "states: {h:": "states: {cat:", "axis: 0": "axis: -1"}[change]
    with pytest.raises(gc.GraphError) as caught:
        gc.loads(ELMAN.replace(change, bad))
    assert caught.value.where == where and words in caught.value.message


def test_a_state_whose_source_has_another_shape_is_a_shape_error_at_the_using_node():
    text = ELMAN.replace("shape: [$hidden]", "shape: [7]")
    info = gc.infer_shapes(gc.loads(text).network())["rnn"]
    assert "state 'h' is (7,), but its source 'tanh' gives (8,)" in info.error.message
