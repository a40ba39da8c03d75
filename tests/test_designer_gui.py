"""The real designer in a real window on a virtual screen, driven by real mouse and keyboard events."""

import shutil

import pytest

import graphcompiler as gc
from conftest import ROOT, NNC_SAMPLES, needs_nnc_samples
from graphcompiler.importers import import_sdcproj
from graphgen import resnet101
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


def _open_example(screen, tmp_path, example: str) -> tuple:
    """A copy of an example project, open in the designer."""
    path = tmp_path / example.split("/")[-1]
    shutil.copy(ROOT / example, path)
    return path, Designer(screen, path, tmp_path)


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
        app.replace_text(state["properties"]["pad"], "1, 1, 1")
        app.key("Return")
        state = app.wait(lambda s: "pad" in s["refused"], "the refusal beside the field")
        assert "conv2.pad" in state["refused"]["pad"] and state["status"].startswith("refused")
        app.replace_text(state["properties"]["pad"], "1, 1")
        app.key("Return")
        state = app.wait(lambda s: s["nodes"]["conv2"]["texts"][1] == "64x13x13", "the new pad to take effect")
        assert state["problems"] == [] and not state["nodes"]["cat1"]["error"] and state["refused"] == {}
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
    path, app = _open_example(screen, tmp_path, "examples/vgg16.graph.yaml")
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
    path, app = _open_example(screen, tmp_path, "examples/resnet18.graph.yaml")
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




@needs_nnc_samples
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


def _inside(rect: list[float], area: list[float]) -> bool:
    return (area[0] <= rect[0] and rect[0] + rect[2] <= area[0] + area[2] and area[1] <= rect[1]
            and rect[1] + rect[3] <= area[1] + area[3])


@pytest.mark.parametrize("name", ["unet", "vgg16"])
def test_fit_shows_every_node_inside_the_canvas(screen, tmp_path, name):
    path, app = _open_example(screen, tmp_path, f"examples/{name}.graph.yaml")
    count = len(gc.load(path).network())
    try:
        state = app.wait(lambda s: len(s["nodes"]) == count and s["zoom"] < 1, "the network fitted")
        assert all(_inside(node["rect"], state["canvas"]) for node in state["nodes"].values())
        canvas = state["canvas"]
        app.xdo("mousemove", int(canvas[0] + 300), int(canvas[1] + 300))
        app.key("ctrl+equal", "ctrl+equal", "ctrl+equal")
        state = app.wait(lambda s: s["zoom"] > state["zoom"], "the zoom in")
        assert not all(_inside(node["rect"], state["canvas"]) for node in state["nodes"].values())
        app.key("f")
        state = app.wait(lambda s: all(_inside(n["rect"], s["canvas"]) for n in s["nodes"].values()), "F to fit")
    finally:
        app.screenshot(f"designer-fit-{name}.png")
        app.close()
    # Every node is drawn and none overlaps another: the boxes read back from the window.
    rects = [n["rect"] for n in state["nodes"].values()]
    assert all(r[2] > 0 and r[3] > 0 for r in rects)
    overlaps = [(a, b) for i, a in enumerate(rects) for b in rects[i + 1:]
                if a[0] < b[0] + b[2] and b[0] < a[0] + a[2] and a[1] < b[1] + b[3] and b[1] < a[1] + a[3]]
    assert overlaps == []


def test_a_345_layer_resnet101_fits_with_every_box_in_a_place_of_its_own(screen, tmp_path):
    project = resnet101()
    path = tmp_path / "resnet101.graph.yaml"
    gc.save(project, path)  # no positions: the designer lays it out
    app = Designer(screen, path, tmp_path)
    try:
        state = app.wait(lambda s: len(s["nodes"]) == 345 and s["zoom"] < 0.1, "ResNet-101 fitted", timeout=60)
        app.settle()
        state = app.state()
    finally:
        app.screenshot("designer-fit-resnet101.png")
        app.close()
    rects = {n: node["rect"] for n, node in state["nodes"].items()}
    assert all(_inside(r, state["canvas"]) and r[2] >= 1 and r[3] >= 1 for r in rects.values())
    # At 1.5% a box is 2-3 pixels and may touch its neighbour, but each has a place of its own, in link order.
    assert len({(round(r[0]), round(r[1])) for r in rects.values()}) == 345
    assert all(rects[l.src][0] < rects[l.dst][0] for l in project.network().links())


def test_ctrl_wheel_zooms_about_the_mouse_and_ctrl_0_restores_100_percent(screen, tmp_path):
    path, app = _open_example(screen, tmp_path, "examples/lenet.graph.yaml")
    try:
        state = app.wait(lambda s: len(s["nodes"]) == 10 and s["zoom"] < 1.0, "LeNet fitted")
        mouse = centre(state["nodes"]["conv2"]["rect"])
        app.xdo("mousemove", int(mouse[0]), int(mouse[1]))
        app.key("ctrl+0")
        app.wait(lambda s: s["zoom"] == 1.0, "Ctrl+0")
        app.settle()
        at_100 = app.state()
        for _ in range(2):
            app.xdo("keydown", "ctrl")
            app.settle(1)
            app.xdo("click", 5)
            app.settle(2)
            app.xdo("keyup", "ctrl")
        app.wait(lambda s: s["zoom"] == 0.75, "two wheel steps out")
        app.settle()
        # The node under the mouse stays under it, at every step.
        for state in (at_100, app.state()):
            rect = state["nodes"]["conv2"]["rect"]
            assert rect[0] <= mouse[0] <= rect[0] + rect[2] and rect[1] <= mouse[1] <= rect[1] + rect[3], rect
        app.key("ctrl+0")
        app.wait(lambda s: s["zoom"] == 1.0, "Ctrl+0 again")
        app.key("ctrl+minus")
        app.wait(lambda s: s["zoom"] == 0.9, "Ctrl+-")
    finally:
        app.screenshot("designer-wheel-zoom.png")
        app.close()


@pytest.mark.parametrize("zoom, keys", [(0.5, ["ctrl+minus"] * 4), (1.5, ["ctrl+equal"] * 2)])
def test_drop_link_and_box_select_work_zoomed(screen, tmp_path, zoom, keys):
    path = tmp_path / "zoomed.graph.yaml"
    app = Designer(screen, path, tmp_path)
    try:
        canvas = app.state()["canvas"]
        app.xdo("mousemove", int(canvas[0] + 400), int(canvas[1] + 400))
        app.key(*keys)
        app.wait(lambda s: s["zoom"] == zoom, f"zoom {zoom:.0%}")
        _drop(app, "Input", (40, 40), "input1")
        _drop(app, "ReLU", (40 + 400 * zoom, 40 + 100 * zoom), "relu1")
        state = _link(app, "input1", "relu1")
        first, second = state["nodes"]["input1"]["rect"], state["nodes"]["relu1"]["rect"]
        start = (min(first[0], second[0]) - 20, min(first[1], second[1]) - 20)
        end = (max(first[0] + first[2], second[0] + second[2]) + 20,
               max(first[1] + first[3], second[1] + second[3]) + 20)
        app.drag(start, end)
        app.wait(lambda s: sorted(s["selection"]) == ["input1", "relu1"], "the box selection")
        app.key("ctrl+s")
        app.wait(lambda s: not s["dirty"], "the save")
    finally:
        app.screenshot(f"designer-zoomed-{zoom}.png")
        app.close()
    graph = gc.load(path).network()
    assert [(l.src, l.dst) for l in graph.links()] == [("input1", "relu1")]
    # The file keeps canvas coordinates: the drop points' distance on screen over the zoom.
    (x0, y0), (x1, y1) = graph.node("input1").pos, graph.node("relu1").pos
    assert abs((x1 - x0) - 400) <= 3 / zoom + 1 and abs((y1 - y0) - 100) <= 3 / zoom + 1


def test_delete_after_clicking_a_node_then_a_link_removes_only_the_link(screen, tmp_path):
    path, app = _open_example(screen, tmp_path, "examples/lenet.graph.yaml")
    try:
        state = app.wait(lambda s: len(s["nodes"]) == 10, "LeNet")
        rect = state["nodes"]["conv1"]["rect"]
        app.click(rect[0] + rect[2] / 2, rect[1] + 6)
        app.wait(lambda s: s["selection"] == ["conv1"], "conv1 selected")
        start, end = output_pin(state, "pool1"), input_pin(state, "conv2", "x")
        app.click((start[0] + end[0]) / 2, (start[1] + end[1]) / 2)
        state = app.wait(lambda s: s["selected_links"] == [["conv2", "x"]], "the link selected")
        assert state["selection"] == []
        app.key("Delete")
        state = app.wait(lambda s: s["status"].startswith("done: delete"), "the delete")
        assert set(state["nodes"]) == {n.id for n in gc.load(path).network().nodes()}
        app.key("Escape")
        app.key("ctrl+s")
        app.wait(lambda s: not s["dirty"], "the save")
    finally:
        app.screenshot("designer-delete-link.png")
        app.close()
    graph = gc.load(path).network()
    assert len(graph) == 10 and graph.source_of("conv2", "x") is None and len(graph.links()) == 8


def test_the_palette_scrolls_under_its_filter_box_and_its_categories_fold(screen, tmp_path):
    app = Designer(screen, tmp_path / "new.graph.yaml", tmp_path)
    try:
        state = app.state()
        filter_box, relu, first = state["palette_filter"], state["palette"]["ReLU"], state["palette"]["Affine"]
        # Over an entry near the top: ReLU itself may lie below the window's edge.
        app.xdo("mousemove", int(first[0] + 20), int(first[1] + 5))
        app.xdo("click", "--repeat", "6", "--delay", "60", 5)
        state = app.wait(lambda s: s["palette"]["ReLU"][1] < relu[1] - 50, "the palette to scroll")
        assert state["palette_filter"] == filter_box
        header = state["palette_headers"]["Activation"]
        app.click(header[0] + 40, header[1] + header[3] / 2)
        state = app.wait(lambda s: not s["palette_open"]["Activation"], "Activation to fold")
        assert all(state["palette_open"][c] for c in state["palette_open"] if c != "Activation")
        _find(app, "Swish")
        state = app.wait(lambda s: s["palette_open"]["Activation"], "the filter to unfold the category it matches")
    finally:
        app.screenshot("designer-palette.png")
        app.close()


def test_a_dataset_from_folders_trains_and_predicts_with_the_class_names(screen, tmp_path):
    """From your own images to predictions: class folders become the lists, a run, and a named inference table."""
    from runtime.training import train
    from test_workbench import DIGIT_NAMES, TINY_CLASSIFIER, digit_folders

    source = digit_folders(tmp_path / "src/digits")
    path = tmp_path / "project/tiny.graph.yaml"
    path.parent.mkdir()
    path.write_text(TINY_CLASSIFIER)
    app = Designer(screen, path, tmp_path)

    def fill(field: str, text: str) -> None:
        app.press(field)
        app.xdo("type", "--delay", "12", text)
        app.wait(lambda s: s["workspace"]["texts"][field] == text, f"{field} to read {text}")

    try:
        app.tab("dataset")
        app.press("folders_open")
        fill("folders_source", str(source))
        assert app.state()["workspace"]["texts"]["folders_output"] == str(path.parent / "data/digits")
        app.press("folders_run")
        state = app.wait(lambda s: s["status"] == "done: dataset from folders digits", "the lists", timeout=60)
        assert state["workspace"]["dataset_fields"] == {"training": "data/digits/train.csv",
                                                        "validation": "data/digits/validation.csv"}
        assert state["workspace"]["dataset_labels"] == "data/digits/labels.txt" and state["dirty"]
        assert "3 classes, 12 training and 3 validation images" in state["workspace"]["folders_message"]
        app.wait(lambda s: any("fits the network" in p for p in s["workspace"]["preview_problems"]), "the preview")
        app.screenshot("tab-dataset-from-folders.png")
        app.key("ctrl+s")
        app.wait(lambda s: not s["dirty"], "the save")
        # The run is trained here, not with the Train button (other tests press it): a job process less.
        train(gc.load(path), path.parent / "runs/tiny-1", base_dir=path.parent)
        app.tab("evaluation")
        app.wait(lambda s: s["workspace"]["confusion_labels"] == sorted(DIGIT_NAMES), "the named confusion matrix")
        app.press("inference_open")
        fill("inference_input", str(source))
        app.press("inference_run")
        state = app.wait(lambda s: len(s["workspace"]["inference"]["rows"]) == 15, "the inference table", timeout=90)
        app.settle(5)
        app.screenshot("tab-evaluation-inference.png")
    finally:
        app.close()
    inference = state["workspace"]["inference"]
    assert inference["columns"][:4] == ["x:image", "y'", "y'_name", "score"]
    names = [row[2] for row in inference["rows"]]
    assert set(names) <= set(DIGIT_NAMES) and all(row[0] == "<image>" for row in inference["rows"])
    run = next((tmp_path / "project/runs").iterdir())
    assert state["workspace"]["inference_message"] == f"{run}/predictions/digits.csv: 15 row(s) (classification)"
    assert state["workspace"]["eval_tab"] == "eval_tab_inference"
