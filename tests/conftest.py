"""Shared test setup: example paths, the search tests' project, a decompression bomb and the hypothesis profiles."""

import io
import os
import struct
import zlib
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, settings
from PIL import Image

import graphcompiler as gc
from runtime.example_data import write_dataset

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "examples").glob("*.graph.yaml"))
NNC_SAMPLES = ROOT.parent / "shared" / "nnc-samples"
"""Neural Network Console's own sample projects, test data kept beside the repository, not in it."""
needs_nnc_samples = pytest.mark.skipif(not NNC_SAMPLES.is_dir(), reason=f"NNC's sample projects are not at "
                                                                          f"{NNC_SAMPLES}")


def mlp_search_project(folder: Path, trial_epochs: int = 1) -> Path:
    """The MLP example searched on 600 digit vectors (batch 64, quick trials), written into ``folder``."""
    write_dataset("digits-vectors", folder / "data/digits-vectors", count=600)
    project = gc.load(ROOT / "examples/mlp.graph.yaml")
    project.sections["training"]["batch_size"] = 64
    project.sections["search"] = {"trial_epochs": trial_epochs, "control_every": 3}
    gc.save(project, folder / "mlp.graph.yaml")
    return folder / "mlp.graph.yaml"


def bomb_png(path: Path) -> None:
    """A tiny PNG whose header claims 100000 x 100000 one-bit pixels: Pillow refuses it when opening."""
    buffer = io.BytesIO()
    Image.new("1", (8, 8)).save(buffer, format="PNG")
    data = bytearray(buffer.getvalue())
    data[16:24] = struct.pack(">II", 100_000, 100_000)  # IHDR's width and height
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    path.write_bytes(bytes(data))


@pytest.fixture
def one_thread():
    """Torch on one thread for the test: small networks gain nothing from more, and two threads on a shared
    two-core machine ran a training step 40 times slower than one."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def fit_classifier(model, images, labels, epochs: int, batch_size: int, lr: float):
    """``model`` trained in plain torch (Adam, cross entropy, shuffled batches) and put in eval mode: the
    independent checkers tests read generated samples with."""
    optimizer = torch.optim.Adam(model.parameters(), lr)
    for _ in range(epochs):
        for batch in torch.randperm(len(labels)).split(batch_size):
            loss = torch.nn.functional.cross_entropy(model(images[batch]), labels[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return model.eval()


@pytest.fixture(scope="session")
def root() -> Path:
    """The repository root."""
    return ROOT

# HYPOTHESIS_PROFILE=deep runs the property tests far longer than CI does.
settings.register_profile("ci", max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("deep", max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
