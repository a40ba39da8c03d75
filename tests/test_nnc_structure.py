"""NNC structures beyond one network of layers: two recurrent loops in one network, read backwards."""

import torch

import graphcompiler as gc
from conftest import NNC_SAMPLES as SAMPLES, needs_nnc_samples
from graphcompiler.importers import import_sdcproj
from graphcompiler.importers.nnc_loops import unroll_repeats
from graphcompiler.importers.nnc_rewrites import fold_channel_shuffle
from graphcompiler.importers.sdcproj import read_sdcproj

pytestmark = needs_nnc_samples


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


def test_shufflenets_channel_shuffle_drawn_as_three_layers_is_one_channel_shuffle():
    unit, notes = read_sdcproj(SAMPLES / "shufflenet.sdcproj").networks["Unit"], []
    fold_channel_shuffle(unit, notes)
    assert [(l.type, l.properties["Groups"]) for l in unit.layers.values() if l.type == "ChannelShuffle"] == \
        [("ChannelShuffle", "ConvGroup")]
    assert not {"Reshape", "Transpose"} & {l.type for l in unit.layers.values()}
    assert notes == ["Unit: the channel shuffle drawn as Reshape, Transpose, Reshape is one ChannelShuffle layer "
                     "(Reshape)"]
    graph = gc.loads("""
format: netcanvas/1
name: shuffle
networks:
  main:
    nodes:
    - {id: x, type: Input, params: {shape: [12, 3, 2]}}
    - {id: shuffle, type: ChannelShuffle, params: {groups: 3}}
    links: [x -> shuffle]
""").network()
    x = torch.rand(2, 12, 3, 2)
    assert torch.equal(gc.compile(graph)(x=x)["shuffle"], torch.nn.ChannelShuffle(3)(x))


def test_repeat_times_may_be_arithmetic_over_the_networks_arguments():
    network = read_sdcproj(SAMPLES / "resnet-110-cutout.sdcproj").networks["Network"]
    starts = [l for l in network.layers.values() if l.type == "RepeatStart"]
    for start in starts:
        start.properties["Times"] = "n-1"
    assert unroll_repeats(network, {"n": 4}, unit=False) == []
    names = {l.name for l in network.layers.values()}
    assert not any(l.type == "RepeatStart" for l in network.layers.values())
    assert {f"{name}_r3" for name in ("Convolution_2", "Convolution_3")} <= names  # three copies, as n-1 says
    assert not {f"{name}_r4" for name in ("Convolution_2", "Convolution_3")} & names


def test_repeat_times_that_cannot_be_worked_out_is_listed_and_the_partial_import_says_what_it_did(tmp_path, capsys):
    text = (SAMPLES / "resnet-110-cutout.sdcproj").read_text(encoding="utf-8-sig")
    path = tmp_path / "resnet.sdcproj"
    path.write_text(text.replace("Property_1_Value=17\n", "Property_1_Value=N-1\n", 1), encoding="utf-8")
    unmapped = import_sdcproj(path, partial=True).unmapped
    assert [str(u) for u in unmapped] == ["Network / RepeatStart (RepeatStart): Times = N-1 names N, which is no "
                                          "argument of this network; its body is there once"]


def test_the_object_detection_samples_networks_import_with_their_losses():
    """NNC's detector: a unit computing anchors x (box, objectness, classes) x H x W, scored per anchor by a
    softmax over the class axis, a sigmoid cross entropy and a Huber loss on the boxes."""
    project = import_sdcproj(SAMPLES / "synthetic_image_object_detection.sdcproj").project
    assert gc.validate(project) == []
    graph = project.network()
    loss = graph.node("SoftmaxCrossEntropy")
    assert loss.params == {"axis": 1} and graph.node("HuberLoss").params == {"delta": 1.0}
    shapes = gc.infer_shapes(graph)
    assert shapes["Network"].outputs["y"] == (45, 7, 7)  # 5 anchors x (4 + 1 + 4 classes) on a 7 x 7 grid
    assert shapes["SoftmaxCrossEntropy"].outputs["y"] == (5, 1, 7, 7)
    model = gc.compile(graph)
    inputs = {n: torch.rand(2, *s) for n, s in model.input_shapes.items()}
    inputs["label"] = torch.randint(0, 4, inputs["label"].shape).float()
    assert all(torch.isfinite(v).all() for v in model(**inputs).values())


def test_one_axis_convolutions_and_unpooling_of_a_sequence_autoencoder():
    """NNC's sine-wave anomaly detector convolves 1 x 128 (channels x time) with KernelShape 5 and back with
    Deconvolution KernelShape 6; 04_inference's Unpooling KernelShape 10 upsamples the last axis only."""
    project = import_sdcproj(SAMPLES / "sin_wave_anomaly_detection.sdcproj").project
    assert gc.validate(project) == []
    graph = project.network()
    assert graph.node("Convolution").params["kernel"] == [5]
    shapes = gc.infer_shapes(graph)
    assert shapes["Convolution"].outputs["y"] == (16, 64) and shapes["Deconvolution_5"].outputs["y"] == (1, 128)
    conv = gc.compile(graph).Convolution
    assert isinstance(conv, torch.nn.Conv1d) and conv.weight.shape == (16, 1, 5)
    assert gc.cost(shapes).per_node["Convolution"] == (16 * 5 + 16, 16 * 5 * 64)  # NNC's W (16 x 1 x 5) and b
    other = import_sdcproj(SAMPLES / "04_inference_result_at_each_layer.sdcproj").project
    assert gc.validate(other) == []
    ups = [n for n in other.networks["Network2"].nodes() if n.type == "Unpooling" and n.params["factor"] == [10]]
    assert ups and gc.infer_shapes(other.networks["Network2"])[ups[0].id].outputs["y"][-1] % 10 == 0
