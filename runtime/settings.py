"""The project's dataset and training sections, declared once with the registry's typed params.

Each section is a tuple of fields: a ``Param`` (type, default, valid range) or a ``Group`` of
further fields. ``read`` checks a section against its declaration and fills in defaults; the
designer's training form can be built from the same declarations.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

from graphcompiler import GraphError, Project
from graphcompiler.errors import short_repr
from graphcompiler.layers.spec import Bool, Choice, Float, Int, Ints, Param


@dataclass(frozen=True)
class Text(Param):
    """A string, such as a file path; empty means not given."""

    def expected(self) -> str:
        return "a string"

    def check(self, value: Any) -> str:
        if not isinstance(value, str):
            self._fail(value)
        return value


@dataclass(frozen=True)
class Names(Param):
    """A list of names (node ids, networks)."""

    def expected(self) -> str:
        return "a list of names"

    def check(self, value: Any) -> tuple[str, ...]:
        if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
            self._fail(value)
        return tuple(value)


@dataclass(frozen=True)
class Mapping(Param):
    """A mapping of names to names (Input node -> CSV variable)."""

    def expected(self) -> str:
        return "a mapping of names to names"

    def check(self, value: Any) -> dict[str, str]:
        if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                                  for k, v in value.items()):
            self._fail(value)
        return dict(value)


@dataclass(frozen=True)
class Space(Param):
    """Training settings a search varies, each with its range or choices (runtime.hyperparameters)."""

    def expected(self) -> str:
        return "a mapping of training settings to {low, high[, log]} or {choices: [...]}"

    def check(self, value: Any) -> dict:
        from .hyperparameters import parse_space

        return parse_space(value, TRAINING)


@dataclass(frozen=True)
class Group:
    """A nested mapping of fields."""

    name: str
    fields: tuple
    doc: str = ""


DATASET = (
    Text("training", "", "CSV list of the training data, relative to the project file"),
    Text("validation", "", "CSV list of the validation data, relative to the project file"),
    Text("labels", "", "labels file, relative to the project file: the class names, one per line (UTF-8), class 0 "
                       "first; evaluation and export name the classes with it (netcanvas dataset from-folders "
                       "writes one)"),
    Mapping("inputs", {}, "Input node -> CSV variable; an Input not listed reads the variable of its own name"),
    Bool("cache", True, "decode every file once and keep the data in memory"),
    Ints("image_size", None, "resize every image to [height, width] (default: keep the files' size)",
         length=2, lo=1),
    Choice("channels", "keep", "convert images to 1 (gray) or 3 (RGB) channels",
           choices=("keep", "1", "3")),
    Choice("normalize", "unit", "pixel scaling: unit = [0, 1] (NNC's Normalize), symmetric = [-1, 1], none = 0-255",
           choices=("unit", "symmetric", "none")),
    Int("workers", 0, "background processes decoding files when the cache is off", lo=0),
    Bool("confine", False, "refuse list rows that name files outside the list's folder (absolute paths, ../); "
                           "off, such rows are read and the first is named in a warning"),
)

AUGMENTATION = (
    Bool("flip_x", False, "mirror left-right with probability 1/2"),
    Bool("flip_y", False, "mirror top-bottom with probability 1/2"),
    Float("rotate", 0.0, "rotate by up to this many degrees either way", lo=0.0, hi=180.0),
    Float("scale", 0.0, "zoom by a factor in [1 - scale, 1 + scale]", lo=0.0, hi=0.9),
    Int("shift", 0, "move by up to this many whole pixels either way, along each axis", lo=0),
    Float("brightness", 0.0, "add up to this much brightness either way", lo=0.0, hi=1.0),
    Float("contrast", 0.0, "scale contrast by a factor in [1 - contrast, 1 + contrast]", lo=0.0, hi=1.0),
    Float("noise", 0.0, "standard deviation of added Gaussian noise", lo=0.0),
    Group("cutout", (
        Int("size", 0, "side of each erased square in pixels; 0 turns cutout off", lo=0),
        Int("count", 1, "squares erased per image", lo=1),
    ), "random erasing (DeVries & Taylor 2017)"),
    Group("mixup", (
        Float("alpha", 0.0, "Beta(alpha, alpha) mixing weights; 0 turns mixup off", lo=0.0),
    ), "mixup (Zhang et al. 2018): images and labels mixed with the same weight"),
)

RUN_NOT_LEARNING = "it says what a run is or where it runs, not how it learns: it cannot be searched"


def _set_by_search(setting: str) -> str:
    """Why a search may not vary a training setting it sets itself for every candidate."""
    return f"the search sets it for every candidate: use search.{setting}"


TRAINING = (
    Choice("mode", "auto", "auto reads the task from the loss wiring (vat when training.vat.unlabeled names data); "
                           "gan trains generator against discriminator; vat adds virtual adversarial training on "
                           "unlabeled data", choices=("auto", "supervised", "gan", "vat"), unsearched=RUN_NOT_LEARNING),
    Int("epochs", 10, "passes over the training data", lo=1,
        unsearched=_set_by_search("trial_epochs")),
    Int("batch_size", 64, "samples per step", lo=1),
    Int("seed", 0, "seed of every random choice; a CPU run with the same seed repeats exactly", lo=0,
        unsearched=RUN_NOT_LEARNING),
    Group("optimizer", (
        Choice("type", "Adam", "the solver", choices=("SGD", "Adam", "AdamW", "RMSprop")),
        Float("lr", 0.001, "learning rate", lo=0.0),
        Float("momentum", 0.9, "momentum (SGD, RMSprop)", lo=0.0, hi=1.0, hi_open=True),
        Bool("nesterov", False, "Nesterov momentum (SGD)"),
        Float("weight_decay", 0.0, "L2 penalty (decoupled for AdamW)", lo=0.0),
        Float("beta1", 0.9, "Adam's first moment decay", lo=0.0, hi=1.0, hi_open=True),
        Float("beta2", 0.999, "Adam's second moment decay", lo=0.0, hi=1.0, hi_open=True),
    )),
    Group("schedule", (
        Choice("type", "constant", "learning-rate schedule", choices=("constant", "step", "cosine")),
        Float("warmup_epochs", 0.0, "ramp the rate up linearly over this many epochs", lo=0.0),
        Int("step_epochs", 10, "step schedule: multiply by gamma every this many epochs", lo=1),
        Float("gamma", 0.1, "step schedule: the factor", lo=0.0, hi=1.0),
    )),
    Float("grad_clip", 0.0, "clip the gradient norm to this; 0 turns clipping off", lo=0.0),
    Float("label_smoothing", 0.0, "label smoothing of SoftmaxCrossEntropy", lo=0.0, hi=1.0, hi_open=True),
    Bool("balanced_sampler", False, "draw every class equally often (for imbalanced data)",
         unsearched=RUN_NOT_LEARNING),
    Bool("mixed_precision", False, "float16/bfloat16 autocast on the GPU", unsearched=RUN_NOT_LEARNING),
    Choice("device", "auto", "where to train: auto takes the GPU when there is one",
           choices=("auto", "cpu", "cuda"), unsearched=RUN_NOT_LEARNING),
    Float("max_seconds", 0.0, "stop training after the epoch that passes this many seconds of training since "
                              "the start or resume (reading the data not counted); the run can be resumed; 0: no "
                              "limit", lo=0.0, unsearched=_set_by_search("trial_seconds")),
    Group("early_stopping", (
        Int("patience", 0, "end training when the validation error has not improved for this many epochs; 0: never",
            lo=0),
    ), "the run keeps its best epoch's weights either way (weights.pt; last.pt: the last epoch's)"),
    Group("quantization", (
        Int("bits", 0, "train with weights and activations quantized to this many bits (quantization-aware "
                       "training); 0 turns it off. The run's project holds the quantized network as explicit "
                       "layers; output layers keep at least 8 bits", lo=0, hi=32),
        Choice("kind", "fixed_point", "fixed_point: multiples of a power-of-2 step; pow2: powers of 2; min_max: "
                                      "activations over their running range, weights fixed point",
               choices=("fixed_point", "pow2", "min_max")),
        Bool("weights", True, "Convolution and Affine compute with quantized weights and biases"),
        Bool("activations", True, "a quantizer follows every activation"),
        Float("activation_range", 8.0, "fixed_point and pow2: activations are quantized within this size, rounded "
                                       "up to a power of 2 (1 for Sigmoid, Tanh, Softmax and HardSigmoid)", lo=0.0),
        Names("keep", (), "nodes kept in float"),
    ), "NNC's fixed-point and power-of-2 layers, inserted when training starts (graphcompiler/quantization.py)"),
    Group("augmentation", AUGMENTATION, "applied to training batches only"),
    Group("transfer", (
        Text("from", "", "a run directory, or a .pt or .onnx file, whose weights start this training (matched "
                         "by node id; without it, the network's own weights file if the project names one)"),
        Names("freeze", (), "nodes whose weights stay fixed"),
    )),
    Group("gan", (
        Text("generator", "generator", "network that maps the latent input to an image; Inputs it shares with "
                                       "the discriminator (same id, such as a class label) are its condition"),
        Text("discriminator", "discriminator", "network that scores images as real, given the condition: the "
                                               "dataset's for real images, a random row's for generated ones"),
        Int("samples", 64, "images in the sample grid saved each epoch (a conditional GAN's ask for each "
                           "condition of the training data in turn)", lo=1),
        Float("init_std", 0.02, "weights of both networks' Convolution, Deconvolution and Affine layers start "
                                "from N(0, init_std) and their biases at 0, as in the DCGAN paper; 0 keeps each "
                                "layer's own initialisation", lo=0.0),
    )),
    Group("vat", (
        Text("unlabeled", "", "CSV list of the unlabeled data, relative to the project file: NNC's format, the "
                              "network's data Input's variable (a label column, if any, is not read)"),
        Mapping("inputs", {}, "the network's data Input -> variable of the unlabeled list (default: the variable "
                              "dataset.inputs gives it)"),
        Int("batch_size", 0, "unlabeled samples per step; 0: training.batch_size", lo=0),
        Float("xi", 0.01, "length of the random probe r where the gradient of the KL divergence from p(x) to "
                          "p(x + r) gives the adversarial direction: above 0, well below eps, and above float32's "
                          "rounding (the paper's 1e-6 is lost in it for inputs of order 1); NNC: the noise "
                          "estimation network's VATNoise Epsilon", lo=0.0),
        Float("eps", 2.0, "length of the adversarial perturbation of each sample, in the input's units (NNC: the "
                          "VAT loss network's VATNoise Epsilon)", lo=0.0),
        Int("power_iterations", 1, "gradient steps refining the direction (the paper's K; 1 suffices)", lo=1),
        Float("weight", 1.0, "the VAT loss's weight against the network's own loss", lo=0.0),
    ), "virtual adversarial training (Miyato et al. 2017), mode vat: labeled batches train the network's own "
       "loss, unlabeled ones keep its prediction where a small perturbation changes it most"),
)


SEARCH = (
    Text("network", "", "the network the search changes (default: main, or the first)"),
    Int("trial_epochs", 1, "epochs each candidate is trained (its project's training settings otherwise)", lo=1),
    Float("trial_seconds", 0.0, "also end a candidate's training after this many seconds; 0: no limit", lo=0.0),
    Int("max_trials", 0, "stop after this many finished trials in the study; 0: until stopped", lo=0),
    Float("max_hours", 0.0, "stop after this many hours; 0: until stopped", lo=0.0),
    Int("mutations", 2, "at most this many changes per candidate (1 to this, at random)", lo=1),
    Int("control_every", 4, "sampler mutation: every this many trials is a plain random sample of the space, as "
                            "a control", lo=0),
    Int("control_steps", 3, "changes from the base network that make a control sample", lo=1),
    Names("pinned", (), "nodes the search must not touch"),
    Int("max_params", 0, "refuse candidates with more parameters; 0: no limit", lo=0),
    Int("max_macs", 0, "refuse candidates with more multiply-adds per sample; 0: no limit", lo=0),
    Int("seed", 0, "seed of the search's random choices", lo=0),
    Space("hyperparameters", {}, "training settings each candidate may change, by path in the training section: "
                                 "{low: 0.0001, high: 0.01, log: true} or {choices: [32, 64, 128]}; each bound and "
                                 "choice must be one the training setting allows"),
    Bool("structure", True, "change the network; false pins it, for a pure hyperparameter search"),
    Choice("sampler", "mutation", "how candidates are drawn: mutation changes a network (and settings) of the "
                                  "front; random draws each from the whole space (a random walk from the base "
                                  "network, settings uniform); tpe and nsga2 take the settings from Optuna's "
                                  "multi-objective TPE or NSGA-II sampler and change the network as mutation does",
           choices=("mutation", "random", "tpe", "nsga2")),
    Group("pruning", (
        Int("reduction", 0, "successive halving: at each rung, a candidate goes on when at most 1/reduction of the "
                            "candidates that reached it are ahead of it (on validation error and multiply-adds); 0 "
                            "(the default) turns pruning off: on LeNet with 4-epoch trials, 3 from epoch 1 made the "
                            "front worse (BENCHMARKS.md, search quality)", lo=0),
        Int("min_epochs", 1, "the first rung, in epochs; later rungs are min_epochs x reduction^k, below "
                             "trial_epochs", lo=1),
    ), "stop candidates that look hopeless after a few epochs; a pruned trial keeps its partial curve and never "
       "enters the front"),
)

TRIAL_KINDS = ("base", "mutant", "control", "random", "sampled")
"""What a search trial's candidate is: the base project; a change of a front member (mutation sampler, or tpe
and nsga2 when the network changes); a control or random draw from the whole space; settings Optuna's
sampler chose for the pinned network."""

SECTIONS = {"dataset": DATASET, "training": TRAINING, "search": SEARCH}
"""The project sections declared here, by name: what the designer's forms are built from."""


def read(data: Any, fields: tuple, where: str) -> SimpleNamespace:
    """Check a section against its fields and fill in defaults; GraphError names the first bad field."""
    values, problems = _read(data, fields, where)
    if problems:
        raise problems[0]
    return values


def _read(data: Any, fields: tuple, where: str) -> tuple[SimpleNamespace, list[GraphError]]:
    """The section's values (defaults where a field is bad) and every bad field's problem."""
    if data is None:
        data = {}
    problems = []
    if not isinstance(data, dict):
        problems.append(GraphError(f"expected a mapping, got {short_repr(data)}", where=where))
        data = {}
    known = {f.name: f for f in fields}
    problems += [GraphError(f"unknown setting '{key}' (known: {', '.join(known)})", where=f"{where}.{key}")
                 for key in data if key not in known]
    values = {}
    for field in fields:
        path = f"{where}.{field.name}"
        if isinstance(field, Group):
            values[field.name], inner = _read(data.get(field.name), field.fields, path)
            problems += inner
            continue
        values[field.name] = field.default
        if data.get(field.name) is not None:
            try:
                values[field.name] = field.check(data[field.name])
            except ValueError as exc:
                problems.append(GraphError(str(exc), where=path))
    return SimpleNamespace(**values), problems


def section_problems(project: Project) -> list[GraphError]:
    """Every bad field of the project's dataset, training and search sections, each naming its field: what
    ``netcanvas validate`` reports before a run would refuse the first of them."""
    return [problem for name, fields in SECTIONS.items()
            for problem in _read(project.sections.get(name), fields, name)[1]]


def dataset_settings(project: Project) -> SimpleNamespace:
    """The project's dataset section, checked."""
    return read(project.sections.get("dataset"), DATASET, "dataset")


def training_settings(project: Project) -> SimpleNamespace:
    """The project's training section, checked."""
    return read(project.sections.get("training"), TRAINING, "training")


def search_settings(project: Project) -> SimpleNamespace:
    """The project's search section, checked."""
    return read(project.sections.get("search"), SEARCH, "search")


def training_mode(project: Project) -> str:
    """supervised, gan or vat: auto means gan when the project has the generator and discriminator networks,
    vat when training.vat names unlabeled data."""
    settings = training_settings(project)
    if settings.mode != "auto":
        return settings.mode
    if {settings.gan.generator, settings.gan.discriminator} <= set(project.networks):
        return "gan"
    return "vat" if settings.vat.unlabeled else "supervised"


def _rows(fields: tuple, prefix: str) -> list[str]:
    rows = []
    for field in fields:
        path = f"{prefix}.{field.name}"
        if isinstance(field, Group):
            rows.extend(_rows(field.fields, path))
            continue
        default = "" if field.default in (None, "", ()) else f"`{json.dumps(field.default)}`"
        rows.append(f"| `{path}` | {field.expected()} | {default} | {field.doc} |")
    return rows


def markdown() -> str:
    """The reference of the dataset, training and search sections, generated from their declarations."""
    lines = ["# Dataset and training settings", "",
             "Generated from `runtime/settings.py` by `netcanvas settings`; every field is optional.", ""]
    for title, fields, prefix in (("Dataset", DATASET, "dataset"), ("Training", TRAINING, "training"),
                                  ("Architecture search", SEARCH, "search")):
        lines += [f"## {title}", "", "| field | value | default | meaning |", "|---|---|---|---|",
                  *_rows(fields, prefix), ""]
    return "\n".join(lines)
