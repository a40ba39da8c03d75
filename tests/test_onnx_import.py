"""ONNX import: round trips through torch's exporter, hand-built models against onnxruntime, errors."""

import collections
import warnings

import numpy as np
import onnx
import onnxruntime
import pytest
import torch
from conftest import ROOT
from onnx import TensorProto, helper, numpy_helper

import graphcompiler as gc
from graphcompiler.importers import import_onnx, import_onnx_file
from netcanvas.cli import main

# Every layer the importer maps, in one network: grouped and depthwise convolution, the
# upsampling modes, pooling with padding and ceil_mode, Split (exported as SplitToSequence),
# a Flatten that feeds something other than Affine, and the element-wise layers.
LAYERS = """
format: netcanvas/1
name: layers
networks:
  main:
    nodes:
    - {id: x, type: Input, params: {shape: [4, 8, 8]}}
    - {id: conv, type: Convolution, params: {out_channels: 8, groups: 2, pad: [1, 1]}}
    - {id: dw, type: DepthwiseConvolution, params: {multiplier: 2, pad: [1, 1], stride: [2, 2]}}
    - {id: bn, type: BatchNormalization}
    - {id: prelu, type: PReLU}
    - {id: up, type: Unpooling}
    - {id: upb, type: Unpooling, params: {factor: [2, 3], mode: bilinear}}
    - {id: avg, type: AveragePooling, params: {kernel: [3, 3], pad: [1, 1], including_pad: false}}
    - {id: mp, type: MaxPooling, params: {kernel: [3, 3], stride: [2, 3], ceil_mode: true}}
    - {id: cat, type: Concatenate}
    - {id: elu, type: ELU, params: {alpha: 0.5}}
    - {id: selu, type: SELU}
    - {id: sp, type: Softplus}
    - {id: ht, type: HardTanh, params: {min_value: -0.5, max_value: 2.0}}
    - {id: sub, type: Sub2}
    - {id: mul, type: Mul2}
    - {id: split, type: Split}
    - {id: add, type: Add2}
    - {id: tr, type: Transpose, params: {axes: [0, 2, 1]}}
    - {id: sl, type: Slice, params: {axis: 1, start: 1, stop: 7, step: 2}}
    - {id: gap, type: GlobalAveragePooling}
    - {id: gmp, type: GlobalMaxPooling}
    - {id: rs, type: Reshape, params: {shape: [4, -1]}}
    - {id: sm, type: Softmax, params: {axis: 1}}
    - {id: lsm, type: LogSoftmax}
    - {id: fl, type: Flatten}
    - {id: bn1, type: BatchNormalization}
    - {id: fc, type: Affine, params: {out_features: 6}}
    - {id: lr, type: LeakyReLU, params: {alpha: 0.2}}
    - {id: drop, type: Dropout}
    - {id: sig, type: Sigmoid}
    - {id: tanh, type: Tanh}
    links:
    - x -> conv
    - conv -> dw
    - dw -> bn
    - bn -> prelu
    - prelu -> up
    - prelu -> upb
    - up -> avg
    - upb -> mp
    - avg -> cat.x0
    - mp -> cat.x1
    - cat -> elu
    - elu -> selu
    - selu -> sp
    - sp -> ht
    - ht -> sub.x0
    - elu -> sub.x1
    - sub -> mul.x0
    - ht -> mul.x1
    - mul -> split
    - split.y0 -> add.x0
    - split.y1 -> add.x1
    - add -> tr
    - tr -> sl
    - sl -> gap
    - sl -> gmp
    - gmp -> rs
    - rs -> sm
    - sm -> lsm
    - gap -> fl
    - fl -> bn1
    - bn1 -> fc
    - fc -> lr
    - lr -> drop
    - drop -> sig
    - lr -> tanh
"""

# Stacked, bidirectional, sequence and last-state recurrent layers feeding one another.
RECURRENT = """
format: netcanvas/1
name: recurrent
networks:
  main:
    nodes:
    - {id: x, type: Input, params: {shape: [7, 5]}}
    - {id: gru, type: GRU, params: {hidden_size: 6, num_layers: 2, bidirectional: true, output: sequence}}
    - {id: lstm, type: LSTM, params: {hidden_size: 4, output: sequence}}
    - {id: rnn, type: RNN, params: {hidden_size: 3, nonlinearity: relu, num_layers: 2}}
    - {id: lstm2, type: LSTM, params: {hidden_size: 5, num_layers: 2, bidirectional: true}}
    - {id: gru2, type: GRU, params: {hidden_size: 3}}
    - {id: fc, type: Affine, params: {out_features: 2}}
    links:
    - x -> gru
    - gru -> lstm
    - lstm -> rnn
    - x -> lstm2
    - lstm -> gru2
    - gru2 -> fc
"""


def _example(name: str, network: str | None = None) -> gc.Graph:
    graph = gc.load(ROOT / "examples" / f"{name}.graph.yaml").network(network)
    if name == "unet":  # a small input keeps the test fast; the weights are the same
        graph.node("x").params["shape"] = graph.node("y").params["shape"] = [1, 32, 32]
    return graph


NETWORKS = {
    "lenet": lambda: _example("lenet"),
    "mlp": lambda: _example("mlp"),
    "lstm": lambda: _example("lstm"),
    "autoencoder": lambda: _example("autoencoder"),
    "dilated_segmentation": lambda: _example("dilated_segmentation"),
    "dcgan_generator": lambda: _example("dcgan", "generator"),
    "dcgan_discriminator": lambda: _example("dcgan", "discriminator"),
    "unet": lambda: _example("unet"),
    "layers": lambda: gc.loads(LAYERS).network(),
    "recurrent": lambda: gc.loads(RECURRENT).network(),
}


class _Outputs(torch.nn.Module):
    """A compiled network returning a tuple in ``output_names`` order, as torch.onnx.export wants."""

    def __init__(self, module: gc.GraphModule):
        super().__init__()
        self.net = module

    def forward(self, *inputs):
        out = self.net(*inputs)
        return tuple(out[name] for name in self.net.output_names)


def _export(graph: gc.Graph, path, **options) -> tuple[gc.GraphModule, tuple[torch.Tensor, ...]]:
    module = gc.compile(graph, inference=True)
    args = tuple(torch.randn(3, *module.input_shapes[n]) for n in module.input_names)
    with warnings.catch_warnings():  # the legacy exporter's deprecation and tracer warnings
        warnings.simplefilter("ignore")
        torch.onnx.export(_Outputs(module).eval(), args, str(path), dynamo=False, opset_version=17,
                          input_names=module.input_names, output_names=module.output_names,
                          dynamic_axes={n: {0: "N"} for n in module.input_names + module.output_names},
                          **options)
    return module, args


def _run_imported(path, inputs: dict[str, torch.Tensor]) -> tuple[gc.Graph, dict[str, torch.Tensor]]:
    project, state = import_onnx(path)
    graph = project.network()
    module = gc.compile(graph, inference=True)
    module.load_state_dict(state, strict=True)
    with torch.no_grad():
        return graph, module(**inputs)


def _assert_close(got: torch.Tensor, want: torch.Tensor) -> None:
    assert got.shape == want.shape
    assert float((got - want).abs().max()) <= 1e-5 * max(1.0, float(want.abs().max()))


def _layer_types(graph: gc.Graph) -> collections.Counter:
    # Input and losses are not part of the exported network; in eval mode torch's exporter
    # drops Dropout and Identity (they compute nothing).
    return collections.Counter(n.type for n in graph.nodes() if n.type not in ("Input", "Dropout", "Identity")
                               and not graph.spec(n.type).is_loss)


@pytest.mark.parametrize("name", NETWORKS)
def test_round_trip_keeps_layers_shapes_weights_and_outputs(name, tmp_path):
    graph = NETWORKS[name]()
    # Constant folding off: in eval mode it fuses Conv + BatchNormalization into one Conv,
    # which computes the same but is another network (see the next test).
    module, args = _export(graph, tmp_path / "net.onnx", do_constant_folding=False)
    imported, outputs = _run_imported(tmp_path / "net.onnx", dict(zip(module.input_names, args)))

    assert _layer_types(imported) == _layer_types(graph)
    assert gc.cost(gc.infer_shapes(imported)).params == gc.cost(gc.infer_shapes(graph)).params
    kept = {n.id for n in graph.nodes() if _layer_types(graph)[n.type]} | set(module.input_names)
    assert {n.id for n in imported.nodes()} == kept  # ids come back from the module scopes
    shapes, imported_shapes = gc.infer_shapes(graph), gc.infer_shapes(imported)
    with torch.no_grad():
        expected = module(*args)
    assert set(outputs) == set(expected)
    for name_, want in expected.items():
        assert imported_shapes[name_].outputs == shapes[name_].outputs
        _assert_close(outputs[name_], want)


@pytest.mark.parametrize("name", ["dcgan_discriminator", "lstm", "layers"])
def test_default_export_with_folded_constants_imports(name, tmp_path):
    graph = NETWORKS[name]()
    module, args = _export(graph, tmp_path / "net.onnx")
    _, outputs = _run_imported(tmp_path / "net.onnx", dict(zip(module.input_names, args)))
    with torch.no_grad():
        for name_, want in module(*args).items():
            _assert_close(outputs[name_], want)


def test_import_onnx_file_writes_project_and_weights(tmp_path):
    module, args = _export(NETWORKS["lenet"](), tmp_path / "lenet.onnx")
    weights = import_onnx_file(tmp_path / "lenet.onnx", tmp_path / "lenet.graph.yaml")
    assert weights == tmp_path / "lenet.weights.pt"
    project = gc.load(tmp_path / "lenet.graph.yaml")
    graph = project.network("main")
    assert all(node.pos is not None for node in graph.nodes())  # laid out for the canvas
    assert graph.node("x").params == {"shape": [1, 28, 28]}
    imported = gc.compile(graph, inference=True)
    imported.load_state_dict(torch.load(weights, weights_only=True), strict=True)
    with torch.no_grad():
        _assert_close(imported(args[0])["ip2"], module(args[0])["ip2"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lenet.graph.yaml", "lenet.onnx", "lenet.weights.pt"]


def _model(nodes, inputs, outputs, initializers, path) -> None:
    graph = helper.make_graph(nodes, "hand", inputs, outputs,
                              [numpy_helper.from_array(np.asarray(v, np.float32), k) for k, v in initializers.items()])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))


def test_hand_built_gemm_matmul_add_match_onnxruntime(tmp_path):
    rng = np.random.default_rng(0)
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 2, 3, 3])
    probs = helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["N", 3])
    scaled = helper.make_tensor_value_info("scaled", TensorProto.FLOAT, ["N", 5])
    nodes = [
        helper.make_node("Flatten", ["x"], ["flat"], name="flatten"),
        helper.make_node("Gemm", ["flat", "w1", "b1"], ["h"], name="gemm1", transB=1),
        helper.make_node("Relu", ["h"], ["r"], name="relu1"),
        helper.make_node("MatMul", ["r", "w2"], ["m"], name="matmul2"),
        helper.make_node("Add", ["m", "b2"], ["logits"], name="add2"),
        helper.make_node("Softmax", ["logits"], ["probs"], name="softmax", axis=1),
        helper.make_node("Gemm", ["r", "w3", "b3"], ["g3"], name="gemm3", alpha=0.5, beta=2.0),
        helper.make_node("Dropout", ["g3", "ratio"], ["scaled"], name="drop"),
    ]
    weights = {"w1": rng.normal(size=(8, 18)), "b1": rng.normal(size=8), "w2": rng.normal(size=(8, 3)),
               "b2": rng.normal(size=3), "w3": rng.normal(size=(8, 5)), "b3": rng.normal(size=(1, 5)), "ratio": 0.25}
    _model(nodes, [x], [probs, scaled], weights, tmp_path / "hand.onnx")

    inputs = rng.normal(size=(4, 2, 3, 3)).astype(np.float32)
    want = onnxruntime.InferenceSession(str(tmp_path / "hand.onnx")).run(["probs", "scaled"], {"x": inputs})
    graph, got = _run_imported(tmp_path / "hand.onnx", {"x": torch.from_numpy(inputs)})
    assert {n.id: n.type for n in graph.nodes()} == {
        "x": "Input", "gemm1": "Affine", "relu1": "ReLU", "matmul2": "Affine", "probs": "Softmax",
        "gemm3": "Affine", "scaled": "Dropout"}
    assert graph.node("scaled").params == {"p": 0.25}
    for name, value in zip(["probs", "scaled"], want):
        _assert_close(got[name], torch.from_numpy(value))


def test_same_padding_that_pads_unevenly_becomes_a_pad_layer(tmp_path):
    """TensorFlow's SAME with stride 2 on an even size pads one more after than before."""
    rng = np.random.default_rng(0)
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 2, 8, 6])
    outs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in ("upper", "lower")]
    nodes = [helper.make_node("Conv", ["x", "w"], ["upper"], name="upper", auto_pad="SAME_UPPER", strides=[2, 2]),
             helper.make_node("Conv", ["x", "w"], ["lower"], name="lower", auto_pad="SAME_LOWER", strides=[2, 2])]
    _model(nodes, [x], outs, {"w": rng.normal(size=(3, 2, 3, 3))}, tmp_path / "same.onnx")
    inputs = rng.normal(size=(2, 2, 8, 6)).astype(np.float32)
    want = onnxruntime.InferenceSession(str(tmp_path / "same.onnx")).run(["upper", "lower"], {"x": inputs})
    graph, got = _run_imported(tmp_path / "same.onnx", {"x": torch.from_numpy(inputs)})
    assert sorted(n.params["width"] for n in graph.nodes() if n.type == "Pad") == [[0, 1, 0, 1], [1, 0, 1, 0]]
    for name, value in zip(["upper", "lower"], want):
        _assert_close(got[name], torch.from_numpy(value))


def test_unsupported_operators_are_listed_in_one_error(tmp_path):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])
    outs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in ("a", "b", "c")]
    image = helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 1, 4, 4])
    outs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in ("a", "b", "c", "d", "e")]
    nodes = [
        helper.make_node("Einsum", ["x", "w"], ["a"], name="/foo/Einsum", equation="ni,ij->nj"),
        helper.make_node("TopK", ["x", "k"], ["b", "indices"], name="/bar/TopK"),
        helper.make_node("Relu", ["b"], ["c"], name="/after/Relu"),  # fed by TopK of unknown shape: not tried
        helper.make_node("MaxPool", ["image"], ["d"], name="/baz/MaxPool", kernel_shape=[3, 3], pads=[0, 0, 1, 1]),
        helper.make_node("Sigmoid", ["x"], ["e"], name="/ok/Sigmoid"),
    ]
    weights = {"w": np.ones((4, 4)), "k": np.array([2])}
    _model(nodes, [x, image], outs, weights, tmp_path / "bad.onnx")
    with pytest.raises(gc.GraphError) as info:
        import_onnx(tmp_path / "bad.onnx")
    message = str(info.value)
    assert message.startswith(f"{tmp_path / 'bad.onnx'}: ONNX nodes that cannot map: 3: Einsum x1 (/foo/Einsum), "
                              "TopK x1 (/bar/TopK), MaxPool x1 (/baz/MaxPool: asymmetric pads [0, 0, 1, 1]); "
                              "nodes that map: 1 (and 1 after them that could not be tried); "
                              "netcanvas can import: ")
    assert "Sigmoid" in message.split("netcanvas can import:")[1]


class _TorchWritten(torch.nn.Module):
    """Torch idioms that no netcanvas network exports: a residual block in a Sequential, h_n[-1]
    and output[:, -1] of a batch-first GRU, a functional softmax and view(N, -1)."""

    def __init__(self):
        super().__init__()
        self.stem = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.BatchNorm2d(4), torch.nn.ReLU())
        self.block = torch.nn.Sequential(torch.nn.Conv2d(4, 4, 3, padding=1), torch.nn.ReLU())
        self.gru = torch.nn.GRU(5, 6, num_layers=2, batch_first=True)
        self.fc = torch.nn.Linear(4 * 6 * 5 + 6, 3)

    def forward(self, image, sequence):
        x = self.stem(image)
        x = self.block(x) + x
        out, h = self.gru(sequence)
        features = torch.cat([x.view(x.size(0), -1), out[:, -1] + h[-1]], dim=1)
        return torch.softmax(self.fc(features), dim=1)


def test_torch_written_model_imports(tmp_path):
    model, args = _TorchWritten().eval(), (torch.randn(2, 1, 6, 5), torch.randn(2, 7, 5))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, args, str(tmp_path / "m.onnx"), dynamo=False, opset_version=17,
                          input_names=["image", "sequence"], output_names=["probs"],
                          dynamic_axes={"image": {0: "N"}, "sequence": {0: "N"}, "probs": {0: "N"}})
    graph, got = _run_imported(tmp_path / "m.onnx", {"image": args[0], "sequence": args[1]})
    with torch.no_grad():
        _assert_close(got["probs"], model(*args))
    ids = {n.id: n.type for n in graph.nodes()}
    assert ids["stem_0"] == "Convolution" and ids["block_1"] == "ReLU" and ids["flatten"] == "Flatten"
    assert ids["gru"] == "GRU" and graph.node("gru").params == {"hidden_size": 6, "num_layers": 2}


def test_truncated_file_is_one_line_naming_the_file(tmp_path):
    _export(NETWORKS["mlp"](), tmp_path / "mlp.onnx")
    truncated = tmp_path / "truncated.onnx"
    truncated.write_bytes((tmp_path / "mlp.onnx").read_bytes()[:100])
    with pytest.raises(gc.GraphError) as info:
        import_onnx(truncated)
    assert str(truncated) in str(info.value) and "\n" not in str(info.value)
    assert "not a readable ONNX model" in str(info.value)


# --- issue 18: operators of deployed models, and errors that list every unmappable node -------------


def test_unmappable_nodes_after_unmappable_ones_are_listed_too(tmp_path):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])
    outs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in ("a", "b", "c")]
    nodes = [  # Einsum -> Sin -> Relu -> TopK -> Asin: each unmappable one stands in with ONNX's shape
        helper.make_node("Einsum", ["x", "w"], ["e"], name="/one/Einsum", equation="ni,ij->nj"),
        helper.make_node("Sin", ["e"], ["sin"], name="/two/Sin"),
        helper.make_node("Relu", ["sin"], ["r"], name="/three/Relu"),
        helper.make_node("TopK", ["r", "k"], ["t", "indices"], name="/four/TopK"),
        helper.make_node("Asin", ["t"], ["a"], name="/five/Asin"),
        # NonZero's shape is unknown: Cos after it is still named, the Relu after that cannot be tried.
        helper.make_node("NonZero", ["x"], ["nz"], name="/six/NonZero"),
        helper.make_node("Cos", ["nz"], ["cos"], name="/seven/Cos"),
        helper.make_node("Relu", ["cos"], ["b"], name="/eight/Relu"),
        helper.make_node("Sin", ["x"], ["c"], name="/nine/Sin"),
    ]
    _model(nodes, [x], outs, {"w": np.ones((4, 4)), "k": np.array([2])}, tmp_path / "bad.onnx")
    with pytest.raises(gc.GraphError) as info:
        import_onnx(tmp_path / "bad.onnx")
    listed, mapped = str(info.value).split(": ", 1)[1].split("; ")[:2]
    assert listed == ("ONNX nodes that cannot map: 7: Sin x2 (/two/Sin, /nine/Sin), Einsum x1 (/one/Einsum), "
                      "TopK x1 (/four/TopK), Asin x1 (/five/Asin), NonZero x1 (/six/NonZero), Cos x1 (/seven/Cos)")
    assert mapped == "nodes that map: 1 (and 1 after them that could not be tried)"


def _export_torch(model: torch.nn.Module, shape: tuple, path, dynamo: bool) -> torch.Tensor:
    """Export ``model`` for inputs of ``shape`` (batch first, dynamic); return a sample input."""
    x = torch.randn(*shape)
    with warnings.catch_warnings():  # the exporters' deprecation and tracer warnings
        warnings.simplefilter("ignore")
        if dynamo:
            pytest.importorskip("onnxscript", reason="torch's dynamo exporter needs onnxscript")
            torch.onnx.export(model, (x,), str(path), dynamo=True, input_names=["x"], output_names=["y"],
                              dynamic_shapes={"x": {0: torch.export.Dim("N")}}, verbose=False)
        else:
            torch.onnx.export(model, (x,), str(path), dynamo=False, opset_version=17, do_constant_folding=False,
                              input_names=["x"], output_names=["y"], dynamic_axes={"x": {0: "N"}, "y": {0: "N"}})
    return x


def _onnxruntime(path, x: torch.Tensor) -> np.ndarray:
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]


def _imports_like_torch(model: torch.nn.Module, shape: tuple, path, dynamo: bool) -> gc.Graph:
    """Export, import, compile with the imported weights: the outputs equal torch's within 1e-5 relative.
    Then as a user would: `netcanvas import`, `netcanvas export` of that project, and onnxruntime gives
    the original file's outputs."""
    model = model.eval()
    x = _export_torch(model, shape, path, dynamo)
    graph, got = _run_imported(path, {"x": x})
    with torch.no_grad():
        _assert_close(got["y"], model(x))
    project, again = path.with_suffix(".graph.yaml"), path.with_name(f"{path.stem}-again.onnx")
    assert main(["import", str(path), "-o", str(project)]) == 0
    assert main(["export", str(project), "-o", str(again)]) == 0
    x = torch.randn(3, *shape[1:])
    _assert_close(torch.from_numpy(_onnxruntime(again, x)), torch.from_numpy(_onnxruntime(path, x)))
    return graph


class _SqueezeExcitation(torch.nn.Module):
    """torchvision's SqueezeExcitation after a convolution: a per-channel gate from the pooled map."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 8, 3, padding=1)
        self.fc1, self.fc2 = torch.nn.Conv2d(8, 4, 1), torch.nn.Conv2d(4, 8, 1)

    def forward(self, x):
        x = self.conv(x)
        scale = torch.sigmoid(self.fc2(torch.relu(self.fc1(torch.nn.functional.adaptive_avg_pool2d(x, 1)))))
        return (x * scale + scale) / (scale + 1.0) - scale


@pytest.mark.parametrize("dynamo", [False, True])
def test_squeeze_and_excitation_imports(dynamo, tmp_path):
    graph = _imports_like_torch(_SqueezeExcitation(), (2, 3, 6, 5), tmp_path / "se.onnx", dynamo)
    assert {"Mul2", "Add2", "Div2", "Sub2", "AddScalar"} <= {n.type for n in graph.nodes()}


class _Reductions(torch.nn.Module):
    """Global pooling written as reductions (ShuffleNet's x.mean([2, 3])), and reductions over other axes."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 6, 3, padding=1)
        self.fc = torch.nn.Linear(6, 4)

    def forward(self, x):
        x = self.conv(x)
        pooled = x.mean([2, 3]) + x.amax([2, 3], keepdim=True).flatten(1) + x.mean([-1, -2], keepdim=True).flatten(1)
        other = x.sum(1).flatten(1).mean(1, keepdim=True) + x.amax(3).mean(2)[:, :4]
        return self.fc(pooled) * other


@pytest.mark.parametrize("dynamo", [False, True])
def test_reductions_import_as_global_pooling_or_reduction_layers(dynamo, tmp_path):
    graph = _imports_like_torch(_Reductions(), (2, 3, 5, 4), tmp_path / "reduce.onnx", dynamo)
    types = collections.Counter(n.type for n in graph.nodes())
    assert types["GlobalAveragePooling"] == 2 and types["GlobalMaxPooling"] == 1
    assert types["Sum"] == 1 and types["Mean"] == 2 and types["Max"] == 1


def test_opset_18_reduce_mean_with_axes_input_is_global_pooling(tmp_path):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 4, 5])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3, 1, 1])
    axes = numpy_helper.from_array(np.array([-2, -1], np.int64), "axes")
    nodes = [helper.make_node("ReduceMean", ["x", "axes"], ["y"], name="/pool/ReduceMean", keepdims=1)]
    graph = helper.make_graph(nodes, "opset18", [x], [y], [axes])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]), str(tmp_path / "m.onnx"))
    inputs = np.random.default_rng(0).normal(size=(2, 3, 4, 5)).astype(np.float32)
    (want,) = onnxruntime.InferenceSession(str(tmp_path / "m.onnx")).run(["y"], {"x": inputs})
    graph, got = _run_imported(tmp_path / "m.onnx", {"x": torch.from_numpy(inputs)})
    assert graph.node("y").type == "GlobalAveragePooling"
    _assert_close(got["y"], torch.from_numpy(want))


class _InvertedResidual(torch.nn.Module):
    """MobileNetV3's inverted residual: expand, depthwise, squeeze-and-excitation gated by HardSigmoid,
    HardSwish (the module, and written out as x * hardsigmoid(x)), project, add."""

    def __init__(self):
        super().__init__()
        self.expand = torch.nn.Sequential(torch.nn.Conv2d(4, 8, 1), torch.nn.BatchNorm2d(8), torch.nn.Hardswish())
        self.depthwise = torch.nn.Sequential(torch.nn.Conv2d(8, 8, 3, padding=1, groups=8), torch.nn.BatchNorm2d(8))
        self.fc1, self.fc2 = torch.nn.Conv2d(8, 4, 1), torch.nn.Conv2d(4, 8, 1)
        self.project = torch.nn.Conv2d(8, 4, 1)

    def forward(self, x):
        h = self.depthwise(self.expand(x))
        h = h * torch.nn.functional.hardsigmoid(h)
        scale = torch.nn.functional.hardsigmoid(self.fc2(torch.relu(self.fc1(h.mean([2, 3], keepdim=True)))))
        return x + self.project(h * scale)


@pytest.mark.parametrize("dynamo", [False, True])
def test_mobilenet_v3_block_imports_with_hard_swish_and_hard_sigmoid(dynamo, tmp_path):
    model = _InvertedResidual()
    for bn in (model.expand[1], model.depthwise[1]):  # running statistics that are not the identity
        bn.running_mean.uniform_(-1, 1), bn.running_var.uniform_(0.5, 2)
    graph = _imports_like_torch(model, (2, 4, 6, 5), tmp_path / "mbv3.onnx", dynamo)
    types = collections.Counter(n.type for n in graph.nodes())
    assert types["HardSwish"] == 2 and types["HardSigmoid"] == 1 and types["GlobalAveragePooling"] == 1


class _GeluMLP(torch.nn.Module):
    """A transformer MLP: nn.GELU (torch writes it with Erf) and the same formula written out in another order."""

    def __init__(self):
        super().__init__()
        self.fc1, self.fc2, self.act = torch.nn.Linear(6, 12), torch.nn.Linear(12, 6), torch.nn.GELU()

    def forward(self, x):
        h = self.act(self.fc1(x))
        h = h * 0.5 * (1.0 + torch.erf(h / 1.4142135623730951))
        return self.fc2(h)


@pytest.mark.parametrize("dynamo", [False, True])
def test_gelu_written_with_erf_imports_as_one_gelu(dynamo, tmp_path):
    graph = _imports_like_torch(_GeluMLP(), (3, 6), tmp_path / "gelu.onnx", dynamo)
    assert sorted(n.type for n in graph.nodes()) == ["Affine", "Affine", "GELU", "GELU", "Input"]


class _SegmentationHead(torch.nn.Module):
    """An FCN head: features at a quarter of the size, resized to the input's size (a `sizes` input), and
    a nearest upsampling by a scale factor (a `scales` input)."""

    def __init__(self):
        super().__init__()
        self.backbone = torch.nn.Conv2d(3, 4, 3, stride=4, padding=1)
        self.classifier = torch.nn.Conv2d(4, 2, 1)

    def forward(self, x):
        features = self.backbone(x)
        out = torch.nn.functional.interpolate(self.classifier(features), size=x.shape[-2:], mode="bilinear",
                                              align_corners=False)
        return out + torch.nn.functional.interpolate(features[:, :2], scale_factor=4.0, mode="nearest")


@pytest.mark.parametrize("dynamo", [False, True])
def test_fcn_head_resizes_with_sizes_and_scales(dynamo, tmp_path):
    graph = _imports_like_torch(_SegmentationHead(), (2, 3, 16, 12), tmp_path / "fcn.onnx", dynamo)
    ups = {n.params.get("mode", "nearest"): n.params["factor"] for n in graph.nodes() if n.type == "Unpooling"}
    assert ups == {"bilinear": [4, 4], "nearest": [4, 4]}


def test_erf_outside_gelu_and_keras_hard_sigmoid_say_why(tmp_path):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])
    outs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in ("a", "b")]
    nodes = [helper.make_node("Erf", ["x"], ["a"], name="/erf/Erf"),
             helper.make_node("HardSigmoid", ["x"], ["b"], name="/gate/HardSigmoid")]  # ONNX's default alpha 0.2
    _model(nodes, [x], outs, {}, tmp_path / "bad.onnx")
    with pytest.raises(gc.GraphError) as info:
        import_onnx(tmp_path / "bad.onnx")
    assert str(info.value).split(": ", 1)[1].startswith(
        "ONNX nodes that cannot map: 2: Erf x1 (/erf/Erf: Erf maps only as part of torch's GELU, "
        "x * 0.5 * (1 + erf(x / sqrt(2)))), HardSigmoid x1 (/gate/HardSigmoid: alpha 0.2 and beta 0.5; "
        "netcanvas's HardSigmoid is torch's, alpha 1/6 and beta 0.5); nodes that map: 0; ")



class _ChannelsLastMLP(torch.nn.Module):
    """A pointwise MLP written channels-last: permute to N x H x W x C, Linear over C, permute back."""

    def __init__(self):
        super().__init__()
        self.fc1, self.fc2 = torch.nn.Linear(3, 8), torch.nn.Linear(8, 3, bias=False)

    def forward(self, x):
        return self.fc2(torch.relu(self.fc1(x.permute(0, 2, 3, 1)))).permute(0, 3, 1, 2)


@pytest.mark.parametrize("dynamo", [False, True])
def test_channels_last_linear_imports_as_affine_over_the_last_axis(dynamo, tmp_path):
    graph = _imports_like_torch(_ChannelsLastMLP(), (2, 3, 5, 4), tmp_path / "mlp.onnx", dynamo)
    fcs = [n.params for n in graph.nodes() if n.type == "Affine"]
    assert sorted((p["out_features"], p.get("bias", True), p["over"]) for p in fcs) == [(3, False, "last"),
                                                                                          (8, True, "last")]
    assert [n.params["axes"] for n in graph.nodes() if n.type == "Transpose"] == [[1, 2, 0], [2, 0, 1]]


class _LayerNorms(torch.nn.Module):
    """LayerNorm over the features of a sequence, and over all of a sample's axes."""

    def __init__(self):
        super().__init__()
        self.last, self.all = torch.nn.LayerNorm(6, eps=1e-3), torch.nn.LayerNorm([5, 6])
        with torch.no_grad():
            for norm in (self.last, self.all):
                norm.weight.uniform_(0.5, 1.5), norm.bias.uniform_(-0.5, 0.5)

    def forward(self, x):
        return self.all(self.last(x))


@pytest.mark.parametrize("dynamo", [False, True])
def test_layer_normalization_imports_over_the_last_axis_or_all(dynamo, tmp_path):
    graph = _imports_like_torch(_LayerNorms(), (2, 5, 6), tmp_path / "ln.onnx", dynamo)
    norms = sorted((n.params.get("over", "last"), n.params.get("eps", 1e-5)) for n in graph.nodes()
                   if n.type == "LayerNormalization")
    assert norms == [("all", 1e-5), ("last", 1e-3)]


class _LayerScales(torch.nn.Module):
    """Per-channel constants: the input normalised by a mean and a deviation per channel (preprocessing
    inside the model), a [C, 1, 1] layer scale channels-first, a shift and a [C] divisor channels-last."""

    def __init__(self):
        super().__init__()
        self.register_buffer("mean", torch.rand(1, 3, 1, 1))
        self.register_buffer("std", torch.rand(1, 3, 1, 1) + 0.5)
        self.gamma = torch.nn.Parameter(torch.rand(3, 1, 1) + 0.5)
        self.register_buffer("divisor", torch.rand(5) + 0.5)
        self.shift = torch.nn.Parameter(torch.rand(5) - 0.5)

    def forward(self, x):
        x = (x - self.mean) / self.std
        return (self.shift + self.gamma * torch.relu(x)) / self.divisor


@pytest.mark.parametrize("dynamo", [False, True])
def test_constant_per_channel_factors_import_as_scale_layers(dynamo, tmp_path):
    graph = _imports_like_torch(_LayerScales(), (2, 3, 4, 5), tmp_path / "scale.onnx", dynamo)
    scales = sorted((n.params.get("axis", 0), n.params.get("bias", False), n.params.get("fixed", False))
                    for n in graph.nodes() if n.type == "Scale")
    # The normalisation is one fixed Scale; the shift and the divisor after it merge into one too.
    assert scales == [(0, False, False), (0, True, True), (2, True, False)]


class _ConvNeXtBlock(torch.nn.Module):
    """ConvNeXt's block: depthwise 7x7, then channels-last LayerNorm, an MLP with GELU and a per-channel
    layer scale, back to channels-first and added to the input."""

    def __init__(self, c=4):
        super().__init__()
        self.dwconv = torch.nn.Conv2d(c, c, 7, padding=3, groups=c)
        self.norm = torch.nn.LayerNorm(c)
        self.pwconv1, self.act, self.pwconv2 = torch.nn.Linear(c, 4 * c), torch.nn.GELU(), torch.nn.Linear(4 * c, c)
        self.gamma = torch.nn.Parameter(torch.rand(c) + 0.5)

    def forward(self, x):
        h = self.dwconv(x).permute(0, 2, 3, 1)
        h = self.gamma * self.pwconv2(self.act(self.pwconv1(self.norm(h))))
        return x + h.permute(0, 3, 1, 2)


@pytest.mark.parametrize("dynamo", [False, True])
def test_convnext_block_imports_with_channels_last_layer_norm_and_layer_scale(dynamo, tmp_path):
    model = _ConvNeXtBlock()
    with torch.no_grad():  # a LayerNorm that is not the identity
        model.norm.weight.uniform_(0.5, 1.5), model.norm.bias.uniform_(-0.5, 0.5)
    graph = _imports_like_torch(model, (2, 4, 9, 8), tmp_path / "convnext.onnx", dynamo)
    types = collections.Counter(n.type for n in graph.nodes())
    assert types["LayerNormalization"] == 1 and types["GELU"] == 1 and types["Transpose"] == 2
    assert types["Affine"] == 2 and types["Scale"] == 1 and types["DepthwiseConvolution"] == 1


class _ShuffleUnit(torch.nn.Module):
    """ShuffleNetV2's unit: split the channels, transform one half, concatenate, shuffle the channels
    (reshape to groups, swap, reshape back)."""

    def __init__(self, c=8):
        super().__init__()
        half = c // 2
        self.branch = torch.nn.Sequential(
            torch.nn.Conv2d(half, half, 1, bias=False), torch.nn.BatchNorm2d(half), torch.nn.ReLU(),
            torch.nn.Conv2d(half, half, 3, padding=1, groups=half, bias=False), torch.nn.BatchNorm2d(half),
            torch.nn.Conv2d(half, half, 1, bias=False), torch.nn.BatchNorm2d(half), torch.nn.ReLU())

    def forward(self, x):
        kept, changed = x.chunk(2, dim=1)
        out = torch.cat((kept, self.branch(changed)), dim=1)
        n, c, h, w = out.shape
        return out.view(n, 2, c // 2, h, w).transpose(1, 2).contiguous().view(n, c, h, w)


def _random_statistics(model: torch.nn.Module) -> torch.nn.Module:
    """Batch normalisations whose running statistics and affine factors are not the identity."""
    with torch.no_grad():
        for bn in (m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)):
            bn.running_mean.uniform_(-1, 1), bn.running_var.uniform_(0.5, 2)
            bn.weight.uniform_(0.5, 1.5), bn.bias.uniform_(-0.5, 0.5)
    return model


@pytest.mark.parametrize("dynamo", [False, True])
def test_shufflenet_unit_imports_with_its_channel_shuffle(dynamo, tmp_path):
    graph = _imports_like_torch(_random_statistics(_ShuffleUnit()), (2, 8, 6, 5), tmp_path / "shuffle.onnx", dynamo)
    types = collections.Counter(n.type for n in graph.nodes())
    assert types["Transpose"] == 1 and types["Reshape"] == 2 and types["Concatenate"] == 1
    assert [n.params["shape"] for n in graph.nodes() if n.type == "Reshape"] == [[2, 4, 6, 5], [8, 6, 5]]


class _DenseBlock(torch.nn.Module):
    """DenseNet's dense block (each layer reads every earlier layer's maps, concatenated) and transition."""

    def __init__(self, c=4, growth=3, layers=3):
        super().__init__()
        self.layers = torch.nn.ModuleList(torch.nn.Sequential(
            torch.nn.BatchNorm2d(c + i * growth), torch.nn.ReLU(),
            torch.nn.Conv2d(c + i * growth, 2 * growth, 1, bias=False), torch.nn.BatchNorm2d(2 * growth),
            torch.nn.ReLU(), torch.nn.Conv2d(2 * growth, growth, 3, padding=1, bias=False)) for i in range(layers))
        wide = c + layers * growth
        self.transition = torch.nn.Sequential(torch.nn.BatchNorm2d(wide), torch.nn.ReLU(),
                                              torch.nn.Conv2d(wide, 4, 1, bias=False), torch.nn.AvgPool2d(2))

    def forward(self, x):
        features = [x]
        for layer in self.layers:
            features.append(layer(torch.cat(features, 1)))
        return self.transition(torch.cat(features, 1))


@pytest.mark.parametrize("dynamo", [False, True])
def test_dense_block_imports_with_its_concatenations(dynamo, tmp_path):
    graph = _imports_like_torch(_random_statistics(_DenseBlock()), (2, 4, 6, 6), tmp_path / "dense.onnx", dynamo)
    types = collections.Counter(n.type for n in graph.nodes())
    assert types["Concatenate"] == 3 and types["Convolution"] == 7 and types["AveragePooling"] == 1


class _Padded(torch.nn.Module):
    """Explicit padding: uneven zeros before a convolution, mirrored, repeated edges, a constant over channels."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3)

    def forward(self, x):
        pad = torch.nn.functional.pad
        a = self.conv(pad(x, (1, 2, 0, 1)))
        b = pad(x, (1, 1, 1, 1), mode="reflect")[:, :1, 1:6, 0:6]
        c = pad(x, (0, 1, 0, 0), mode="replicate")[:, :1, :5, :]
        d = pad(x[:, :1], (0, 1, 0, 0, 1, 2), value=0.5)[:, :, :5, :]
        return a + b + c + d


@pytest.mark.parametrize("dynamo", [False, True])
def test_pad_imports_as_pad_layers(dynamo, tmp_path):
    graph = _imports_like_torch(_Padded(), (2, 3, 6, 5), tmp_path / "pad.onnx", dynamo)
    pads = sorted((n.params.get("mode", "constant"), n.params["width"], n.params.get("value", 0.0))
                  for n in graph.nodes() if n.type == "Pad")
    # The dynamo exporter moves the first Pad into the convolution's pads; it comes back as a Pad layer.
    assert pads == [("constant", [0, 1, 1, 2], 0.0), ("constant", [1, 2, 0, 0, 0, 1], 0.5),
                    ("reflect", [1, 1, 1, 1], 0.0), ("replicate", [0, 1], 0.0)]


class _LayerNormsOpByOp(torch.nn.Module):
    """LayerNorms as torch writes them before opset 17: ReduceMean, Sub, Pow, ReduceMean, Add, Sqrt, Div."""

    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(4, 6)
        self.last, self.all = torch.nn.LayerNorm(6, eps=1e-3), torch.nn.LayerNorm([5, 6], elementwise_affine=False)
        with torch.no_grad():
            self.last.weight.uniform_(0.5, 1.5), self.last.bias.uniform_(-0.5, 0.5)

    def forward(self, x):
        return self.all(self.last(self.fc(x)))


@pytest.mark.parametrize("opset", [13, 16])
def test_layer_norm_written_op_by_op_imports_as_one_layer(opset, tmp_path):
    model, x = _LayerNormsOpByOp().eval(), torch.randn(2, 5, 4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (x,), str(tmp_path / "ln.onnx"), dynamo=False, opset_version=opset,
                          do_constant_folding=False, input_names=["x"], output_names=["y"],
                          dynamic_axes={"x": {0: "N"}})
    assert {"Pow", "Sqrt"} <= {n.op_type for n in onnx.load(tmp_path / "ln.onnx").graph.node}
    graph, got = _run_imported(tmp_path / "ln.onnx", {"x": x})
    with torch.no_grad():
        _assert_close(got["y"], model(x))
    assert sorted((n.type, n.params.get("over", "last"), n.params.get("eps", 1e-5)) for n in graph.nodes()) == [
        ("Affine", "last", 1e-5), ("Input", "last", 1e-5),
        ("LayerNormalization", "all", 1e-5), ("LayerNormalization", "last", 1e-3)]


@pytest.mark.parametrize("dynamo", [False, True])
def test_batch_normalization_folded_by_the_exporter_is_reported(dynamo, tmp_path, capsys):
    model = _random_statistics(torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4))).eval()
    x = torch.randn(2, 3, 6, 6)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (x,), str(tmp_path / "folded.onnx"), dynamo=dynamo, input_names=["x"],
                          **({} if dynamo else {"opset_version": 17}))
    assert main(["import", str(tmp_path / "folded.onnx"), "-o", str(tmp_path / "folded.graph.yaml")]) == 0
    warning = capsys.readouterr().err
    assert warning.startswith("warning: 1 convolution(s) have a BatchNormalization folded into their weights")
    assert "do_constant_folding=False" in warning and "optimize=False" in warning
    # Exported as the warning says, the BatchNormalization layer stays.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (x,), str(tmp_path / "kept.onnx"), input_names=["x"], dynamo=dynamo,
                          **({"optimize": False} if dynamo else {"opset_version": 17, "do_constant_folding": False}))
    assert main(["import", str(tmp_path / "kept.onnx"), "-o", str(tmp_path / "kept.graph.yaml")]) == 0
    assert capsys.readouterr().err == ""
    graph, got = _run_imported(tmp_path / "kept.onnx", {"x": x})
    assert _layer_types(graph)["BatchNormalization"] == 1
    with torch.no_grad():
        _assert_close(next(iter(got.values())), model(x))
