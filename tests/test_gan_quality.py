"""The DCGAN example draws digits a classifier can read, and a collapsed generator is warned about."""

import csv
import io
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

import graphcompiler as gc
from conftest import ROOT, fit_classifier
from netcanvas.progress import ProgressBar
from runtime.example_data import write_dataset
from runtime.gan import COLLAPSED_SHARE
from runtime.runs import load_weights
from runtime.training import train

SAMPLES = 500
"""Generated images the classifier reads."""


THREADS = 2
"""Both cores of the two-core machine measured: 61 s for the example's training against 85 s on one thread."""


@pytest.fixture
def threads():
    """Torch on THREADS threads, whatever the machine has, so that the timing printed is of a known setting."""
    before = torch.get_num_threads()
    torch.set_num_threads(THREADS)
    yield
    torch.set_num_threads(before)


def _images(listing: Path) -> tuple[torch.Tensor, torch.Tensor]:
    """The images (scaled to [-1, 1], as the example reads them) and labels of an NNC list of digits."""
    with open(listing, newline="") as handle:
        rows = list(csv.reader(handle))[1:]
    pixels = np.stack([np.asarray(Image.open(listing.parent / path), dtype=np.float32) for path, _ in rows])
    return torch.from_numpy(pixels / 127.5 - 1).unsqueeze(1), torch.tensor([int(label) for _, label in rows])


def _lenet(data: Path) -> tuple[nn.Module, float, float]:
    """Caffe's LeNet (as examples/lenet.graph.yaml) at 32 x 32, trained in plain torch on the training list.

    Returns it with its accuracy and mean top-1 probability on the validation list: the checker's own
    score on real digits, which the generated ones are read against.
    """
    train_x, train_y = _images(data / "train.csv")
    val_x, val_y = _images(data / "validation.csv")
    torch.manual_seed(0)
    lenet = nn.Sequential(nn.Conv2d(1, 20, 5), nn.MaxPool2d(2), nn.Conv2d(20, 50, 5), nn.MaxPool2d(2), nn.Flatten(),
                          nn.Linear(50 * 5 * 5, 500), nn.ReLU(), nn.Linear(500, 10))
    fit_classifier(lenet, train_x, train_y, epochs=10, batch_size=32, lr=1e-3)
    with torch.no_grad():
        read = lenet(val_x).softmax(1)
    return lenet, (read.argmax(1) == val_y).float().mean().item(), read.max(1).values.mean().item()


def test_the_dcgan_example_draws_digits_of_at_least_8_classes_that_a_lenet_reads_with_confidence(tmp_path, threads):
    data = tmp_path / "data/digits-32"
    write_dataset("digits", data, size=32)
    project = gc.load(ROOT / "examples/dcgan.graph.yaml")
    reports = []
    started = time.perf_counter()
    result = train(project, tmp_path / "run", base_dir=tmp_path, on_progress=reports.append)
    seconds = time.perf_counter() - started
    epochs = [r for r in reports if r.kind == "epoch"]
    assert len(epochs) == project.sections["training"]["epochs"]
    lenet, accuracy, real_top1 = _lenet(data)
    # Measured 0.964 (2 threads) and 0.969 (1 thread): the checker itself reads real digits.
    assert accuracy >= 0.95

    generator = gc.compile(project.network("generator"))
    generator.load_state_dict(load_weights(tmp_path / "run", "generator"))
    generator.eval()
    torch.manual_seed(1)
    with torch.no_grad():
        images = generator(z=torch.randn(SAMPLES, 100, 1, 1))["image"]
        top1, classes = lenet(images).softmax(1).max(1)
    counts = torch.bincount(classes, minlength=10).tolist()
    shares = [r.metrics["latent_share"] for r in epochs]
    print(f"DCGAN example: {len(epochs)} epochs on {THREADS} thread(s) in {seconds:.1f} s, losses G "
          f"{result['g_loss']:.3f} D {result['d_loss']:.3f}; LeNet ({accuracy:.3f} accurate, mean top-1 "
          f"{real_top1:.3f} on real validation digits) reads {SAMPLES} generated digits as {counts} "
          f"(mean top-1 {top1.mean():.3f}); latent share by epoch {[round(v, 2) for v in shares]}")
    # Measured: 10 classes, mean top-1 0.894 on 2 threads and 0.911 on 1 (the LeNet's own on real digits: 0.991);
    # the former 64 x 64 example, collapsed after its 10 epochs, drew one noise 64 times.
    assert sum(c > 0 for c in counts) >= 8
    assert top1.mean().item() >= 0.8
    # A generator that draws digits is no collapse: it is never warned about, even while young.
    assert [r.note for r in epochs if r.note] == []
    assert min(shares) > COLLAPSED_SHARE


def test_a_generator_that_ignores_its_latent_input_is_warned_about_after_every_epoch(tmp_path, threads):
    write_dataset("digits", tmp_path / "data/digits-32", size=32, count=160)
    project = gc.load(ROOT / "examples/dcgan.graph.yaml")
    project.sections["training"]["epochs"] = 2
    # z times 0: whatever the latent input, the generator draws one image, the collapse the warning is for.
    generator = project.network("generator")
    generator.add_node("deaf", "MulScalar", {"value": 0.0})
    generator.disconnect("deconv1", generator.default_port("deconv1", output=False))
    generator.connect("z", "deaf")
    generator.connect("deaf", "deconv1")
    terminal = io.StringIO()
    bar = ProgressBar(stream=terminal)
    reports = []

    def report(progress):
        reports.append(progress)
        bar(progress)

    train(project, tmp_path / "run", base_dir=tmp_path, on_progress=report)
    epochs = [r for r in reports if r.kind == "epoch"]
    assert [r.metrics["latent_share"] for r in epochs] == [0.0, 0.0]
    assert all(r.note.startswith("the generator has collapsed: only 0.000 of its samples' pixel variance")
               for r in epochs)
    assert terminal.getvalue().count("warning: the generator has collapsed") == 2
    with open(tmp_path / "run/learning_curve.csv", newline="") as handle:
        assert [float(row["latent_share"]) for row in csv.DictReader(handle)] == [0.0, 0.0]
