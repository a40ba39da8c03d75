"""The Graph model and shape inference on hand-made cases."""

import pytest
import torch

import graphcompiler as gc
from graphcompiler.compiler import GraphModule
from graphcompiler.graph import RESERVED_IDS


def _chain(*layers):
    graph = gc.Graph()
    graph.add_node("x", "Input", {"shape": [3, 16, 16]})
    last = "x"
    for node_id, layer_type, params in layers:
        graph.add_node(node_id, layer_type, params)
        graph.connect(last, node_id, dst_port="x0" if layer_type == "Add2" else None)
        last = node_id
    return graph


def test_links_refuse_cycles_taken_inputs_and_unknown_ports():
    graph = _chain(("s", "Add2", {}), ("a", "ReLU", {}), ("b", "ReLU", {}))
    with pytest.raises(gc.GraphError, match=r"link b -> s would make a cycle: s -> a -> b -> s"):
        graph.connect("b", "s", dst_port="x1")
    with pytest.raises(gc.GraphError, match="already fed by 'a'"):
        graph.connect("x", "b")
    graph.add_node("cat", "Concatenate")
    with pytest.raises(gc.GraphError, match="has input ports x0, x1; name one"):
        graph.connect("b", "cat")
    with pytest.raises(gc.GraphError, match="no input port 'x5'"):
        graph.connect("b", "cat", dst_port="x5")


def test_ids_are_unique_readable_and_never_shadow_the_module():
    graph = _chain(("conv1", "Convolution", {}))
    assert graph.unique_id("conv") == "conv2"
    assert graph.unique_id("pool") == "pool1"
    for bad in ("1conv", "a-b", "forward", "compute_loss", ""):
        with pytest.raises(gc.GraphError):
            graph.add_node(bad, "ReLU")
    with pytest.raises(gc.GraphError, match="duplicate node id 'conv1'"):
        graph.add_node("conv1", "ReLU")
    public = {name for name in dir(GraphModule) if not name.startswith("_")}
    assert public <= RESERVED_IDS


def test_unknown_layer_type_suggests_the_closest():
    with pytest.raises(gc.GraphError, match="did you mean 'Convolution'"):
        gc.Graph().add_node("c", "Convolutoin")


def test_shape_rules_follow_torch_formulas():
    graph = _chain(("c", "Convolution", {"out_channels": 8, "kernel": [3, 3], "stride": [2, 2], "pad": [1, 1],
                                         "dilation": [2, 2]}),
                   ("d", "Deconvolution", {"out_channels": 4, "kernel": [3, 3], "stride": [2, 2], "pad": [1, 1],
                                           "output_padding": [1, 1]}),
                   ("p", "AveragePooling", {"kernel": [3, 3], "stride": [2, 2], "pad": [1, 1]}),
                   ("u", "Unpooling", {"factor": [3, 2], "mode": "bilinear"}),
                   ("g", "GlobalAveragePooling", {}),
                   ("r", "Reshape", {"shape": [2, -1]}))
    shapes = gc.infer_shapes(graph)
    assert [shapes[n].outputs["y"] for n in "cdpugr"] == [(8, 7, 7), (4, 14, 14), (4, 7, 7), (4, 21, 14),
                                                         (4, 1, 1), (2, 2)]
    model = gc.compile(graph, outputs=list("cdpugr"))
    produced = model(torch.rand(2, 3, 16, 16))
    assert {k: tuple(v.shape[1:]) for k, v in produced.items()} == {n: shapes[n].outputs["y"] for n in "cdpugr"}


def test_errors_name_the_node_and_the_mismatch_and_block_what_follows():
    graph = _chain(("pool", "MaxPooling", {"kernel": [3, 3], "stride": [3, 3]}), ("after", "ReLU", {}))
    graph.add_node("cat", "Concatenate")
    graph.add_node("same", "ReLU")
    graph.connect("x", "same")
    graph.connect("pool", "cat", dst_port="x0")
    graph.connect("same", "cat", dst_port="x1")
    shapes = gc.infer_shapes(graph)
    (error,) = gc.shape_errors(shapes)
    assert str(error) == "cat (Concatenate): inputs differ in height: 5 vs 16 (x0 vs x1) (inputs: x0 3x5x5, x1 3x16x16)"
    graph.add_node("fc", "Affine")
    graph.add_node("tail", "ReLU")
    graph.connect("fc", "tail")
    shapes = gc.infer_shapes(graph)
    assert str(shapes["fc"].error) == "fc (Affine): input 'x' is not connected"
    assert shapes["tail"].blocked and shapes["tail"].error is None


def test_compiled_module_checks_its_inputs_before_running():
    graph = _chain(("c", "Convolution", {"out_channels": 2}))
    model = gc.compile(graph)
    with pytest.raises(gc.GraphError, match=r"input 'x' must be N x 3x16x16, got 2x3x8x8"):
        model(torch.rand(2, 3, 8, 8))
    with pytest.raises(gc.GraphError, match="missing input 'x'"):
        model()
    with pytest.raises(gc.GraphError, match="unknown input 'images'"):
        model(images=torch.rand(1, 3, 16, 16))


def test_loss_networks_train_and_inference_drops_the_label_input():
    graph = _chain(("fc", "Affine", {"out_features": 5}))
    graph.add_node("y", "Input", {"shape": [1]})
    graph.add_node("loss", "SoftmaxCrossEntropy")
    graph.connect("fc", "loss", dst_port="x")
    graph.connect("y", "loss", dst_port="target")
    model = gc.compile(graph)
    assert model.input_names == ["x", "y"] and model.loss_names == ["loss"]
    x, y = torch.rand(4, 3, 16, 16), torch.tensor([[0], [1], [2], [3]])
    loss = model.compute_loss(x=x, y=y)
    expected = torch.nn.functional.cross_entropy(model.fc(x), y.view(-1))
    assert torch.allclose(loss, expected)
    loss.backward()
    assert model.fc.weight.grad is not None
    deployed = gc.compile(graph, inference=True)
    assert deployed.input_names == ["x"] and deployed.output_names == ["fc"]


def test_inference_drops_the_label_side_of_a_loss():
    graph = _chain(("fc", "Affine", {"out_features": 4}))
    graph.add_node("y", "Input", {"shape": [3]})
    graph.add_node("fy", "Affine", {"out_features": 4})
    graph.add_node("loss", "SquaredError")
    graph.connect("y", "fy")
    graph.connect("fc", "loss", dst_port="x")
    graph.connect("fy", "loss", dst_port="target")
    deployed = gc.compile(graph, inference=True)
    assert deployed.input_names == ["x"] and deployed.output_names == ["fc"]
    assert not deployed.training


def test_every_layer_states_its_shape_rule_and_the_reference_is_current(root):
    from graphcompiler.layers.docs import markdown
    assert [t for t, spec in gc.REGISTRY.items() if not spec.shape_doc or not spec.doc] == []
    assert (root / "docs/layers.md").read_text() == markdown()
