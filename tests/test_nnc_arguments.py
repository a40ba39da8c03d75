"""NNC's unit arguments of every type, and the arithmetic NNC allows in property values, in imports."""

import pytest
import torch

import graphcompiler as gc
from conftest import NNC_SAMPLES as SAMPLES, needs_nnc_samples
from graphcompiler.importers import import_sdcproj

pytestmark = needs_nnc_samples

BLOCK = """
format: netcanvas/1
name: quarter
blocks:
  Quarter:
    params: {maps: 16}
    output: conv
    nodes:
    - {id: x, type: Input, params: {shape: [3, 8, 8]}}
    - {id: conv, type: Convolution, params: {out_channels: "$maps / 4", kernel: [3, 3]}}
    links:
    - x -> conv
networks:
  main:
    nodes:
    - {id: x, type: Input, params: {shape: [3, 8, 8]}}
    - {id: q, type: Quarter, params: {maps: MAPS}}
    links:
    - x -> q
"""


def test_arguments_of_every_type_become_block_params():
    project = import_sdcproj(SAMPLES / "nin.sdcproj").project
    mpc = project.blocks["MPC"]
    # Text 96, PIntArray 11,11 and 4,4, UIntArray 0,0
    assert mpc.params == {"ConvMaps": 96, "ConvKernel": [11, 11], "ConvStride": [4, 4], "ConvPad": [0, 0]}
    assert mpc.graph.node("Convolution").params == {"out_channels": "$ConvMaps", "kernel": "$ConvKernel",
                                                    "stride": "$ConvStride", "pad": "$ConvPad", "bias": True,
                                                    "dilation": [1, 1], "groups": 1}
    nin = project.blocks["NIN"]
    assert nin.params == {"DropP": 6e-05} and nin.graph.node("Dropout").params == {"p": "$DropP"}  # Float
    uses = {n.id: n.params for n in nin.graph.nodes() if n.type == "MPC"}
    assert uses["MPC_2"] == {"ConvMaps": 256, "ConvKernel": [5, 5], "ConvStride": [1, 1], "ConvPad": [2, 2]}
    assert gc.validate(project) == []
    squeeze = import_sdcproj(SAMPLES / "squeezenet11.sdcproj").project
    assert squeeze.blocks["FireModule"].params == {"SqueezeMaps": 16, "ExpandMaps": 64}  # Text arguments
    assert gc.validate(squeeze) == []


def test_a_param_computed_from_unit_arguments_is_an_expression_over_block_params():
    project = import_sdcproj(SAMPLES / "synthetic_image_object_detection.sdcproj", partial=True).project
    head = project.blocks["Network"]
    assert head.params == {"NetNumClass": 4, "NetNumAnchor": 5}
    assert head.graph.node("Convolution_5").params["out_channels"] == "$NetNumAnchor*(4+1+NetNumClass)"
    values = gc.blocks.filled(head.graph, dict(head.params, NetNumClass=10)).node("Convolution_5").params
    assert values["out_channels"] == 75


def test_nnc_arithmetic_in_a_value_is_worked_out():
    project = import_sdcproj(SAMPLES / "hand-sign.sdcproj").project
    scale = next(n for n in project.network().nodes() if n.type == "MulScalar")
    assert scale.params["value"] == pytest.approx(1 / 255)


def test_a_block_param_may_be_arithmetic_over_the_blocks_params():
    project = gc.loads(BLOCK.replace("MAPS", "40"))
    assert gc.infer_shapes(project.network())["q"].outputs["y"] == (10, 6, 6)
    model = gc.compile(project.network())
    assert model(x=torch.rand(2, 3, 8, 8))["q"].shape == (2, 10, 6, 6)
    errors = gc.validate(gc.loads(BLOCK.replace("MAPS", "10")))
    assert len(errors) == 1 and "conv (Convolution): param out_channels: expected a positive int, got 2.5" \
        in str(errors[0])


def test_an_argument_that_is_not_of_its_type_is_named(tmp_path):
    text = (SAMPLES / "squeezenet11.sdcproj").read_text(encoding="utf-8-sig")
    changed = tmp_path / "words.sdcproj"
    changed.write_text(text.replace("Property_1_Value=16\n", "Property_1_Value=sixteen\n", 1), encoding="utf-8")
    unmapped = import_sdcproj(changed, partial=True).unmapped
    assert str(unmapped[0]) == ("FireModule / SqueezeMaps (Argument): an argument of type Text = sixteen is not a "
                                "number; a block param holds numbers, lists of whole numbers or True/False")
