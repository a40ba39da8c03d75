"""Detection's pure parts: COCO mAP against hand-computed values, CenterNet decoding and NMS, box pictures,
and the synthetic digits dataset (boxes hugging the ink, determinism, the documented file layout)."""

import csv

import numpy as np
import pytest
import torch
from PIL import Image

from runtime.detection import average_precision, box_iou, boxes_picture, decode
from runtime.detection_data import write_detection_dataset


def _truth(*rows):
    return torch.tensor(rows, dtype=torch.float32).reshape(-1, 5)


def _found(*rows):
    return torch.tensor(rows, dtype=torch.float32).reshape(-1, 6)


def test_map_of_a_hand_computed_case():
    # Class 0 only (class 1 has no truths, so COCO leaves it out of the mean). Image 0 holds truths A and
    # B, image 1 holds C, each 10 x 10. Detections by score: 0.9 on A at IoU 0.6 (true), 0.8 on empty
    # ground in image 1 (false), 0.7 on C at IoU 0.6 (true), 0.6 on B at IoU 0.4 (false at 0.5), and a
    # padding row in the truths that must be ignored.
    #   cumulative recall    1/3, 1/3, 2/3, 2/3
    #   cumulative precision 1,   1/2, 2/3, 1/2  -> made non-increasing from the right: 1, 2/3, 2/3, 1/2
    # COCO reads precision at the 101 recalls 0, 0.01, ..., 1 (the first detection reaching each):
    #   recall 0 to 0.33 (34 points) -> 1; 0.34 to 0.66 (33 points) -> 2/3; 0.67 to 1 (34 points) -> 0
    #   AP@0.5 = (34 + 33 * 2/3) / 101 = 56 / 101
    truths = [_truth([0, 0, 0, 10, 10], [0, 20, 0, 30, 10], [-1, 0, 0, 0, 0]), _truth([0, 0, 20, 10, 30])]
    detections = [_found([0, 0.9, 0, 0, 10, 6], [0, 0.6, 20, 0, 30, 4]),
                  _found([0, 0.8, 40, 40, 50, 50], [0, 0.7, 0, 20, 10, 26])]
    result = average_precision(detections, truths, classes=2)
    assert result["map_50"] == pytest.approx(56 / 101)
    assert result["ap_50"][0] == pytest.approx(56 / 101)
    assert result["ap_50"][1] is None


def test_perfect_and_missing_predictions():
    truths = [_truth([0, 3, 4, 20, 25], [1, 30, 30, 50, 60]), _truth([1, 0, 0, 8, 8])]
    perfect = [torch.cat([t[:, :1], torch.full((len(t), 1), 0.9), t[:, 1:]], 1) for t in truths]
    # pycocotools divides by (true + false positives + machine epsilon): 1 is 1 within rounding.
    result = average_precision(perfect, truths, 2)
    assert [result["map_50"], result["map_50_95"], *result["ap_50"]] == pytest.approx([1.0] * 4)
    nothing = [_found(), _found()]
    assert average_precision(nothing, truths, 2) == {"map_50": 0.0, "map_50_95": 0.0, "ap_50": [0.0, 0.0]}
    with pytest.raises(ValueError, match="no true boxes"):
        average_precision(nothing, [_truth(), _truth()], 2)
    with pytest.raises(ValueError, match="image 1 has a box of label 2"):
        average_precision(nothing, [_truth(), _truth([2, 0, 0, 1, 1])], 2)


def test_box_iou():
    a = torch.tensor([[0.0, 0, 10, 10], [5, 5, 6, 6]])
    b = torch.tensor([[0.0, 0, 10, 6], [20, 20, 30, 30], [3, 3, 3, 3]])
    assert torch.allclose(box_iou(a, b), torch.tensor([[0.6, 0, 0], [1 / 60, 0, 0]]))


def _heads():
    """One image, 2 classes on a 16 x 16 grid: three objects and a same-class duplicate two cells away."""
    heat = torch.full((1, 2, 16, 16), -10.0)
    size = torch.zeros(1, 2, 16, 16)
    offset = torch.zeros(1, 2, 16, 16)
    # (class, cell x, cell y, logit, w and h in cells, dx and dy in cells)
    for c, x, y, logit, w, h, dx, dy in [(0, 3, 4, 2.0, 4.0, 5.0, 0.25, 0.5), (1, 10, 10, 1.0, 3.0, 3.0, 0.0, 0.75),
                                         (1, 12, 3, 0.5, 2.5, 6.0, 0.5, 0.0),
                                         (0, 5, 4, 1.5, 4.0, 5.0, -0.75, 0.5)]:  # the first again, a cell off
        heat[0, c, y, x] = logit
        size[0, :, y, x] = torch.tensor([w, h])
        offset[0, :, y, x] = torch.tensor([dx, dy])
    return heat, size, offset


# At stride 4: centre (3.25, 4.5) cells = (13, 18) px, 16 x 20 px; (10, 10.75) cells = (40, 43) px, 12 x 12 px;
# (12.5, 3) cells = (50, 12) px, 10 x 24 px; the duplicate's centre (4.25, 4.5) cells = (17, 18) px, 16 x 20 px,
# overlapping the first by 12 x 20 px: IoU 240 / 400 = 0.6.
BOXES = torch.tensor([[0, torch.sigmoid(torch.tensor(2.0)), 5, 8, 21, 28],
                      [0, torch.sigmoid(torch.tensor(1.5)), 9, 8, 25, 28],
                      [1, torch.sigmoid(torch.tensor(1.0)), 34, 37, 46, 49],
                      [1, torch.sigmoid(torch.tensor(0.5)), 45, 0, 55, 24]])


def test_decode_recovers_the_boxes_and_nms_drops_the_duplicate():
    heat, size, offset = _heads()
    assert torch.allclose(decode(heat, size, offset, stride=4.0)[0], BOXES[[0, 2, 3]])
    assert torch.allclose(decode(heat, size, offset, stride=4.0, nms_iou=0.7)[0], BOXES)
    # A higher threshold and a top-k cut keep the best only.
    assert torch.allclose(decode(heat, size, offset, 4.0, threshold=0.7)[0], BOXES[[0, 2]])
    assert torch.allclose(decode(heat, size, offset, 4.0, top_k=2, nms_iou=0.7)[0], BOXES[[0, 1]])


def test_decode_keeps_only_local_maxima_and_batches():
    heat, size, offset = _heads()
    heat[0, 0, 4, 4] = 1.8  # between the first peak and its duplicate: lower than one, so neither it nor the
    # duplicate it outscores is a peak; max-pooling drops them, not NMS
    heat[0, 1, 4, 3] = 1.9  # the other class at the first peak's cell: a peak of its own, kept by class-wise NMS
    size[0, :, 4, 3] = torch.tensor([4.0, 5.0])
    found = decode(torch.cat([heat, torch.full_like(heat, -10)]), size.repeat(2, 1, 1, 1), offset.repeat(2, 1, 1, 1),
                   stride=4.0, nms_iou=0.9)
    assert found[0][:, 0].tolist() == [0, 1, 1, 1]
    assert torch.allclose(found[0][:, 1], torch.sigmoid(torch.tensor([2.0, 1.9, 1.0, 0.5])))
    assert found[1].shape == (0, 6)
    with pytest.raises(ValueError, match=r"must both be \[2, 2, 16, 16\]"):
        decode(torch.cat([heat, heat]), size, offset, stride=4.0)


def test_boxes_picture_draws_both_kinds_enlarged():
    image = np.zeros((64, 64), dtype=np.uint8)
    picture = boxes_picture(image, _truth([0, 4, 4, 20, 20], [-1, 0, 0, 0, 0]), _found([1, 0.75, 30, 30, 50, 50]),
                            ("zero", "one"))
    assert picture.shape == (384, 384, 3) and picture.dtype == np.uint8
    colours = {tuple(c) for c in picture.reshape(-1, 3)}
    assert (0, 158, 115) in colours and (213, 94, 0) in colours
    assert tuple(picture[4 * 6, 10 * 6]) == (0, 158, 115)  # the truth's top edge, at 6 x


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    out = tmp_path_factory.mktemp("digits")
    return out, write_detection_dataset(out, count=40, seed=3, classes=(3, 7, 8))


def _boxes(path):
    with open(path, newline="") as handle:
        return [list(map(int, row)) for row in list(csv.reader(handle))[1:]]


def test_boxes_hug_the_ink(dataset):
    out, _ = dataset
    objects = 0
    for i in range(40):
        image = np.asarray(Image.open(out / f"images/{i:05d}.png"))
        assert image.shape == (64, 64) and image.dtype == np.uint8
        covered = np.zeros_like(image, dtype=bool)
        boxes = _boxes(out / f"boxes/{i:05d}.csv")
        assert 1 <= len(boxes) <= 5
        for label, x, y, w, h in boxes:
            assert label in (0, 1, 2) and 0 <= x and x + w <= 64 and 0 <= y and y + h <= 64
            window = image[y:y + h, x:x + w]
            # Every edge row and column of the box holds ink: the box is the tightest around it.
            assert window[0].any() and window[-1].any() and window[:, 0].any() and window[:, -1].any()
            covered[y:y + h, x:x + w] = True
        assert not image[~covered].any()
        xyxy = torch.tensor([[x, y, x + w, y + h] for _, x, y, w, h in boxes], dtype=torch.float32)
        assert (box_iou(xyxy, xyxy).triu(1) < 0.3).all()
        objects += len(boxes)
    assert objects > 40 * 2


def test_files_have_the_documented_layout(dataset):
    out, written = dataset
    assert written.classes == ("3", "7", "8")
    assert (out / "labels.txt").read_text() == "3\n7\n8\n"
    lists = {}
    for name in ("train.csv", "validation.csv"):
        with open(out / name, newline="") as handle:
            rows = list(csv.reader(handle))
        assert rows[0] == ["x:image", "b:boxes"]
        lists[name] = rows[1:]
        for image, boxes in rows[1:]:
            assert (out / image).is_file() and (out / boxes).is_file()
            assert (out / boxes).read_text().splitlines()[0] == "label,x,y,width,height"
    assert (len(lists["train.csv"]), len(lists["validation.csv"])) == (32, 8)
    images = sorted(image for rows in lists.values() for image, _ in rows)
    assert images == [f"images/{i:05d}.png" for i in range(40)]
    assert all(boxes == image.replace("images", "boxes").replace(".png", ".csv")
               for rows in lists.values() for image, boxes in rows)


def test_the_same_seed_writes_the_same_files(dataset, tmp_path):
    out, _ = dataset
    write_detection_dataset(tmp_path / "again", count=40, seed=3, classes=(3, 7, 8))
    write_detection_dataset(tmp_path / "other", count=40, seed=4, classes=(3, 7, 8))
    files = sorted(p.relative_to(out) for p in out.rglob("*") if p.is_file())
    assert all((tmp_path / "again" / f).read_bytes() == (out / f).read_bytes() for f in files)
    assert (tmp_path / "other/boxes/00000.csv").read_bytes() != (out / "boxes/00000.csv").read_bytes()


def test_bad_arguments_say_what_to_give():
    with pytest.raises(ValueError, match="classes must be distinct digits"):
        write_detection_dataset("unused", classes=(3, 3))
    with pytest.raises(ValueError, match=r"scale .* <= size \(32\)"):
        write_detection_dataset("unused", size=32, scale=(14, 40))


def test_nms_matches_plain_greedy_suppression():
    from runtime.detection import _nms

    generator = torch.Generator().manual_seed(0)
    corner = torch.rand(60, 2, generator=generator) * 40
    boxes = torch.cat([corner, corner + 5 + torch.rand(60, 2, generator=generator) * 15], 1)
    labels = torch.randint(0, 2, (60,), generator=generator).float()
    iou = box_iou(boxes, boxes)
    kept: list[int] = []
    for j in range(60):  # best first, as decode orders them
        if not any(labels[i] == labels[j] and iou[i, j] > 0.5 for i in kept):
            kept.append(j)
    assert torch.nonzero(_nms(boxes, labels, 0.5)).flatten().tolist() == kept
    assert 10 < len(kept) < 60
