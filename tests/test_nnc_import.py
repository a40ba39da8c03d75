"""Importing Neural Network Console projects (.sdcproj): NNC's own samples from ../shared/nnc-samples."""

import csv
import math
import re
import shutil

import pytest
import torch

import graphcompiler as gc
from conftest import ROOT, NNC_SAMPLES as SAMPLES, needs_nnc_samples
from graphcompiler.importers import import_sdcproj
from graphcompiler.importers.sdcproj import read_sdcproj
from graphcompiler.layout import auto_layout
from graphcompiler.views import shared_nodes, view_weights
from netcanvas.cli import main
from runtime.detection_data import write_detection_dataset, write_nnc_grid_lists
from runtime.example_data import write_dataset
from runtime.training import train

pytestmark = needs_nnc_samples
ALL = sorted(p.name for p in SAMPLES.glob("*.sdcproj")) if SAMPLES.is_dir() else []


@pytest.mark.parametrize("name", ALL)
def test_every_sample_reads_with_its_networks_layers_and_links(name):
    text = (SAMPLES / name).read_text(encoding="utf-8-sig")
    project = read_sdcproj(SAMPLES / name)
    layers = len(re.findall(r"^Type=", text, re.M))
    links = len(re.findall(r"^SourceLayerID=", text, re.M))
    assert sum(len(n.layers) for n in project.networks.values()) == layers
    assert sum(len(n.links) for n in project.networks.values()) == links


@pytest.mark.parametrize("name", ALL)
def test_an_import_maps_everything_or_lists_exactly_what_it_left_out(name):
    partial = import_sdcproj(SAMPLES / name, partial=True)
    if not partial.unmapped:
        assert import_sdcproj(SAMPLES / name).project.networks.keys() == partial.project.networks.keys()
        return
    with pytest.raises(gc.GraphError) as caught:
        import_sdcproj(SAMPLES / name)
    message = str(caught.value)
    assert f"{len(partial.unmapped)} layer(s) cannot be imported yet" in message
    assert all(str(u) in message for u in partial.unmapped)


@pytest.mark.parametrize("name", ALL)
def test_every_sample_imports_completely_validates_compiles_and_runs_forward(name):
    project = import_sdcproj(SAMPLES / name).project
    assert gc.validate(project) == []
    for graph in project.networks.values():
        model = gc.compile(graph)
        inputs = {n: torch.rand(3, *s) for n, s in model.input_shapes.items()}
        shapes = gc.infer_shapes(graph)
        for node, value in model.trace(**inputs).items():
            if node in shapes and shapes[node].outputs:
                assert tuple(value.shape[1:]) == next(iter(shapes[node].outputs.values())), node


def test_vgg16_units_become_blocks_with_the_published_parameter_count():
    result = import_sdcproj(SAMPLES / "vgg-16.sdcproj")
    project = result.project
    assert gc.validate(project) == []
    assert set(project.blocks) == {"VGG16Train", "VGG16"}
    ours = gc.cost(gc.infer_shapes(gc.load(ROOT / "examples/vgg16.graph.yaml").network())).params
    assert gc.cost(gc.infer_shapes(project.network())).params == ours == 138_357_544
    # The validation and runtime networks use the same unit with NNC's centre crop (two Slices).
    runtime = project.networks["Runtime"]
    assert [n.type for n in runtime.nodes()].count("Slice") == 2
    assert gc.infer_shapes(runtime)["VGG16"].outputs["y"] == (1000,)
    assert project.sections["dataset"]["image_size"] == [224, 224]
    model = gc.compile(project.network())
    with torch.no_grad():
        out = model.trace(TrainingInput=torch.rand(1, 3, 224, 224), y=torch.zeros(1, 1))
    assert tuple(out["VGG16"].shape) == (1, 1000) and torch.isfinite(out["CategoricalCrossEntropy"]).all()


def test_resnet18_has_the_published_parameter_count_and_runs():
    result = import_sdcproj(SAMPLES / "resnet-18.sdcproj")
    project = result.project
    assert gc.validate(project) == []
    ours = gc.cost(gc.infer_shapes(gc.load(ROOT / "examples/resnet18.graph.yaml").network())).params
    assert gc.cost(gc.infer_shapes(project.network())).params == ours == 11_689_512
    assert project.network().node("InputX").params["shape"] == [3, 224, 224]  # NNC's crop, after its scaling
    model = gc.compile(project.network())
    with torch.no_grad():
        out = model.trace(InputX=torch.rand(1, 3, 224, 224), y=torch.zeros(1, 1))
    assert torch.isfinite(out["SoftmaxCrossEntropy"]).all()


def test_validation_and_runtime_networks_become_views_of_the_trained_one():
    project = import_sdcproj(SAMPLES / "resnet-18.sdcproj").project
    assert project.weights_from == {"Validation": "main", "Runtime": "main", "Validation5": "main"}
    assert "    weights: main\n" in gc.dumps(project) and gc.loads(gc.dumps(project)).weights_from == project.weights_from
    assert len(shared_nodes(project.networks["Runtime"], project.network())) == 41  # 20 convolutions, 20 BNs, 1 affine


def test_the_lstm_samples_runtime_network_computes_with_the_trained_networks_weights():
    project = import_sdcproj(SAMPLES / "long_short_term_memory.sdcproj").project
    main_model = gc.compile(project.network()).eval()
    runtime = gc.compile(project.networks["Runtime"]).eval()
    runtime.load_state_dict(view_weights(project, "Runtime", main_model.state_dict()))
    x = torch.rand(4, *main_model.input_shapes["Input"])
    with torch.no_grad():
        expected = main_model.trace(Input=x, y=torch.zeros(4, *main_model.input_shapes["y"]))["Sigmoid"]
        assert torch.allclose(runtime.trace(Input=x)["y_"], expected)


def test_unetlikes_runtime_network_with_its_label_image_exports_and_onnxruntime_agrees(tmp_path):
    from graphcompiler.export.onnx_export import export_onnx
    project = import_sdcproj(SAMPLES / "unetlike_125px.sdcproj").project
    report = export_onnx(project.networks["Runtime"], tmp_path / "runtime.onnx")
    assert set(report.inputs) == {"Input", "LabelInput"}  # its labels reach a OneHot: drawn as class indices
    assert max(report.max_relative_error.values()) <= 1e-5


def test_layers_nnc_does_not_train_become_frozen_layers(tmp_path):
    text = (SAMPLES / "LeNet.sdcproj").read_text(encoding="utf-8-sig")
    # The file's first W and b multipliers are those of its first layer with weights, Convolution.
    frozen = text.replace("LRateMultiplier\nProperty_12_Value=1.0", "LRateMultiplier\nProperty_12_Value=0", 1)
    frozen = frozen.replace("LRateMultiplier\nProperty_16_Value=1.0", "LRateMultiplier\nProperty_16_Value=0", 1)
    (tmp_path / "frozen.sdcproj").write_text(frozen, encoding="utf-8")
    result = import_sdcproj(tmp_path / "frozen.sdcproj")
    assert result.project.sections["training"]["transfer"] == {"freeze": ["Convolution"]}
    half = frozen.replace("LRateMultiplier\nProperty_16_Value=0", "LRateMultiplier\nProperty_16_Value=1.0", 1)
    (tmp_path / "half.sdcproj").write_text(half, encoding="utf-8")
    result = import_sdcproj(tmp_path / "half.sdcproj")
    assert "transfer" not in result.project.sections["training"]
    assert ("Convolution: learning-rate multiplier 0 for W only; netcanvas freezes whole layers "
            "(training.transfer.freeze), so all of its weights are trained") in result.notes


def test_lenet_keeps_nnc_layers_and_settings_and_is_laid_out_anew():
    project = import_sdcproj(SAMPLES / "LeNet.sdcproj").project
    graph = project.network()
    conv = graph.node("Convolution")
    assert (conv.type, conv.params["out_channels"], conv.params["kernel"]) == ("Convolution", 16, [7, 7])
    assert graph.node("MaxPooling").params["stride"] == [2, 2]  # NNC's *KernelShape
    assert {n.id: n.pos for n in graph.nodes()} == auto_layout(graph)  # NNC's canvas runs top to bottom
    assert graph.source_of("CategoricalCrossEntropy", "target")[0] == "y"
    assert project.sections["dataset"]["inputs"] == {"Input": "x"}
    assert project.sections["training"]["optimizer"] == {"type": "Adam", "lr": 0.001, "beta1": 0.9, "beta2": 0.999}
    assert (project.sections["training"]["epochs"], project.sections["training"]["batch_size"]) == (10, 64)


def test_autoencoder_loss_reads_the_networks_own_input():
    graph = import_sdcproj(SAMPLES / "06_auto_encoder.sdcproj").project.network()
    source = graph.source_of(next(n.id for n in graph.nodes() if n.type == "SquaredError"), "target")
    assert graph.node(source[0]).type == "Input" and sum(n.type == "Input" for n in graph.nodes()) == 1


def test_repeat_loops_become_copies_with_their_own_weights():
    graph = import_sdcproj(SAMPLES / "12_residual_learning.sdcproj").project.network()
    assert not any(n.type.startswith("Repeat") for n in graph.nodes())
    # Each of the two loops (Times = 2) holds a residual block of 3 convolutions: 13 in the file, 19 unrolled.
    assert sum(n.type == "Convolution" for n in graph.nodes()) == 19
    assert graph.node("Convolution_5_r2").params == graph.node("Convolution_5").params
    assert graph.source_of("Convolution_5_r2", "x")[0] != graph.source_of("Convolution_5", "x")[0]


def test_augmentation_layers_become_the_training_augmentation():
    result = import_sdcproj(SAMPLES / "digits.sdcproj")
    graph = result.project.network()
    assert not any(n.type in ("ImageAugmentation", "RandomShift") for n in graph.nodes())
    augmentation = result.project.sections["training"]["augmentation"]
    assert augmentation["shift"] == 1 and augmentation["rotate"] == pytest.approx(4.583662)
    assert augmentation["brightness"] == pytest.approx(10 / 255)
    assert any("Distortion" in note for note in result.notes)
    assert result.project.sections["search"] == {"max_trials": 100}  # NNC's AttemptTimes


def _on_digits(tmp_path, name: str) -> gc.Project:
    """The imported sample with its dataset pointed at scikit-learn's digits as 28 x 28 images."""
    write_dataset("digits", tmp_path / "data/digits-28", size=28)
    project = import_sdcproj(SAMPLES / name).project
    project.sections["dataset"].update(training="data/digits-28/train.csv", validation="data/digits-28/validation.csv")
    return project


def test_imported_lenet_trains_on_digits_to_98_percent(tmp_path):
    """NNC's LeNet as imported; NNC's 10 epochs of Adam on 60,000 MNIST images are too few on our 1,437 digits,
    so it trains 30 epochs, batch 32, with a cosine schedule and shifts of 2 pixels (as NNC's digits sample)."""
    project = _on_digits(tmp_path, "LeNet.sdcproj")
    project.sections["training"].update(epochs=30, batch_size=32, schedule={"type": "cosine"},
                                        augmentation={"shift": 2})
    result = train(project, tmp_path / "run", base_dir=tmp_path)
    print(f"imported NNC LeNet, 30 epochs: validation accuracy {result['accuracy']:.4f}")
    assert result["accuracy"] >= 0.98


@pytest.mark.parametrize("cut", [0.3, 0.6, 0.9])
def test_a_truncated_project_gives_one_clear_error(cut, tmp_path, capsys):
    text = (SAMPLES / "LeNet.sdcproj").read_text(encoding="utf-8")
    broken = tmp_path / "broken.sdcproj"
    broken.write_text(text[:int(len(text) * cut)], encoding="utf-8")
    assert main(["import", str(broken), "-o", str(tmp_path / "out.graph.yaml")]) == 1
    err = capsys.readouterr().err
    assert err.count("error:") == 1 and "broken.sdcproj" in err and "Traceback" not in err
    assert not (tmp_path / "out.graph.yaml").exists()


def test_a_corrupted_project_names_the_line(tmp_path, capsys):
    broken = tmp_path / "garbage.sdcproj"
    broken.write_bytes(b"this is not\x00 an INI file\n[Layer_0\nType=Input\n")
    assert main(["import", str(broken), "-o", str(tmp_path / "out.graph.yaml")]) == 1
    err = capsys.readouterr().err
    assert "garbage.sdcproj:1" in err and "not an NNC project file" in err


def _with_an_unknown_layer(tmp_path):
    """LeNet with its first Tanh in the file (Tanh_2) changed to a layer type netcanvas does not have."""
    text = (SAMPLES / "LeNet.sdcproj").read_text(encoding="utf-8-sig")
    changed = tmp_path / "lenet_unknown.sdcproj"
    changed.write_text(text.replace("Type=Tanh", "Type=FancyActivation", 1), encoding="utf-8")
    return changed


def test_partial_import_from_the_command_line_lists_what_it_left_out(tmp_path, capsys):
    source, output = _with_an_unknown_layer(tmp_path), tmp_path / "lenet.graph.yaml"
    assert main(["import", str(source), "-o", str(output)]) == 1
    assert "layer(s) cannot be imported yet" in capsys.readouterr().err and not output.exists()
    assert main(["import", str(source), "-o", str(output), "--partial"]) == 0
    err = capsys.readouterr().err
    left_out = import_sdcproj(source, partial=True).unmapped
    assert str(left_out[0]) == "Main / Tanh_2 (FancyActivation): netcanvas has no such layer yet"
    assert all(f"left out: {u}" in err for u in left_out)
    assert gc.load(output).networks


def test_running_statistics_in_a_network_no_optimizer_trains_map_to_inference_mode():
    result = import_sdcproj(SAMPLES / "resnet-18.sdcproj")
    assert not result.unmapped
    assert any(note.startswith("Runtime: 20 BatchNormalization layer(s) with BatchStat = False") for note in result.notes)


def test_a_gan_becomes_a_generator_and_a_discriminator_trained_as_a_gan():
    result = import_sdcproj(SAMPLES / "mnist_dcgan.sdcproj")
    project = result.project
    assert set(project.networks) == {"generator", "discriminator"}
    assert project.sections["training"]["mode"] == "gan"
    generator, discriminator = project.networks["generator"], project.networks["discriminator"]
    assert generator.fed_inputs() == ["Input"] and generator.node("Input").params == {"shape": [100]}
    assert gc.infer_shapes(generator)["Sigmoid"].outputs["y"] == (1, 28, 28)
    assert discriminator.fed_inputs() == ["Input_2", "y"]
    assert project.sections["dataset"]["inputs"] == {"Input_2": "x"}
    assert any(note.startswith("a GAN: the generator is network Runtime") for note in result.notes)


def test_imported_dcgan_trains_one_epoch_on_digits_with_finite_losses(tmp_path):
    project = _on_digits(tmp_path, "mnist_dcgan.sdcproj")
    project.sections["training"]["epochs"] = 1
    result = train(project, tmp_path / "run", base_dir=tmp_path)
    print(f"imported NNC DCGAN, one epoch on digits: generator loss {result['g_loss']:.3f}, "
          f"discriminator loss {result['d_loss']:.3f}")
    assert result["task"] == "gan" and math.isfinite(result["g_loss"]) and math.isfinite(result["d_loss"])
    assert (tmp_path / "run/samples/epoch_001.png").stat().st_size > 0


def test_generated_inputs_are_made_by_the_network_not_read_from_the_dataset():
    project = import_sdcproj(SAMPLES / "mnist_vae.sdcproj").project
    graph = project.network()
    assert graph.node("epsilon").params == {"shape": [50], "generator": "normal", "multiplier": 1.0}
    assert graph.fed_inputs() == ["Input", "Input_2"]
    assert project.sections["dataset"]["inputs"] == {"Input": "x", "Input_2": "x"}
    model = gc.compile(graph)
    x = torch.rand(6, 1, 28, 28)
    torch.manual_seed(0)
    first = model(Input=x, Input_2=x)
    again = model(Input=x, Input_2=x)
    assert all(first[k].shape == (6, 1) for k in ("Sum", "Sum_2", "Sum_3"))  # the three terms of the ELBO
    assert not torch.equal(first["Sum"], again["Sum"])  # epsilon is drawn anew for every batch

@pytest.mark.parametrize("name", ["elman_net.sdcproj", "long_short_term_memory.sdcproj"])
def test_recurrent_samples_run_forward_and_backward_over_sequences(name):
    project = import_sdcproj(SAMPLES / name).project
    graph = project.network()
    block = project.blocks[graph.node("Recurrent").type]
    assert block.loop.axis == 1 and block.loop.sequences == ("RecurrentInput",)
    assert gc.infer_shapes(graph)["Recurrent"].outputs["y"] == (1, 28, 28)  # the state at each of 28 steps
    model = gc.compile(graph)
    loss = model.compute_loss(Input=torch.rand(4, 1, 28, 28), y=torch.randint(0, 2, (4, 1)).float())
    loss.backward()
    grads = [p.grad for p in model.Recurrent.step.parameters()]
    assert torch.isfinite(loss) and all(g is not None and g.abs().sum() > 0 for g in grads)


@pytest.mark.parametrize("name, gates, sequence", [
    ("long_short_term_memory.sdcproj", ("InputGate", "ForgetGate", "Affine", "OutputGate"), (1, 28, 28)),
    ("unit_LSTM.sdcproj", ("IGate", "FGate", "Affine", "OGate"), (28, 100)),  # alone: Axis 0, Size 100
])
def test_imported_lstms_compute_what_torch_lstm_computes(name, gates, sequence):
    """Each gate (torch's i, f, g, o) is an Affine over [h, x]: NNC concatenates H before the step's input."""
    model = gc.compile(import_sdcproj(SAMPLES / name).project.network(), outputs=["Recurrent"])
    step, width = model.Recurrent.step, sequence[-1]
    lstm = torch.nn.LSTM(width, width, batch_first=True)
    with torch.no_grad():
        lstm.weight_ih_l0.copy_(torch.cat([getattr(step, g).weight[:, width:] for g in gates]))
        lstm.weight_hh_l0.copy_(torch.cat([getattr(step, g).weight[:, :width] for g in gates]))
        lstm.bias_ih_l0.copy_(torch.cat([getattr(step, g).bias for g in gates]))
        lstm.bias_hh_l0.zero_()
        x = torch.rand(5, *sequence)
        expected, _ = lstm(x.reshape(5, -1, width))
        got = model(x)["Recurrent"].reshape(expected.shape)
    assert torch.allclose(got, expected, atol=1e-6)


def test_a_loop_that_cannot_be_taken_out_is_listed_with_the_reason(tmp_path):
    text = (SAMPLES / "elman_net.sdcproj").read_text(encoding="utf-8-sig")
    changed = tmp_path / "elman_dataset_state.sdcproj"
    changed.write_text(text.replace("Property_3_Value=Constant", "Property_3_Value=None", 1), encoding="utf-8")
    left_out = [str(u) for u in import_sdcproj(changed, partial=True).unmapped]
    assert "Main / Delay (recurrent loop): its initial value comes from the dataset, which netcanvas has no " \
           "counterpart for yet (only Constant)" in left_out


def test_the_designer_opens_an_nnc_project_as_an_unsaved_graph_yaml_beside_it(tmp_path):
    from designer.model import EditorModel

    source = tmp_path / "digits.sdcproj"
    shutil.copy(SAMPLES / "digits.sdcproj", source)
    model = EditorModel()
    model.open(source)
    assert model.path == tmp_path / "digits.graph.yaml" and model.dirty and not model.path.exists()
    assert model.last_action.startswith("imported digits.sdcproj; ") and "Distortion" in model.last_action
    assert model.problems() == []
    assert model.graph == import_sdcproj(source).project.network()
    model.save()
    assert gc.dumps(gc.load(tmp_path / "digits.graph.yaml")) == gc.dumps(model.project) and not model.dirty


def test_the_designer_refuses_an_nnc_project_it_cannot_import_and_keeps_what_was_open(tmp_path):
    from designer.model import EditorModel

    model = EditorModel()
    model.add_node("Input")
    with pytest.raises(gc.GraphError) as caught:
        model.open(_with_an_unknown_layer(tmp_path))
    assert "cannot be imported yet" in caught.value.message
    assert [n.type for n in model.graph.nodes()] == ["Input"]


def test_cutout_drawn_as_layers_becomes_the_training_cutout():
    result = import_sdcproj(SAMPLES / "resnet-110-cutout.sdcproj")
    graph = result.project.network()
    assert [n.type for n in graph.nodes()] == ["Input", "Network", "SoftmaxCrossEntropy", "Input"]
    assert graph.source_of("Unit", "NetworkInput")[0] == "Input"
    assert result.project.sections["training"]["augmentation"] == {"cutout": {"size": 16}, "shift": 4, "flip_x": True}
    assert any("not filled with Uniform noise x 115" in note for note in result.notes)
    # NNC's structure search limit: at most 40 M multiply-adds (its lower limit, 20 M, has no counterpart).
    assert result.project.sections["search"] == {"max_macs": 40_000_000}
    assert "structure search: CostMultiplyAdd_Min = 20000000 not carried over" in result.notes


def test_mixup_drawn_as_layers_becomes_the_training_mixup_and_its_data_network_goes():
    result = import_sdcproj(SAMPLES / "resnet-110-mixup.sdcproj")
    project = result.project
    assert set(project.networks) == {"main", "Validation", "Runtime"}  # SetData only filled the WorkingMemory
    graph = project.network()
    assert [n.type for n in graph.nodes()] == ["Input", "Network", "SoftmaxCrossEntropy", "Input"]
    assert graph.source_of("Unit", "NetworkInput")[0] == "Input"
    training = project.sections["training"]
    assert training["augmentation"] == {"mixup": {"alpha": 0.425}, "shift": 4, "flip_x": True}
    assert training["optimizer"] == {"type": "SGD", "lr": 0.05, "momentum": 0.9, "nesterov": True,
                                     "weight_decay": 0.0005}  # the trained network's optimizer, not SetData's
    # NNC's weight Sigmoid(3 z), z ~ N(0, 1), and Beta(0.425, 0.425) have the same variance.
    z = torch.randn(1_000_000, generator=torch.Generator().manual_seed(0))
    alpha = training["augmentation"]["mixup"]["alpha"]
    assert torch.sigmoid(3 * z).var().item() == pytest.approx(1 / (4 * (2 * alpha + 1)), rel=0.01)


def test_unit_arguments_become_block_params_and_their_arithmetic_is_worked_out():
    result = import_sdcproj(SAMPLES / "unetlike_125px.sdcproj")
    project = result.project
    assert project.blocks["DSUnit"].params == {"ConvMaps": 64}  # ConvBS only switched BatchStat: no param
    assert project.blocks["DSUnit"].graph.node("Convolution_2").params["out_channels"] == "$ConvMaps"
    assert project.blocks["USUnit"].graph.node("USInput").params["shape"] == [192, 256, 256]  # ConvMaps*3 at 64
    unet = project.blocks["UNet"].graph
    # ConvMaps = Input[0]*2 down the U and Input[0]/2, /4 up it, worked out at each use's input.
    assert [unet.node(n).params["ConvMaps"] for n in ("DSUnit", "DSUnit_2", "DSUnit_3", "DSUnit_4")] == \
        [128, 256, 512, 1024]
    assert [unet.node(n).params["ConvMaps"] for n in ("USUnit_3", "USUnit_4", "USUnit_5", "USUnit_6")] == \
        [512, 256, 128, 64]
    assert unet.node("Convolution_3").params["out_channels"] == 64  # Input[0]/2 of 128 channels
    shapes = gc.infer_shapes(project.network())
    assert shapes["UNet"].outputs["y"] == (21, 128, 128)
    runtime = project.networks["Runtime"]
    assert gc.infer_shapes(runtime)["Slice_32"].outputs["y"] == (21, 125, 125)  # Input[2]-2 of the padded 128
    assert runtime.node("Broadcast").params["shape"] == [21, 125, 125]
    assert any("fed from Parameter through AddScalar and MulScalar" in note for note in result.notes)


def test_imported_autoencoder_trains_on_digits(tmp_path):
    project = _on_digits(tmp_path, "06_auto_encoder.sdcproj")
    project.sections["training"]["epochs"] = 5
    result = train(project, tmp_path / "run", base_dir=tmp_path)
    with open(tmp_path / "run/learning_curve.csv", newline="") as handle:
        curve = [float(row["val_loss"]) for row in csv.DictReader(handle)]
    print(f"imported NNC autoencoder, 5 epochs on digits: validation reconstruction error {curve[0]:.4f} -> "
          f"{curve[-1]:.4f}")
    assert result["task"] == "autoencoder" and curve[-1] < 0.7 * curve[0]


def _nnc_reference_cost(layer, input_shape: tuple[int, ...], output_shape: tuple[int, ...]) -> tuple[int, int]:
    """Parameters and multiply-adds of a layer as NNC's layer reference defines its weights, from its own
    properties: Affine W (inputs x OutShape) and b; Convolution W (OutMaps x InMaps/Group x KernelShape) and
    b; Deconvolution W (InMaps x OutMaps/Group x KernelShape) and b; BatchNormalization beta and gamma."""
    p = layer.properties
    bias = p.get("WithBias", "True") == "True"
    if layer.type == "Affine":
        outputs = math.prod(int(v) for v in p["OutShape"].split(","))
        inputs = math.prod(input_shape)
        return inputs * outputs + (outputs if bias else 0), inputs * outputs
    kernel = math.prod(int(v) for v in p.get("KernelShape", "1").split(","))
    groups = int(p.get("Group", "1"))
    if layer.type == "Convolution":
        maps = output_shape[0]
        weights = maps * input_shape[0] // groups * kernel
        return weights + (maps if bias else 0), weights * math.prod(output_shape[1:])
    if layer.type == "Deconvolution":
        maps = output_shape[0]
        weights = input_shape[0] * maps // groups * kernel
        return weights + (maps if bias else 0), weights * math.prod(input_shape[1:])
    return 2 * input_shape[0], 0  # BatchNormalization over the channel axis


STATISTICS = ["01_logistic_regression.sdcproj", "06_auto_encoder.sdcproj", "11_deconvolution.sdcproj",
              "12_residual_learning.sdcproj", "LeNet.sdcproj", "digits.sdcproj", "iris.sdcproj",
              "mnist_dcgan.sdcproj", "mnist_vae.sdcproj"]
"""The samples whose weighted layers stand in their networks, not inside units."""


@pytest.mark.parametrize("name", STATISTICS)
def test_netcanvas_info_of_an_import_agrees_with_nncs_definitions_layer_by_layer(name, tmp_path, capsys):
    saved = tmp_path / "imported.graph.yaml"
    assert main(["import", str(SAMPLES / name), "-o", str(saved)]) == 0
    project = gc.load(saved)
    nnc = read_sdcproj(SAMPLES / name)
    checked = 0
    for network, graph in project.networks.items():
        capsys.readouterr()
        assert main(["info", str(saved), "--network", network]) == 0
        rows = {line.split()[0]: line.split() for line in capsys.readouterr().out.splitlines()[3:]}
        shapes = gc.infer_shapes(graph)
        layers = {re.sub(r"\W", "_", l.name): l for n in nnc.networks.values() for l in n.layers.values()}
        for node in graph.nodes():
            layer = layers.get(re.sub(r"_r\d+$", "", node.id))
            if layer is None or layer.type not in ("Affine", "Convolution", "Deconvolution", "BatchNormalization") \
                    or node.type != layer.type:
                continue
            info = shapes[node.id]
            output = shapes[next(iter(graph.nx.successors(node.id)))].outputs["y"] \
                if layer.type == "Affine" and "," in layer.properties["OutShape"] else info.outputs["y"]
            params, macs = _nnc_reference_cost(layer, info.inputs[0], output)
            assert rows[node.id][-2:] == [f"{params:,}", f"{macs:,}"], (network, node.id)
            checked += 1
    print(f"{name}: {checked} weighted layers agree with NNC's definitions")
    assert checked >= 1


UNIT_STATISTICS = ["vgg-16.sdcproj", "resnet-18.sdcproj", "nin.sdcproj", "squeezenet11.sdcproj",
                   "densenet-161.sdcproj", "unetlike_125px.sdcproj", "resnet-110-cutout.sdcproj",
                   "hand-sign.sdcproj", "shufflenet.sdcproj", "alexnet.sdcproj",
                   "synthetic_image_object_detection.sdcproj", "sin_wave_anomaly_detection.sdcproj"]
"""Samples whose weighted layers sit inside units (blocks, nested, with arguments) or Repeat loops."""


def _weighted_layers(project: gc.Project, nnc, graph: gc.Graph, network: str, values: dict):
    """(node path, our (params, macs), NNC's) for every weighted layer in ``graph``, looking into block uses
    with the arguments each use gives."""
    from types import SimpleNamespace
    from graphcompiler.layers.nnc import NncProperties, Unmappable
    shapes = gc.infer_shapes(graph)
    costs = gc.cost(shapes).per_node
    names = {re.sub(r"\W", "_", n): n for n in nnc.networks}
    layers = {re.sub(r"\W", "_", l.name): l for l in nnc.networks[network].layers.values()}
    for node in graph.nodes():
        if node.type in project.blocks:
            block = project.blocks[node.type]
            params = vars(graph.spec(node.type).resolve(node.params))
            inner = block.instance(tuple(shapes[node.id].inputs), params)
            for path, ours, theirs in _weighted_layers(project, nnc, inner, names[block.name], params):
                yield f"{node.id}/{path}", ours, theirs
            continue
        layer = layers.get(re.sub(r"_r\d+$", "", node.id))
        if layer is None or layer.type not in ("Affine", "Convolution", "Deconvolution", "BatchNormalization") \
                or node.type != layer.type:
            continue
        read = NncProperties(layer.type, layer.properties, tuple(shapes[node.id].inputs[0]), values)
        worked_out = {}
        for key in ("WithBias", "OutShape", "KernelShape", "Group"):
            if key in layer.properties:
                try:
                    worked_out[key] = read.text(key)
                except Unmappable:
                    worked_out[key] = layer.properties[key]
        info = shapes[node.id]
        output = shapes[next(iter(graph.nx.successors(node.id)))].outputs["y"] \
            if layer.type == "Affine" and "," in worked_out["OutShape"] else info.outputs["y"]
        yield node.id, costs[node.id], _nnc_reference_cost(SimpleNamespace(type=layer.type, properties=worked_out),
                                                            info.inputs[0], output)


@pytest.mark.parametrize("name", UNIT_STATISTICS)
def test_weighted_layers_inside_units_and_repeats_agree_with_nncs_definitions_layer_by_layer(name):
    project = import_sdcproj(SAMPLES / name).project
    nnc = read_sdcproj(SAMPLES / name)
    trained = next((o.get("Optimizer_NetworkName") for o in nnc.optimizers), None) or next(iter(nnc.networks))
    checked = list(_weighted_layers(project, nnc, project.network(), trained, {}))
    assert [c for c in checked if c[1] != c[2]] == []
    inside = [path for path, _, _ in checked if "/" in path]
    print(f"{name}: {len(checked)} weighted layers, {len(inside)} of them inside units, agree with NNC's definitions")
    assert checked and (inside or not project.blocks)


SMALL = ["01_logistic_regression.sdcproj", "01_visualize_weight_of_feature.sdcproj",
         "04_inference_result_at_each_layer.sdcproj", "06_auto_encoder.sdcproj", "11_deconvolution.sdcproj",
         "12_residual_learning.sdcproj", "LSTM_auto_encoder.sdcproj", "LeNet.sdcproj", "digits.sdcproj",
         "elman_net.sdcproj", "hand-sign.sdcproj", "iris.sdcproj", "long_short_term_memory.sdcproj",
         "mnist_dcgan.sdcproj", "mnist_dcgan_with_label.sdcproj", "mnist_vae.sdcproj", "resnet-110-cutout.sdcproj",
         "resnet-110-mixup.sdcproj", "binary_connect_mnist_LeNet.sdcproj", "binary_net_mnist_MLP.sdcproj",
         "binary_weight_mnist_MLP.sdcproj", "sin_wave_anomaly_detection.sdcproj",
         "semi_supervised_learning_VAT.sdcproj"]
"""The samples whose Inputs are 64 x 64 or smaller."""


@pytest.mark.parametrize("name", SMALL)
def test_small_samples_export_to_onnx_and_onnxruntime_agrees(name, tmp_path):
    from graphcompiler.export.onnx_export import export_onnx
    project = import_sdcproj(SAMPLES / name).project
    trained = ["generator", "discriminator"] if "generator" in project.networks else [project.main_network]
    for network in trained:
        graph = project.networks[network]
        assert all(max(n.params["shape"][1:] or [0]) <= 64 for n in graph.nodes() if n.type == "Input")
        report = export_onnx(graph, tmp_path / f"{network}.onnx")
        assert max(report.max_relative_error.values()) <= 1e-5, network


def test_the_object_detection_sample_trains_on_its_own_grid_layout(tmp_path, one_thread):
    """NNC's YOLO-style detector (5 anchors x (box, objectness, 4 classes) per 16 px cell of a 112 px image) on
    the synthetic digits written in nnabla's create_object_detection_dataset layout. There is no decoder for
    its anchors here, so what is checked is that it trains: its three losses fall."""
    made = write_detection_dataset(tmp_path / "data", count=160, size=112, classes=(0, 1, 2, 3))
    training, validation = write_nnc_grid_lists(made)
    project = import_sdcproj(SAMPLES / "synthetic_image_object_detection.sdcproj").project
    project.sections["dataset"].update(training=str(training), validation=str(validation))
    project.sections["training"].update(epochs=2, batch_size=16)
    assert {n: project.network().node(n).params["shape"] for n in ("label", "region")} == {
        "label": [35, 7], "region": [35, 28]}
    train(project, tmp_path / "run", base_dir=tmp_path)
    with open(tmp_path / "run/learning_curve.csv", newline="") as handle:
        losses = [float(row["train_loss"]) for row in csv.DictReader(handle)]
    print(f"NNC's object detection sample, training loss per epoch: {losses}")
    assert losses[-1] < 0.5 * losses[0]
