"""CenterNet-style detection: targets made from boxes, boxes that move with the image, box files read in both
formats, the task read from the wiring, and the example finding digits on the synthetic set."""

import math
import time

import numpy as np
import pytest
import torch
from PIL import Image

import graphcompiler as gc
from conftest import ROOT
from graphcompiler.layers.modules.detection import BoxTargets
from runtime.augment import Augmenter
from runtime.csvdata import CsvDataset, DataError, ImageOptions
from runtime.data import bind
from runtime.detection_data import _grid_targets, write_detection_dataset
from runtime.pictures import PictureOptions
from runtime.runs import evaluate_run
from runtime.settings import AUGMENTATION, read
from runtime.tasks import task_of
from runtime.training import train


def test_box_targets_peak_at_the_centre_with_size_offset_and_mask():
    boxes = torch.full((1, 3, 5), -1.0)
    boxes[0, 0] = torch.tensor([2, 8, 8, 24, 18])  # centre (16, 13) px: cell (row 3, column 4), offset (0, 0.25)
    heatmap, size, offset, mask = BoxTargets(4, 0.7)(boxes, torch.zeros(1, 3, 16, 16))
    assert heatmap[0, 2, 3, 4] == 1 and heatmap[0, 2].eq(1).sum() == 1 and heatmap[0, :2].eq(0).all()
    assert size[0, :, 3, 4].tolist() == [4.0, 2.5] and offset[0, :, 3, 4].tolist() == [0.0, 0.25]
    assert mask.sum() == 1 and mask[0, 0, 3, 4] == 1 and size.abs().sum() == 6.5
    # CenterNet's radius for a 3 x 4 cell box at IoU 0.7, its third case (one corner in, one out):
    # (-2 * 0.7 * 7 + sqrt((2 * 0.7 * 7)^2 + 4 * 4 * 0.7 * 0.3 * 12)) / 2 = (-9.8 + sqrt(136.36)) / 2 = 0.9386.
    assert BoxTargets.gaussian_radius(torch.tensor(3.0), torch.tensor(4.0), 0.7).item() == pytest.approx(0.9386, abs=1e-4)
    big = torch.tensor([[[0, 0, 0, 40, 40]]], dtype=torch.float)
    heatmap = BoxTargets(4, 0.7)(big, torch.zeros(1, 1, 16, 16))[0]
    radius = math.floor(BoxTargets.gaussian_radius(torch.tensor(10.0), torch.tensor(10.0), 0.7).item())
    sigma = (2 * radius + 1) / 6
    assert heatmap[0, 0, 5, 5 + radius].item() == pytest.approx(math.exp(-radius ** 2 / (2 * sigma ** 2)), rel=1e-5)
    assert radius > 1 and heatmap[0, 0, 5, 5 + radius + 1] == 0


def _ink_box(image: torch.Tensor) -> list[float]:
    rows, cols = (image > 0.5).nonzero(as_tuple=True)
    return [cols.min().item(), rows.min().item(), cols.max().item() + 1, rows.max().item() + 1]


@pytest.mark.parametrize("settings", [{"flip_x": True}, {"flip_y": True}, {"shift": 6}, {"scale": 0.3},
                                      {"flip_x": True, "scale": 0.2, "shift": 4}])
def test_boxes_move_with_the_image_under_augmentation(settings):
    """Each box is drawn as a filled rectangle; after augmentation it must still frame its rectangle."""
    rectangles = [(5, 1, 10, 20, 30), (2, 30, 40, 60, 52), (7, 44, 6, 58, 20)]
    images = torch.zeros(16, len(rectangles), 64, 64)
    boxes = torch.full((16, 4, 5), -1.0)
    for k, (label, x0, y0, x1, y1) in enumerate(rectangles):
        images[:, k, y0:y1, x0:x1] = 1
        boxes[:, k] = torch.tensor([label, x0, y0, x1, y1], dtype=torch.float)
    augmenter = Augmenter(read(settings, AUGMENTATION, "augmentation"), ["x"], [], ["b"])
    out = augmenter({"x": images, "b": boxes}, torch.Generator().manual_seed(0))
    moved = 0
    for n in range(16):
        for k, (label, *_) in enumerate(rectangles):
            if out["b"][n, k, 0] < 0:
                continue  # pushed more than half out of the image: dropped as padding
            assert out["b"][n, k, 0] == label
            assert out["b"][n, k, 1:].tolist() == pytest.approx(_ink_box(out["x"][n, k]), abs=1.01)
            moved += out["b"][n, k, 1:].tolist() != boxes[n, k, 1:].tolist()
        assert out["b"][n, 3].eq(-1).all()
    assert moved >= 16


def _image_with_boxes(root, name, box_text, size=(40, 20)):
    Image.new("L", size).save(root / f"{name}.png")
    (root / f"{name}.{'csv' if box_text.startswith('label') else 'txt'}").write_text(box_text)


def test_box_files_in_both_formats_become_input_pixel_boxes_padded_to_the_input(tmp_path):
    _image_with_boxes(tmp_path, "a", "label,x,y,width,height\n1,4,2,10,6\n0,0,0,40,20\n")
    _image_with_boxes(tmp_path, "b", "3 0.5 0.5 0.25 0.5\n")  # YOLO: centre and size as fractions of the image
    (tmp_path / "list.csv").write_text("x:image,b:boxes\na.png,a.csv\nb.png,b.txt\n")
    dataset = CsvDataset(tmp_path / "list.csv", ImageOptions(size=(10, 20)))  # height halved, width halved
    assert dataset.shapes["b"] == (2, 5)
    assert dataset[0]["b"].tolist() == [[1, 2, 1, 7, 4], [0, 0, 0, 20, 10]]
    assert dataset[1]["b"].tolist() == [[3, 7.5, 2.5, 12.5, 7.5], [-1, -1, -1, -1, -1]]
    graph = gc.load(ROOT / "examples/centernet.graph.yaml").network()
    graph.node("x").params["shape"] = [1, 10, 20]
    binding = bind(graph, dataset, {})
    assert binding.batch({"x": torch.zeros(2, 1, 10, 20), "b": torch.stack([dataset[0]["b"], dataset[1]["b"]])}
                         )["b"].shape == (2, 8, 5)


def test_a_bad_box_row_is_named_by_file_and_line(tmp_path):
    _image_with_boxes(tmp_path, "a", "label,x,y,width,height\n1,4,2,10,6\n2,4,two,1,1\n")
    (tmp_path / "list.csv").write_text("x:image,b:boxes\na.png,a.csv\n")
    with pytest.raises(DataError, match=r"names a box file whose line 3, '2,4,two,1,1', is not a box") as caught:
        CsvDataset(tmp_path / "list.csv")
    assert "list.csv:2: column 2: 'a.csv'" in str(caught.value)


def test_the_detection_task_is_read_from_the_wiring_and_a_missing_head_is_named():
    graph = gc.load(ROOT / "examples/centernet.graph.yaml").network()
    task = task_of(graph)
    assert (task.kind, task.classes, task.data_inputs, task.label_inputs) == ("detection", 10, ("x",), ("b",))
    assert (task.detection.heatmap, task.detection.size, task.detection.offset, task.detection.stride) == (
        "heatmap", "size", "offset", 4)
    graph.remove_node("offset_loss")
    with pytest.raises(gc.GraphError, match="no offset head"):
        task_of(graph)


def test_centernet_finds_the_digits_of_the_synthetic_set(tmp_path, one_thread):
    made = write_detection_dataset(tmp_path / "data/detection", count=800)
    project = gc.load(ROOT / "examples/centernet.graph.yaml")
    project.sections["training"]["epochs"] = 8
    started = time.perf_counter()
    result = train(project, tmp_path / "run", base_dir=tmp_path)
    print(f"CenterNet on {len(made.classes)} digit classes: mAP@0.5 {result['map_50']:.3f}, "
          f"mAP@0.5:0.95 {result['map_50_95']:.3f} in {time.perf_counter() - started:.0f} s")
    assert result["map_50"] >= 0.8
    again = evaluate_run(tmp_path / "run", pictures=PictureOptions(count=0))
    assert again["map_50"] == pytest.approx(result["map_50"])


def test_the_nnc_grid_layout_puts_each_box_at_its_cell_and_anchor():
    anchors = np.array([[0.1, 0.1], [0.3, 0.2]])  # fractions of the image, by area
    boxes = np.array([[3, 0.0, 0.0, 0.1, 0.1],  # centre (0.05, 0.05) of a 4 x 4 grid: cell (0, 0), the smaller anchor
                      [1, 0.5, 0.5, 0.3, 0.2]])  # centre (0.65, 0.6): cell (row 2, column 2), the larger anchor
    label, region = _grid_targets(boxes, anchors, 4)
    assert label[0, 0, 0] == 3 and label[1, 2, 2] == 1 and (label >= 0).sum() == 2
    assert region[0, 0, 0].tolist() == pytest.approx([0.2, 0.2, math.log(0.4), math.log(0.4)])
    assert region[1, 2, 2].tolist() == pytest.approx([0.6, 0.4, math.log(1.2), math.log(0.8)])


def _tiny_detection_project(tmp_path, box_text: str, **training) -> gc.Project:
    _image_with_boxes(tmp_path, "a", box_text, size=(64, 64))
    (tmp_path / "list.csv").write_text("x:image,b:boxes\na.png,a.csv\na.png,a.csv\n")
    project = gc.load(ROOT / "examples/centernet.graph.yaml")
    project.sections["dataset"] = {"training": "list.csv", "validation": "list.csv"}
    project.sections["training"].update(epochs=1, **training)
    return project


def test_a_box_of_a_class_the_detector_has_not_is_refused_before_training(tmp_path):
    project = _tiny_detection_project(tmp_path, "label,x,y,width,height\n12,4,2,10,6\n")
    with pytest.raises(DataError, match=r"list.csv:2: column 2: 'a.csv' names a box file with a box of class 12, "
                                        r"but the network \(loss 'heatmap_loss'\) has 10 classes"):
        train(project, tmp_path / "run", base_dir=tmp_path)
    assert not (tmp_path / "run").exists()


def test_mixup_is_refused_for_a_detector(tmp_path):
    project = _tiny_detection_project(tmp_path, "label,x,y,width,height\n1,4,2,10,6\n",
                                      augmentation={"mixup": {"alpha": 0.2}})
    with pytest.raises(gc.GraphError, match="mixup blends two images"):
        train(project, tmp_path / "run", base_dir=tmp_path)
