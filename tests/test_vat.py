"""Virtual adversarial training (training.mode vat) and NNC's semi_supervised_learning_VAT sample."""

import csv
import json
import math

import pytest
import torch
from torch import nn

import graphcompiler as gc
import runtime.vat
from conftest import NNC_SAMPLES as SAMPLES, needs_nnc_samples
from graphcompiler.importers import import_sdcproj
from netcanvas.cli import main
from runtime.example_data import write_dataset
from runtime.settings import training_mode, training_settings
from runtime.training import Progress, Stopped, resume, train
from runtime.vat import adversarial_perturbation, kl_divergence, running_statistics_kept

SAMPLE = SAMPLES / "semi_supervised_learning_VAT.sdcproj"

DIGITS_MLP = """
format: netcanvas/1
name: digits_vat
networks:
  main:
    nodes:
    - {id: x, type: Input, params: {shape: [64]}}
    - {id: fc1, type: Affine, params: {out_features: 128}}
    - {id: bn1, type: BatchNormalization}
    - {id: relu1, type: ReLU}
    - {id: fc2, type: Affine, params: {out_features: 10}}
    - {id: y, type: Input, params: {shape: [1]}}
    - {id: loss, type: SoftmaxCrossEntropy}
    links: [x -> fc1, fc1 -> bn1, bn1 -> relu1, relu1 -> fc2, fc2 -> loss.x, y -> loss.target]
dataset:
  training: digits/labeled.csv
  validation: digits/validation.csv
training:
  mode: vat
  epochs: 200
  batch_size: 32
  optimizer: {type: Adam, lr: 0.003}
  vat: {unlabeled: digits/unlabeled.csv, batch_size: 128, eps: 0.3}
"""
"""An MLP with batch normalisation on 8 x 8 digit vectors: 60 labeled (6 per class), the other 1,377
training rows unlabeled; eps 0.3 is about a tenth of a digit vector's length."""


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    """The digits as vectors: labeled.csv (the first 6 training rows of each class), unlabeled.csv (the other
    training rows, without their label column) and validation.csv (360 rows)."""
    root = tmp_path_factory.mktemp("vat")
    paths = write_dataset("digits-vectors", root / "digits")
    header, *rows = list(csv.reader(paths["training"].open()))
    labeled, unlabeled, taken = [], [], {}
    for row in rows:
        if taken.get(row[-1], 0) < 6:
            taken[row[-1]] = taken.get(row[-1], 0) + 1
            labeled.append(row)
        else:
            unlabeled.append(row[:-1])
    for name, table in (("labeled.csv", [header] + labeled), ("unlabeled.csv", [header[:-1]] + unlabeled)):
        with (root / "digits" / name).open("w", newline="") as f:
            csv.writer(f, lineterminator="\n").writerows(table)
    return root


def _project(**training):
    project = gc.loads(DIGITS_MLP)
    project.sections["training"].update(training)
    return project


@needs_nnc_samples
def test_nnc_vat_sample_imports_completely_as_mode_vat_with_its_eps_and_xi(tmp_path):
    imported = import_sdcproj(SAMPLE)
    project = imported.project
    # NoiseEstimation, VATLoss and Runtime compute the adversarial direction and the VAT loss: mode vat does.
    assert set(project.networks) == {"main", "Validation", "Runtime2"}
    assert gc.validate(project) == []
    training = training_settings(project)
    assert training_mode(project) == "vat"
    assert (training.vat.xi, training.vat.eps) == (10.0, 1.4)
    assert training.vat.unlabeled == "samples/sample_dataset/mnist/mnist_training_unlabeled.csv"
    assert training.vat.inputs == {"x": "xu"}  # the unlabeled list names the image xu
    assert project.sections["dataset"]["training"].endswith("mnist_training_100.csv")
    assert not any(n.type in ("VATNoise", "WorkingMemory") for g in project.networks.values() for n in g.nodes())
    assert any("virtual adversarial training" in note and "xi 10 and eps 1.4" in note for note in imported.notes)
    out = tmp_path / "vat.graph.yaml"
    assert main(["import", str(SAMPLE), "-o", str(out)]) == 0
    assert main(["validate", str(out)]) == 0


def test_the_perturbation_is_the_direction_of_fastest_kl_growth_of_a_linear_softmax():
    generator = torch.Generator().manual_seed(0)
    # Two inputs, three classes: every direction of length eps, one per tenth of a degree, is tried.
    weight = 2 * torch.randn(3, 2, generator=generator, dtype=torch.float64)
    bias = torch.randn(3, generator=generator, dtype=torch.float64)

    def log_q(x):
        return torch.log_softmax(x @ weight.T + bias, 1)

    x = torch.randn(6, 2, generator=generator, dtype=torch.float64)
    eps = 0.01
    r = adversarial_perturbation(log_q, x, log_q(x), xi=1e-6, eps=eps, iterations=30, generator=generator)
    assert torch.allclose(r.norm(dim=1), torch.full((6,), eps, dtype=torch.float64))
    angles = torch.arange(3600, dtype=torch.float64) * 2 * math.pi / 3600
    directions = eps * torch.stack([angles.cos(), angles.sin()], 1)
    for i in range(6):
        best = kl_divergence(log_q(x[i:i + 1]).expand(3600, -1), log_q(x[i] + directions)).max()
        # The KL's growth is quadratic to first order, the same both ways along r; the third-order term favours
        # one sign by a few percent at this eps, and power iteration from a random start may give either.
        both_ways = torch.cat([kl_divergence(log_q(x[i:i + 1]), log_q(x[i:i + 1] + sign * r[i])) for sign in (1, -1)])
        assert both_ways.max() >= 0.999 * best


def test_one_power_iteration_in_float32_finds_a_binary_linear_models_direction():
    generator = torch.Generator().manual_seed(1)
    # Two classes: the KL changes only along w1 - w0, which one gradient step at xi d finds from any d.
    weight, bias = torch.randn(2, 50, generator=generator), torch.randn(2, generator=generator)

    def log_q(x):
        return torch.log_softmax(x @ weight.T + bias, 1)

    x = torch.rand(16, 50, generator=generator)
    r = adversarial_perturbation(log_q, x, log_q(x), xi=0.01, eps=0.5, generator=generator)
    along = weight[1] - weight[0]
    assert ((r @ along).abs() / (r.norm(dim=1) * along.norm())).min() > 0.999
    others = torch.randn(16, 200, 50, generator=generator)
    others = 0.5 * others / others.norm(dim=2, keepdim=True)
    at_random = kl_divergence(log_q(x).unsqueeze(1).expand(-1, 200, -1).reshape(-1, 2),
                              log_q((x.unsqueeze(1) + others).reshape(-1, 50))).view(16, 200)
    # Either way along the line: which way depends on the random start (towards the boundary grows faster).
    both_ways = torch.maximum(kl_divergence(log_q(x), log_q(x + r)), kl_divergence(log_q(x), log_q(x - r)))
    assert (both_ways >= at_random.max(1).values).all()


def test_unlabeled_passes_use_batch_statistics_and_leave_the_running_ones_alone():
    norm = nn.BatchNorm1d(4).train()
    before = (norm.running_mean.clone(), norm.running_var.clone())
    batch = 3 + 2 * torch.randn(8, 4)
    with running_statistics_kept(norm):
        out = norm(batch)
    assert torch.equal(norm.running_mean, before[0]) and torch.equal(norm.running_var, before[1])
    assert torch.allclose(out, nn.functional.batch_norm(batch, None, None, training=True), atol=1e-6)
    assert norm.track_running_stats
    norm(batch)
    assert not torch.equal(norm.running_mean, before[0])  # outside the block they are updated again


def test_vat_on_unlabeled_digits_beats_the_same_mlp_trained_on_the_labeled_ones_alone(digits, tmp_path, one_thread,
                                                                                      monkeypatch):
    supervised = train(_project(mode="supervised"), tmp_path / "supervised", base_dir=digits)
    vat = train(_project(), tmp_path / "vat", base_dir=digits)
    curve = list(csv.DictReader((tmp_path / "vat/learning_curve.csv").open()))
    assert len(curve) == 200 and all(float(row["vat_loss"]) >= 0 for row in curve)
    assert (tmp_path / "vat/evaluation/confusion_matrix.csv").is_file()
    # Seeds 0-7 gave supervised 0.775-0.814 (mean 0.795) and VAT 0.861-0.928 (mean 0.896): 4.7 to 14 points more.
    assert 1 - vat["error"] >= 1 - supervised["error"] + 0.04, (vat, supervised)

    # A control: the same training with the perturbation in a random direction of the same length does worse
    # (seeds 0-7: 0.811-0.867, 2.5 to 8 points under VAT), so the adversarial direction is what helps most.
    def random_direction(log_q, x, log_p, *, xi, eps, iterations, generator):
        noise = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
        return eps * noise / noise.flatten(1).norm(dim=1).view(-1, 1)

    monkeypatch.setattr(runtime.vat, "adversarial_perturbation", random_direction)
    randomly = train(_project(), tmp_path / "random", base_dir=digits)
    assert 1 - vat["error"] > 1 - randomly["error"] + 0.01, (vat, randomly)


def test_a_stopped_vat_run_resumes_to_the_uninterrupted_runs_curve(digits, tmp_path, one_thread):
    project = _project(epochs=4)
    train(project, tmp_path / "whole", base_dir=digits)
    epochs = []

    def record(report: Progress) -> None:
        if report.kind == "epoch":
            epochs.append(report.epoch)

    with pytest.raises(Stopped):
        train(project, tmp_path / "stopped", base_dir=digits, on_progress=record, should_stop=lambda: len(epochs) == 2)
    resume(tmp_path / "stopped")

    def curve(run):
        return [{k: v for k, v in row.items() if k != "seconds"}
                for row in csv.DictReader((run / "learning_curve.csv").open())]

    assert curve(tmp_path / "stopped") == curve(tmp_path / "whole")
    assert json.loads((tmp_path / "stopped/metrics.json").read_text()) == \
        json.loads((tmp_path / "whole/metrics.json").read_text())


@pytest.mark.parametrize("change, where", [
    ({"vat": {"unlabeled": ""}}, "training.vat.unlabeled"),
    ({"vat": {"unlabeled": "digits/unlabeled.csv", "xi": 0}}, "training.vat.xi"),
    ({"vat": {"unlabeled": "digits/unlabeled.csv", "inputs": {"y": "x"}}}, "training.vat.inputs.y"),
    ({"vat": {"unlabeled": "digits/unlabeled.csv", "eps": -1}}, "training.vat.eps"),
])
def test_bad_vat_settings_name_the_field(digits, tmp_path, change, where):
    with pytest.raises(gc.GraphError) as caught:
        train(_project(**change), tmp_path / "run", base_dir=digits)
    assert caught.value.where == where
