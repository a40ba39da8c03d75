"""What an NNC project that cannot be a netcanvas project says, exactly, and settings carried over."""


import graphcompiler as gc
from conftest import NNC_SAMPLES as SAMPLES, needs_nnc_samples
from graphcompiler.importers import import_sdcproj
from netcanvas.cli import main

pytestmark = needs_nnc_samples


def _edited(tmp_path, sample: str, old: str, new: str, count: int = 1):
    text = (SAMPLES / sample).read_text(encoding="utf-8-sig")
    assert old in text
    path = tmp_path / sample
    path.write_text(text.replace(old, new, count), encoding="utf-8")
    return path


def _error(path, capsys) -> str:
    assert main(["import", str(path), "-o", str(path.with_suffix(".graph.yaml"))]) == 1
    assert not path.with_suffix(".graph.yaml").exists()
    return capsys.readouterr().err.strip()


def test_a_transformers_engine_preset_is_out_of_scope_in_one_line(tmp_path, capsys):
    path = _edited(tmp_path, "LeNet.sdcproj", "SDeepEngineType=NNabla", "SDeepEngineType=Transformers")
    assert _error(path, capsys) == (
        f"error: {path}: [Engine]: SDeepEngineType = Transformers: this project is for Neural Network Console's "
        "Transformers engine, which runs a preset model rather than a network graph; netcanvas imports "
        "NNabla-engine projects (network graphs) only")


def test_no_networks_is_an_error_not_an_empty_project(tmp_path, capsys):
    path = _edited(tmp_path, "vgg-16.sdcproj", "NumNetwork=6", "NumNetwork=0")
    assert _error(path, capsys) == (
        f"error: {path}:4: [Global]: NumNetwork = 0: the project has no network; the file looks truncated or "
        "edited by hand, save it again from Neural Network Console")


def test_a_word_where_a_number_belongs_names_the_section_and_key(tmp_path, capsys):
    path = _edited(tmp_path, "LeNet.sdcproj", "Position_0=24\n", "Position_0=abc\n")
    assert _error(path, capsys) == (
        f"error: {path}:7: [Layer_0]: 'Position_0' should be a number, not 'abc'; the file looks truncated or "
        "edited by hand, save it again from Neural Network Console")


def test_learning_rate_steps_in_epochs_become_the_step_schedule():
    training = import_sdcproj(SAMPLES / "vgg-16.sdcproj").project.sections["training"]
    assert training["schedule"] == {"type": "step", "step_epochs": 100, "gamma": 0.1}


def test_learning_rate_steps_in_updates_are_reported_in_updates(tmp_path):
    path = _edited(tmp_path, "vgg-16.sdcproj", "LearningRateUpdateIntervalUnit=0", "LearningRateUpdateIntervalUnit=1")
    result = import_sdcproj(path)
    assert "learning-rate schedule Exponential (multiplier 0.1 every 100 updates) is not carried over; set " \
           "training.schedule" in result.notes
    assert "schedule" not in result.project.sections["training"]
    assert gc.validate(result.project) == []


def test_a_crop_then_a_resize_in_image_augmentation_becomes_the_image_size():
    """densenet-161's validation networks crop 320 x 320 images to 280 x 280 with a Slice, then scale them
    by 0.8 to 224 x 224 in ImageAugmentation: the images come resized to 224 x 224 and nothing is cropped."""
    result = import_sdcproj(SAMPLES / "densenet-161.sdcproj")
    assert gc.validate(result.project) == []
    assert result.project.sections["dataset"]["image_size"] == [224, 224]
    for name in ("Top5Error", "Top1Error", "Runtime"):
        graph = result.project.networks[name]
        assert "Slice" not in {n.type for n in graph.nodes()}
        assert gc.infer_shapes(graph)["DenseNet"].outputs["y"] == (1000,)
    assert "Train / ImageAugmentationX: its crop of 3,480,480 to 3,224,224 became a resize of the images to " \
           "3,224,224 (dataset.image_size)" in result.notes


def test_binary_layers_binarised_weights_are_not_reported_as_frozen():
    """NNC gives Wb (the binarised weights, worked out at every step) learning-rate multiplier 0."""
    result = import_sdcproj(SAMPLES / "binary_connect_mnist_LeNet.sdcproj")
    assert not [note for note in result.notes if "learning-rate multiplier" in note]
    assert "transfer" not in result.project.sections.get("training", {})
