"""The real designer in a real window on a virtual screen, driven by real mouse and keyboard events."""

import shutil

import pytest

import graphcompiler as gc
from conftest import ROOT
from graphcompiler.importers import import_sdcproj
from gui_driver import Designer, VirtualScreen, centre, input_pin, output_pin, require_tools


@pytest.fixture
def screen():
    require_tools()
    display = VirtualScreen()
    yield display
    display.close()


def _find(app: Designer, layer_type: str) -> dict:
    """Type the layer's name into the palette's filter box, so its entry comes to the top."""
    app.replace_text(app.state()["palette_filter"], layer_type)
    app.wait(lambda s: s["palette_filter_text"] == layer_type, f"the filter to read {layer_type}")
    app.settle()  # the palette is laid out again a frame after the filter changes
    return app.state()


def _drop(app: Designer, layer_type: str, at: tuple[float, float], node_id: str) -> dict:
    """Find the layer in the palette and drag it onto the canvas."""
    state = _find(app, layer_type)
    x0, y0 = state["canvas"][:2]
    app.drag(centre(state["palette"][layer_type]), (x0 + at[0], y0 + at[1]))
    return app.wait(lambda s: node_id in s["nodes"] and s["nodes"][node_id]["rect"][2] > 0, f"{node_id} to appear")


def _link(app: Designer, src: str, dst: str, port: str = "x") -> dict:
    state = app.state()
    app.drag(output_pin(state, src), input_pin(state, dst, port))
    return app.wait(lambda s: s["status"].startswith(f"done: connect {src} -> {dst}"), f"link {src} -> {dst}")


def test_build_a_small_unet_with_mouse_and_keyboard_and_save_it(screen, tmp_path):
    path = tmp_path / "small_unet.graph.yaml"
    app = Designer(screen, path, tmp_path)
    try:
        for layer_type, at, node_id in [("Input", (30, 30), "input1"), ("Convolution", (200, 30), "conv1"),
                                        ("MaxPooling", (400, 30), "pool1"), ("Convolution", (580, 30), "conv2"),
                                        ("Unpooling", (780, 30), "up1"), ("Concatenate", (400, 260), "cat1"),
                                        ("Convolution", (600, 260), "conv3")]:
            _drop(app, layer_type, at, node_id)
        for src, dst, port in [("input1", "conv1", "x"), ("conv1", "pool1", "x"), ("pool1", "conv2", "x"),
                               ("conv2", "up1", "x"), ("conv1", "cat1", "x0"), ("up1", "cat1", "x1"),
                               ("cat1", "conv3", "x")]:
            _link(app, src, dst, port)
        state = app.state()
        assert state["problems"] == ["cat1 (Concatenate): inputs differ in height: 26 vs 22 (x0 vs x1) "
                                     "(inputs: x0 64x26x26, x1 64x22x22)"]
        assert state["nodes"]["cat1"]["error"]

        app.click(*centre(state["nodes"]["conv2"]["rect"][:2] + [state["nodes"]["conv2"]["rect"][2], 14]))
        state = app.wait(lambda s: s["properties"].get("id") and "pad" in s["properties"], "conv2's properties")
        app.replace_text(state["properties"]["pad"], "1, 1")
        app.key("Return")
        state = app.wait(lambda s: s["nodes"]["conv2"]["texts"][1] == "64x13x13", "the new pad to take effect")
        assert state["problems"] == [] and not state["nodes"]["cat1"]["error"]
        assert state["nodes"]["cat1"]["texts"][1] == "128x26x26"
        assert state["nodes"]["conv3"]["texts"][1] == "64x24x24"

        canvas = app.state()["canvas"]
        app.click(canvas[0] + 500, canvas[1] + 600)  # leave the text field, so keys go to the editor
        app.key("ctrl+z")
        app.wait(lambda s: s["nodes"]["conv2"]["texts"][1] == "64x11x11" and s["problems"], "undo of the pad")
        app.key("ctrl+y")
        app.wait(lambda s: s["nodes"]["conv2"]["texts"][1] == "64x13x13" and not s["problems"], "redo of the pad")

        palette = _find(app, "ReLU")["palette"]["ReLU"]
        app.xdo("mousemove", *map(int, centre(palette)))
        app.xdo("click", "--repeat", "2", "--delay", "80", "1")
        state = app.wait(lambda s: "relu1" in s["nodes"] and s["nodes"]["relu1"]["rect"][2] > 0, "a double-click add")
        rect = state["nodes"]["relu1"]["rect"]
        app.click(rect[0] + rect[2] / 2, rect[1] + 7)
        app.key("Delete")
        app.wait(lambda s: "relu1" not in s["nodes"], "Delete to remove the node")

        app.key("ctrl+s")
        app.wait(lambda s: not s["dirty"], "the save")
    finally:
        app.screenshot("designer-small-unet.png")  # on failure too: it shows what the window looked like
        app.close()

    project = gc.load(path)
    assert gc.validate(project) == []
    graph = project.network()
    assert {(n.id, n.type) for n in graph.nodes()} == {
        ("input1", "Input"), ("conv1", "Convolution"), ("pool1", "MaxPooling"), ("conv2", "Convolution"),
        ("up1", "Unpooling"), ("cat1", "Concatenate"), ("conv3", "Convolution")}
    assert {(l.src, l.dst, l.dst_port) for l in graph.links()} == {
        ("input1", "conv1", "x"), ("conv1", "pool1", "x"), ("pool1", "conv2", "x"), ("conv2", "up1", "x"),
        ("conv1", "cat1", "x0"), ("up1", "cat1", "x1"), ("cat1", "conv3", "x")}
    assert graph.node("conv2").params == {"pad": [1, 1]}
    assert gc.infer_shapes(graph)["conv3"].outputs["y"] == (64, 24, 24)


def test_vgg16_opens_with_every_node_and_its_shape_and_no_problems(screen, tmp_path):
    path = tmp_path / "vgg16.graph.yaml"
    shutil.copy(ROOT / "examples/vgg16.graph.yaml", path)
    app = Designer(screen, path, tmp_path)
    try:
        state = app.wait(lambda s: len(s["nodes"]) == 41, "all 41 VGG16 nodes")
        app.click(*centre(state["statistics_tab"]))
        app.wait(lambda s: s["statistics"] == ["parameters: 138,357,544", "multiply-adds: 15,470,264,320"],
                 "the statistics tab")
    finally:
        app.screenshot("designer-vgg16.png")
        app.close()
    shapes = gc.infer_shapes(gc.load(path).network())
    assert state["problems"] == []
    for node_id, node in state["nodes"].items():
        assert node["texts"][1] == shapes[node_id].describe(), node_id
        assert not node["error"], node_id
    assert state["nodes"]["fc6"]["texts"] == ["Affine: 4096", "4096"]
    assert state["nodes"]["pool5"]["texts"][1] == "512x7x7"


def test_a_projects_blocks_are_in_the_palette_and_can_be_dropped_and_linked(screen, tmp_path):
    path = tmp_path / "resnet18.graph.yaml"
    shutil.copy(ROOT / "examples/resnet18.graph.yaml", path)
    app = Designer(screen, path, tmp_path)
    try:
        _drop(app, "basic_block", (300, 650), "basic_block1")
        state = _link(app, "layer4_1", "basic_block1")
        assert state["problems"] == ["basic_block1 (basic_block): inside block basic_block: add (Add2): inputs differ "
                                     "in channels: 64 vs 512 (inputs: x0 64x7x7, x1 512x7x7) (inputs: x 512x7x7)"]
        app.replace_text(app.state()["properties"]["channels"], "512")
        app.key("Return")
        state = app.wait(lambda s: s["nodes"]["basic_block1"]["texts"] == ["basic_block", "512x7x7"],
                         "the block's shape once its channels match")
        assert state["problems"] == []
    finally:
        app.screenshot("designer-resnet18-block.png")
        app.close()


NNC_SAMPLES = ROOT.parent / "shared" / "nnc-samples"


@pytest.mark.skipif(not NNC_SAMPLES.is_dir(), reason=f"NNC's sample projects are not at {NNC_SAMPLES}")
def test_an_nnc_project_opens_imported_and_saves_as_graph_yaml(screen, tmp_path):
    source = tmp_path / "LeNet.sdcproj"
    shutil.copy(NNC_SAMPLES / "LeNet.sdcproj", source)
    expected = gc.infer_shapes(import_sdcproj(source).project.network())
    app = Designer(screen, source, tmp_path)
    try:
        state = app.wait(lambda s: len(s["nodes"]) == len(expected), f"the {len(expected)} imported nodes")
        assert state["dirty"] and state["problems"] == []
        for node_id, node in state["nodes"].items():
            assert node["texts"][1] == expected[node_id].describe(), node_id
        canvas = state["canvas"]
        app.click(canvas[0] + 600, canvas[1] + 500)
        app.key("ctrl+s")
        app.wait(lambda s: not s["dirty"], "the save")
    finally:
        app.screenshot("designer-nnc-lenet.png")
        app.close()
    saved = gc.load(tmp_path / "LeNet.graph.yaml")
    assert gc.validate(saved) == [] and saved.network().node("Convolution").params["out_channels"] == 16
