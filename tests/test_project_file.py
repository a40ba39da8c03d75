"""Project files: exact round trips, kept sections and comments, atomic writes."""

import os
import re
import stat

import pytest

import graphcompiler as gc
from conftest import EXAMPLES


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_examples_load_save_load_to_the_identical_text_and_graph(path, tmp_path):
    text = path.read_text()
    project = gc.load(path)
    out = tmp_path / path.name
    gc.save(project, out)
    assert out.read_text() == text
    assert gc.load(out).network() == project.network()


def test_unknown_sections_and_the_header_comment_are_kept():
    text = ("# my net\n# second line\n\nformat: netcanvas/1\nname: keep\nnetworks:\n  main:\n    nodes:\n"
            "    - {id: x, type: Input, params: {shape: [4]}, pos: [0, 0]}\n    links: []\n"
            "dataset:\n  training: train.csv\n  validation: val.csv\n"
            "my_plugin:\n  answer: 42\n  nested:\n  - a\n  - b\n")
    project = gc.loads(text)
    assert project.sections == {"dataset": {"training": "train.csv", "validation": "val.csv"},
                                "my_plugin": {"answer": 42, "nested": ["a", "b"]}}
    assert gc.dumps(project) == text


def test_several_networks_and_named_ports_survive_a_round_trip():
    gen = gc.Graph()
    gen.add_node("z", "Input", {"shape": [8]})
    gen.add_node("fc", "Affine", {"out_features": 16})
    gen.connect("z", "fc")
    disc = gc.Graph()
    disc.add_node("a", "Input", {"shape": [2, 4, 4]})
    disc.add_node("b", "Input", {"shape": [3, 4, 4]}, pos=(0.5, -12.25))
    disc.add_node("cat", "Concatenate", {"num_inputs": 2})
    disc.connect("b", "cat", dst_port="x1")
    disc.connect("a", "cat", dst_port="x0")
    project = gc.Project(name="gan", networks={"generator": gen, "discriminator": disc}, description="two nets")
    text = gc.dumps(project)
    assert "b -> cat.x1" in text and "pos: [0.5, -12.25]" in text
    again = gc.loads(text)
    assert list(again.networks) == ["generator", "discriminator"]
    assert again.networks["discriminator"] == disc and again.description == "two nets"
    assert gc.dumps(again) == text


def test_save_is_atomic_and_leaves_no_temporary_file(tmp_path, monkeypatch):
    path = tmp_path / "p.graph.yaml"
    path.write_text("original")
    project = gc.Project(name="p")
    project.network().add_node("x", "Input", {"shape": [3]})

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError):
        gc.save(project, path)
    assert path.read_text() == "original"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.graph.yaml"]
    monkeypatch.undo()
    gc.save(project, path)
    assert gc.load(path).network().node("x").params == {"shape": [3]}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.graph.yaml"]


def test_errors_name_the_field_and_its_line():
    text = ("format: netcanvas/1\nname: t\nnetworks:\n  main:\n    nodes:\n"
            "    - {id: x, type: Input, params: {shape: [1, 8, 8]}}\n"
            "    - {id: c, type: Convolution, params: {kernel: 3x3}}\n    links: [x -> c]\n")
    with pytest.raises(gc.GraphError) as info:
        gc.loads(text, file="t.graph.yaml")
    assert str(info.value) == ("t.graph.yaml:7: networks.main.nodes[1].params.kernel: "
                               "expected one or two positive ints, got '3x3'")


@pytest.mark.parametrize("text, message", [
    ("format: netcanvas/1\nnetworks: {main: {nodes: []}}\ndataset: &a [*a]\n", "aliases"),
    ("format: netcanvas/1\nwhen: 2001-02-30\nnetworks: {main: {nodes: []}}\n", "day is out of range"),
    ("format: netcanvas/1\nx: !!int abc\nnetworks: {main: {nodes: []}}\n", "cannot be read"),
    ("format: netcanvas/1\nnetworks: {main: {nodes: [{id: d, type: Dropout, params: {p: 1" + "0" * 400 + "}}]}}\n",
     "params.p: expected a number in [0.0, 1.0)"),
    ("format: netcanvas/1\nnetworks: {main: {nodes: [{id: d, type: ReLU, params: []}]}}\n", "params: expected a mapping"),
    ("format: netcanvas/1\nnetworks: {main: {nodes: [{id: d, type: ReLU, pos: [.nan, 0]}]}}\n", "pos: expected two numbers"),
])
def test_hostile_yaml_gives_a_located_graph_error(text, message):
    with pytest.raises(gc.GraphError, match=re.escape(message)):
        gc.loads(text, file="hostile.graph.yaml")


def test_an_empty_network_saves_and_opens_again():
    text = gc.dumps(gc.Project(name="empty"))
    assert "nodes: []" in text
    assert len(gc.loads(text).network()) == 0


def test_save_keeps_the_file_mode(tmp_path):
    path = tmp_path / "p.graph.yaml"
    gc.save(gc.Project(), path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~_umask()
    path.chmod(0o640)
    gc.save(gc.Project(), path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o640


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
