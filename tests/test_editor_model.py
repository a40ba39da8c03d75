"""The designer's editor model, without a screen: every command, its undo, refusals, shape refresh."""

import pytest

import graphcompiler as gc
from conftest import ROOT
from designer.model import EditorModel
from graphcompiler.layout import auto_layout


def _model_with_conv() -> EditorModel:
    model = EditorModel()
    model.add_node("Input", (0, 0))
    model.set_param("input1", "shape", [3, 32, 32])
    model.add_node("Convolution", (200, 0))
    model.connect("input1", None, "conv1", None)
    return model


def test_add_node_gives_readable_unique_ids_and_undo_removes_it():
    model = EditorModel()
    assert [model.add_node("Convolution") for _ in range(3)] == ["conv1", "conv2", "conv3"]
    assert model.add_node("Input") == "input1"
    assert model.graph.node("input1").params == {"shape": [1, 28, 28]}
    assert model.undo() == "add input1"
    assert "input1" not in model.graph and model.can_redo
    assert model.redo() == "add input1"
    assert "input1" in model.graph


def test_shapes_refresh_after_every_edit_and_undo():
    model = _model_with_conv()
    assert model.shapes["conv1"].outputs["y"] == (64, 30, 30)
    model.set_param("conv1", "pad", [1, 1])
    assert model.shapes["conv1"].outputs["y"] == (64, 32, 32)
    assert model.graph.node("conv1").params == {"pad": [1, 1]}
    model.set_param("conv1", "pad", [0, 0])
    assert model.graph.node("conv1").params == {}, "a default value is not stored"
    model.undo()
    assert model.shapes["conv1"].outputs["y"] == (64, 32, 32)
    assert model.cost.params == 64 * 3 * 9 + 64


def test_bad_param_values_are_refused_with_the_range_and_change_nothing():
    model = _model_with_conv()
    revision, history = model.revision, model.undo_label
    for name, value, message in [("kernel", [0, 3], "one or two positive ints"), ("out_channels", 2.5, "a positive int"),
                                 ("bias", "yes", "true or false"), ("nope", 1, "no param 'nope'")]:
        with pytest.raises(gc.GraphError, match=message):
            model.set_param("conv1", name, value)
    assert model.revision == revision and model.undo_label == history


def test_links_refuse_cycles_and_taken_inputs_and_undo_restores_them():
    model = _model_with_conv()
    model.add_node("ReLU")
    model.connect("conv1", None, "relu1", None)
    model.add_node("Add2")
    model.connect("relu1", None, "add1", "x0")
    model.add_node("ReLU")
    model.connect("add1", None, "relu2", None)
    with pytest.raises(gc.GraphError, match="cycle: add1 -> relu2 -> add1"):
        model.connect("relu2", None, "add1", "x1")
    with pytest.raises(gc.GraphError, match="already fed by 'conv1'"):
        model.connect("input1", None, "relu1", None)
    model.disconnect("relu1", "x")
    assert model.graph.source_of("relu1", "x") is None
    assert model.shapes["relu1"].error is not None
    model.undo()
    assert model.graph.source_of("relu1", "x") == ("conv1", "y")


def test_delete_removes_nodes_with_their_links_and_undo_restores_order():
    model = _model_with_conv()
    model.add_node("ReLU")
    model.connect("conv1", None, "relu1", None)
    order = [n.id for n in model.graph.nodes()]
    model.select(["conv1"])
    model.delete_selection()
    assert "conv1" not in model.graph and model.graph.links() == []
    assert model.selection == []
    model.undo()
    assert [n.id for n in model.graph.nodes()] == order and len(model.graph.links()) == 2
    model.delete(links=[("relu1", "x")])
    assert len(model.graph.links()) == 1


def test_move_is_one_step_and_a_no_op_records_nothing():
    model = _model_with_conv()
    label = model.undo_label
    model.move({"conv1": (200, 0)})
    assert model.undo_label == label
    model.move({"conv1": (300, 50), "input1": (10, 10)})
    assert model.graph.node("conv1").pos == (300, 50)
    model.undo()
    assert model.graph.node("conv1").pos == (200, 0) and model.graph.node("input1").pos == (0, 0)


def test_rename_keeps_ids_unique_and_links_intact():
    model = _model_with_conv()
    model.rename("input1", "x")
    assert model.graph.source_of("conv1", "x") == ("x", "y")
    assert [n.id for n in model.graph.nodes()] == ["x", "conv1"]
    for bad in ("conv1", "1x", "forward"):
        with pytest.raises(gc.GraphError):
            model.rename("x", bad)
    model.undo()
    assert "input1" in model.graph and "x" not in model.graph


def test_copy_paste_takes_internal_links_only_and_fresh_ids():
    model = _model_with_conv()
    model.add_node("ReLU", (400, 0))
    model.connect("conv1", None, "relu1", None)
    model.copy(["conv1", "relu1"])
    pasted = model.paste()
    assert pasted == ["conv2", "relu2"] and model.selection == pasted
    assert model.graph.source_of("relu2", "x") == ("conv2", "y")
    assert model.graph.source_of("conv2", "x") is None, "the link from outside the copy is not pasted"
    assert model.graph.node("conv2").pos == (240, 40)
    model.undo()
    assert "conv2" not in model.graph


def test_concatenate_losing_ports_drops_their_links_in_the_same_step():
    model = _model_with_conv()
    model.add_node("Concatenate")
    model.set_param("cat1", "num_inputs", 3)
    for port in ("x0", "x1", "x2"):
        model.connect("conv1", None, "cat1", port)
    assert model.shapes["cat1"].outputs["y"] == (192, 30, 30)
    model.set_param("cat1", "num_inputs", 2)
    assert sorted(model.graph.inputs_of("cat1")) == ["x0", "x1"]
    model.undo()
    assert sorted(model.graph.inputs_of("cat1")) == ["x0", "x1", "x2"]


def test_problems_list_root_causes_only():
    model = _model_with_conv()
    model.set_param("conv1", "kernel", [40, 40])
    model.add_node("ReLU")
    model.connect("conv1", None, "relu1", None)
    (problem,) = model.problems()
    assert problem.node == "conv1" and "does not fit height 32" in str(problem)


def test_select_all_and_box_select():
    model = _model_with_conv()
    model.select_all()
    assert model.selection == ["input1", "conv1"]
    assert model.box_select((150, -10), (250, 10)) == ["conv1"]


def test_dirty_tracks_saves_and_undo_back_to_the_saved_state(tmp_path):
    model = _model_with_conv()
    assert model.dirty
    path = model.save(tmp_path / "net.graph.yaml")
    assert not model.dirty
    model.add_node("ReLU")
    assert model.dirty
    model.undo()
    assert not model.dirty
    again = EditorModel()
    again.open(path)
    assert again.graph == model.graph and not again.dirty and not again.can_undo


def test_a_file_without_positions_is_laid_out_without_overlaps(tmp_path):
    text = (ROOT / "examples/unet.graph.yaml").read_text()
    stripped = "\n".join(line.split(", pos:")[0] + ("}" if ", pos:" in line else "") for line in text.splitlines())
    path = tmp_path / "unet.graph.yaml"
    path.write_text(stripped + "\n")
    assert all(node.pos is None for node in gc.load(path).network().nodes())
    model = EditorModel()
    model.open(path)
    positions = [node.pos for node in model.graph.nodes()]
    assert None not in positions and len(set(positions)) == len(positions)
    assert model.problems() == []


def test_auto_layout_goes_left_to_right_by_depth_and_is_undoable():
    graph = gc.load(ROOT / "examples/lenet.graph.yaml").network()
    positions = auto_layout(graph)
    for link in graph.links():
        src, dst = positions[link.src], positions[link.dst]
        assert dst[0] > src[0] or dst[1] > src[1], link
    model = _model_with_conv()
    model.move({"conv1": (0, 0)})
    model.auto_layout()
    assert model.graph.node("conv1").pos[0] > model.graph.node("input1").pos[0]
    model.undo()
    assert model.graph.node("conv1").pos == (0, 0)


def test_rename_keeps_the_selection_and_empty_deletes_record_nothing():
    model = _model_with_conv()
    model.select(["conv1"])
    model.rename("conv1", "c")
    assert model.selection == ["c"]
    label = model.undo_label
    model.delete(links=[("c", "nope")])
    assert model.undo_label == label


def test_each_network_of_a_project_is_edited_with_its_own_history():
    model = EditorModel(gc.load(ROOT / "examples/dcgan.graph.yaml"))
    assert model.network == "generator"
    model.set_param("deconv1", "out_channels", 256)
    model.switch_network("discriminator")
    assert "conv4" in model.graph and not model.can_undo
    assert model.shapes["conv4"].outputs["y"] == (1, 1, 1)
    model.add_node("ReLU")
    model.switch_network("generator")
    assert model.undo() == "set deconv1.out_channels"
    assert model.project.networks["discriminator"].node("relu1")
    with pytest.raises(gc.GraphError, match="no network 'critic'"):
        model.switch_network("critic")


def test_split_outputs_link_by_port_and_fewer_outputs_drop_their_links():
    model = _model_with_conv()
    model.add_node("Split")
    model.connect("conv1", None, "split1", None)
    model.set_param("split1", "num_outputs", 4)
    model.add_node("Add2")
    model.connect("split1", "y0", "add1", "x0")
    model.connect("split1", "y3", "add1", "x1")
    assert model.shapes["add1"].outputs["y"] == (16, 30, 30)
    model.set_param("split1", "num_outputs", 2)
    assert model.graph.source_of("add1", "x1") is None and model.graph.source_of("add1", "x0") == ("split1", "y0")
    model.undo()
    assert model.graph.source_of("add1", "x1") == ("split1", "y3")


def test_settings_edits_are_checked_and_undoable():
    model = EditorModel(gc.load(ROOT / "examples/lenet.graph.yaml"))
    model.set_setting("training", "optimizer.lr", 0.01)
    model.set_setting("training", "augmentation.mixup.alpha", 0.2)
    assert model.project.sections["training"]["augmentation"]["mixup"] == {"alpha": 0.2} and model.dirty
    with pytest.raises(gc.GraphError, match=r"training\.optimizer\.lr"):
        model.set_setting("training", "optimizer.lr", -1.0)
    assert model.project.sections["training"]["optimizer"]["lr"] == 0.01
    model.undo()
    model.undo()
    assert model.project.sections["training"]["optimizer"]["lr"] == 0.002 and not model.dirty
    model.redo()
    assert model.project.sections["training"]["optimizer"]["lr"] == 0.01


def test_opening_another_project_never_repeats_a_revision_a_view_has_shown():
    model = EditorModel(gc.load(ROOT / "examples/lenet.graph.yaml"))
    seen = model.revision
    model.reset(gc.load(ROOT / "examples/mlp.graph.yaml"))
    assert model.revision > seen
