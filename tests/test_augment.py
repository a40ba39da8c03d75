"""Augmentation: cutout's exact area, mixup's matching label weights, aligned masks, untouched validation."""

import pytest
import torch
from torch.nn import functional as F

import graphcompiler as gc
from conftest import ROOT
from runtime.augment import Augmenter
from runtime.csvdata import CsvDataset
from runtime.example_data import write_dataset
from runtime.settings import AUGMENTATION, read
from runtime.supervised import batch_loss
from runtime.tasks import task_of
from runtime.training import train


def _augmenter(images=("x",), labels=(), **settings) -> Augmenter:
    return Augmenter(read(settings, AUGMENTATION, "augmentation"), list(images), list(labels))


def _rng(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("channels", [1, 3])
def test_cutout_erases_exactly_one_square_of_the_configured_size(channels):
    batch = {"x": torch.ones(64, channels, 28, 20) + torch.rand(64, channels, 28, 20)}
    out = _augmenter(cutout={"size": 6})(batch, _rng())["x"]
    erased = out == 0
    assert erased.flatten(1).sum(1).tolist() == [36 * channels] * 64
    assert torch.equal(erased, erased[:, :1].expand_as(erased))
    for mask in erased[:, 0]:
        rows, cols = mask.any(1).nonzero().flatten(), mask.any(0).nonzero().flatten()
        assert rows.max() - rows.min() == 5 and cols.max() - cols.min() == 5
    kept = ~erased
    assert torch.equal(out[kept], batch["x"][kept])


def test_several_cutout_squares_stay_inside_the_image():
    batch = {"x": torch.ones(200, 1, 10, 10)}
    out = _augmenter(cutout={"size": 4, "count": 3})(batch, _rng())["x"]
    erased = (out == 0).flatten(1).sum(1)
    assert erased.min() >= 16 and erased.max() <= 48


def test_mixup_mixes_images_and_labels_with_the_same_weight():
    graph = gc.load(ROOT / "examples/mlp.graph.yaml").network()
    model = gc.compile(graph).eval()
    task = task_of(graph)
    x, y = torch.rand(32, 64), torch.randint(0, 10, (32, 1)).float()
    mixed, mix = _augmenter(images=(), mixup={"alpha": 0.4}).mix({"x": x, "y": y}, ["x"], _rng(3))
    assert 0 < mix.weight < 1
    assert torch.allclose(mixed["x"], mix.weight * x + (1 - mix.weight) * x[mix.perm])
    assert torch.equal(mixed["y"], y)
    with torch.no_grad():
        scores = model.trace(**mixed)["fc3"]
        expected = (mix.weight * F.cross_entropy(scores, y[:, 0].long())
                    + (1 - mix.weight) * F.cross_entropy(scores, y[mix.perm, 0].long()))
        assert torch.allclose(batch_loss(model, task, mixed, mix), expected, atol=1e-6)


def test_flips_move_masks_with_their_images_and_are_exact():
    image = torch.rand(50, 1, 16, 12)
    mask = (image > 0.5).float()
    out = _augmenter(labels=("y",), flip_x=True, flip_y=True)({"x": image, "y": mask}, _rng())
    seen = set()
    for i in range(50):
        for flips in ((), (-1,), (-2,), (-2, -1)):
            candidate = image[i].flip(flips) if flips else image[i]
            if torch.allclose(out["x"][i], candidate, atol=1e-6):
                assert torch.equal(out["y"][i], mask[i].flip(flips) if flips else mask[i])
                seen.add(flips)
                break
        else:
            pytest.fail(f"sample {i} is not a flip of its input")
    assert len(seen) == 4


def test_rotation_and_scale_keep_masks_to_class_values_and_repeat_with_the_seed():
    image = torch.rand(8, 1, 32, 32)
    mask = (image > 0.5).float() * 2
    augment = _augmenter(labels=("y",), rotate=30, scale=0.2, brightness=0.1, contrast=0.1, noise=0.05)
    first = augment({"x": image, "y": mask}, _rng(7))
    again = augment({"x": image, "y": mask}, _rng(7))
    assert torch.equal(first["x"], again["x"]) and torch.equal(first["y"], again["y"])
    assert set(first["y"].unique().tolist()) <= {0.0, 2.0}
    assert not torch.equal(first["x"], image)


def test_augmentation_never_touches_validation_batches(tmp_path):
    write_dataset("digits", tmp_path / "data/digits-28", size=28, count=200)
    project = gc.load(ROOT / "examples/lenet.graph.yaml")
    project.sections["training"] = {"epochs": 1, "batch_size": 16, "augmentation": {
        "flip_x": True, "rotate": 30, "noise": 0.5, "brightness": 0.5, "cutout": {"size": 10}, "mixup": {"alpha": 1}}}
    seen = {"train": [], "eval": []}
    original = gc.GraphModule.trace

    def spy(self, *args, **inputs):
        seen["train" if self.training else "eval"].append(inputs["x"].detach().clone())
        return original(self, *args, **inputs)

    gc.GraphModule.trace = spy
    try:
        train(project, tmp_path / "run", base_dir=tmp_path)
    finally:
        gc.GraphModule.trace = original
    validation = CsvDataset(tmp_path / "data/digits-28/validation.csv", cache=True).tensors["x"]
    assert torch.equal(torch.cat(seen["eval"][: len(seen["eval"]) // 2]), validation)
    assert seen["train"] and all(batch.min() < 0 for batch in seen["train"]), "training batches were augmented"


def test_shift_moves_whole_pixels_within_the_limit_and_masks_follow():
    image = torch.rand(40, 1, 10, 12)
    mask = (image > 0.5).float()
    out = _augmenter(labels=("y",), shift=2)({"x": image, "y": mask}, _rng())
    seen = set()
    for i in range(40):
        for dy in range(-2, 3):
            for dx in range(-2, 3):
                moved = torch.zeros_like(image[i])
                moved[:, max(dy, 0):10 + min(dy, 0), max(dx, 0):12 + min(dx, 0)] = \
                    image[i][:, max(-dy, 0):10 + min(-dy, 0), max(-dx, 0):12 + min(-dx, 0)]
                if torch.allclose(out["x"][i], moved, atol=1e-5):
                    moved_mask = torch.zeros_like(mask[i])
                    moved_mask[:, max(dy, 0):10 + min(dy, 0), max(dx, 0):12 + min(dx, 0)] = \
                        mask[i][:, max(-dy, 0):10 + min(-dy, 0), max(-dx, 0):12 + min(-dx, 0)]
                    assert torch.equal(out["y"][i], moved_mask)
                    seen.add((dy, dx))
                    break
            else:
                continue
            break
        else:
            pytest.fail(f"sample {i} is not its input moved by at most 2 whole pixels")
    assert len(seen) > 5
