"""Property tests: the compiler agrees with torch on random graphs, and never fails any other way."""

import torch
from hypothesis import given
from hypothesis import strategies as st

import graphcompiler as gc
from graphgen import arbitrary_graphs, valid_graphs

def _run(model: gc.GraphModule, batch: int = 2) -> dict[str, torch.Tensor]:
    inputs = {name: torch.rand((batch,) + shape) for name, shape in model.input_shapes.items()}
    with torch.no_grad():
        return model.eval()(**inputs)


@given(valid_graphs())
def test_inferred_shapes_and_cost_equal_what_torch_produces(graph):
    shapes = gc.infer_shapes(graph)
    assert gc.shape_errors(shapes) == []
    model = gc.compile(graph, outputs=[n.id for n in graph.nodes()])
    for node_id, tensor in _run(model).items():
        assert tuple(tensor.shape) == (2,) + shapes[node_id].outputs["y"], node_id
    assert gc.cost(shapes).params == sum(p.numel() for p in model.parameters())


@given(valid_graphs())
def test_random_graphs_survive_a_save_and_load_unchanged(graph):
    project = gc.Project(name="random", networks={"main": graph})
    text = gc.dumps(project)
    again = gc.loads(text)
    assert again.network() == graph
    assert gc.dumps(again) == text


@given(arbitrary_graphs())
def test_arbitrary_graphs_compile_and_run_or_raise_graph_error(graph):
    try:
        model = gc.compile(graph)
    except gc.GraphError:
        return
    _run(model)


@given(st.data())
def test_mangled_project_text_loads_or_raises_graph_error(data):
    text = (gc.dumps(gc.Project(name="m", networks={"main": data.draw(valid_graphs(max_steps=4))})))
    start = data.draw(st.integers(0, len(text)))
    end = data.draw(st.integers(start, min(len(text), start + 12)))
    mangled = text[:start] + data.draw(st.sampled_from(["", "[", "]", ":", "{", "-", "x", "9", "\n  ", "!!python/name:os.system "])) + text[end:]
    try:
        project = gc.loads(mangled)
    except gc.GraphError as exc:
        assert str(exc)
        return
    gc.validate(project)
