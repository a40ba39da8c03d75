"""Start fast: reading, checking and drawing a project never imports torch, which takes longer than the rest."""

import subprocess
import sys
from functools import partial

import pytest
import torch

import graphcompiler
from conftest import ROOT, NNC_SAMPLES as SAMPLES
from graphcompiler.graph import MODULE_NAMES
from graphcompiler.layers import REGISTRY
from graphcompiler.layers.spec import Builder


# What the designer needs before its first frame, and what it does with a project before anything is trained.
WITHOUT_TORCH = """
import sys
from pathlib import Path

import graphcompiler, graphcompiler.layers, graphcompiler.layers.spec, graphcompiler.graph, graphcompiler.shapes
import graphcompiler.cost, graphcompiler.yamlformat, graphcompiler.project, graphcompiler.diff, graphcompiler.layout
import runtime.settings
from graphcompiler.importers import import_sdcproj
from graphcompiler.layers import categories, get_spec
from graphcompiler.layers.docs import markdown

project = graphcompiler.load("examples/vgg16.graph.yaml")
assert graphcompiler.cost(graphcompiler.infer_shapes(project.network())).macs > 15e9
assert not graphcompiler.validate(project)
graphcompiler.save(project, Path(sys.argv[1]) / "vgg16.graph.yaml")
assert graphcompiler.load(Path(sys.argv[1]) / "vgg16.graph.yaml").network() == project.network()
assert get_spec("Convolution").params and "Basic" in categories() and "| Convolution |" in markdown()
for sample in sys.argv[2:]:  # NNC's samples, where they are: loop blocks, views, generated inputs
    assert not graphcompiler.validate(import_sdcproj(sample).project)
loaded = sorted(name for name in sys.modules if name.split(".")[0] in ("torch", "onnx"))
assert not loaded, f"imported {', '.join(loaded[:5])}"
"""


def test_reading_checking_and_importing_projects_leave_torch_unimported(tmp_path):
    samples = [SAMPLES / name for name in ("long_short_term_memory.sdcproj", "mnist_vae.sdcproj")]
    proc = subprocess.run([sys.executable, "-c", WITHOUT_TORCH, str(tmp_path), *(str(s) for s in samples if s.exists())],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr


def test_the_compiler_and_the_onnx_importer_are_still_the_packages_names():
    from graphcompiler import GraphModule, compile, compiler, inference_outputs
    from graphcompiler.importers import import_onnx, onnx_import

    assert (GraphModule, compile, inference_outputs) == (compiler.GraphModule, compiler.compile,
                                                         compiler.inference_outputs)
    assert import_onnx is onnx_import.import_onnx
    with pytest.raises(AttributeError):
        graphcompiler.no_such_name


def test_reserved_ids_list_every_public_name_of_torch_nn_module():
    assert MODULE_NAMES == {name for name in dir(torch.nn.Module) if not name.startswith("_")}, \
        "torch.nn.Module's names changed: write graphcompiler.graph.MODULE_NAMES out again"


def test_every_layer_names_a_builder_its_torch_module_has():
    for spec in REGISTRY.values():
        builder = spec.build.func if isinstance(spec.build, partial) else spec.build
        assert isinstance(builder, Builder), spec.type
        assert callable(builder.resolve()), spec.type
