"""Hostile or absurd project files are refused early, in one clear error line, never by a hang or a crash."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

import graphcompiler as gc
from graphcompiler import yamlread
from graphcompiler.layers import REGISTRY
from graphcompiler.limits import INT_MAX, MAX_FILE_BYTES
from netcanvas.cli import main


def chain(input_shape: list[int], *nodes: str, blocks: str = "") -> str:
    """A project text: an Input of ``input_shape`` followed by ``nodes`` (flow mappings), linked in a chain."""
    ids = ["x"] + [f"n{i}" for i in range(len(nodes))]
    lines = ["format: netcanvas/1", blocks.rstrip(), "networks:", "  main:", "    nodes:",
             f"    - {{id: x, type: Input, params: {{shape: {input_shape}}}}}"]
    lines += [f"    - {{id: {node_id}, {node}}}" for node_id, node in zip(ids[1:], nodes)]
    lines += ["    links:"] + [f"    - {a} -> {b}" for a, b in zip(ids, ids[1:])]
    return "\n".join(line for line in lines if line) + "\n"


def refused(capsys, path: Path, *command: str, seconds: float = 5.0) -> str:
    """Run ``netcanvas <command> path``; assert it fails in one error line, quickly, and return that line."""
    start = time.perf_counter()
    code = main([*(command or ("validate",)), str(path)])
    took = time.perf_counter() - start
    out, err = capsys.readouterr()
    assert code == 1, f"exit code {code}\nstdout: {out}\nstderr: {err}"
    assert "Traceback" not in out + err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, err
    assert took < seconds, f"took {took:.1f} s"
    return errors[0]


@pytest.mark.parametrize("node, expect", [
    ("type: Convolution, params: {out_channels: 4, stride: [1000000000000000000000, 1]}",
     "nodes[1].params.stride: [1000000000000000000000, 1]: 1000000000000000000000 is beyond 2,147,483,647"),
    ("type: Affine, params: {out_features: 1000000000000000000000000000000}",
     "nodes[1].params.out_features: 100000000000000000000000000... is beyond 2,147,483,647 (2^31 - 1)"),
    ("type: Affine, params: {out_features: 2000000000}",
     "n0 (Affine): it has 1,570,000,000,000 parameters, over the 2,147,483,648 (2^31) a layer may have"),
    ("type: Convolution, params: {out_channels: 4, pad: [2000000000, 1]}",
     "n0 (Convolution): its output 4x4000000026x28 is 448,000,002,912 values per sample, over the 2,147,483,648"),
])
def test_ints_too_large_for_torch_are_refused_naming_node_and_param(tmp_path, capsys, node, expect):
    path = tmp_path / "big.graph.yaml"
    path.write_text(chain([1, 28, 28], node), encoding="utf-8")
    line = refused(capsys, path)
    assert expect in line and "big.graph.yaml:" in line


def test_an_input_too_large_is_refused_by_its_size(tmp_path, capsys):
    path = tmp_path / "input.graph.yaml"
    path.write_text(chain([3, 1000000, 1000000], "type: ReLU"), encoding="utf-8")
    assert "x (Input): its output 3x1000000x1000000 is 3,000,000,000,000 values" in refused(capsys, path)
    path.write_text(chain([3, 10 ** 30], "type: ReLU"), encoding="utf-8")
    assert "nodes[0].params.shape: [3, 1000000000000000000000000000000]" in refused(capsys, path)


@given(st.integers())
def test_every_int_param_holds_only_what_torch_takes(value):
    for param in (REGISTRY["Affine"].param("out_features"), REGISTRY["Slice"].param("stop")):
        try:
            assert param.check(value) == value and abs(value) <= INT_MAX
        except ValueError as exc:
            assert abs(value) > INT_MAX or value < (param.lo or 0), exc
    try:
        assert REGISTRY["Convolution"].param("pad").check([1, value]) == (1, value) and 0 <= value <= INT_MAX
    except ValueError:
        assert not 0 <= value <= INT_MAX


def test_the_largest_int_is_still_accepted():
    assert REGISTRY["Affine"].param("out_features").check(INT_MAX) == INT_MAX


def bomb(depth: int) -> str:
    """Blocks b1..b``depth``, each using the one before twice: b``depth`` expands to about 2^depth nodes."""
    lines = ["blocks:", "  b0:", "    output: r", "    nodes:", "    - {id: x, type: Input, params: {shape: [4]}}",
             "    - {id: r, type: ReLU}", "    links:", "    - x -> r"]
    for i in range(1, depth + 1):
        lines += [f"  b{i}:", "    output: u2", "    nodes:", "    - {id: x, type: Input, params: {shape: [4]}}",
                  f"    - {{id: u1, type: b{i - 1}}}", f"    - {{id: u2, type: b{i - 1}}}", "    links:",
                  "    - x -> u1", "    - u1 -> u2"]
    return "\n".join(lines) + "\n"


def test_a_block_expansion_bomb_is_refused_in_under_a_second(tmp_path, capsys):
    path = tmp_path / "bomb.graph.yaml"
    path.write_text(chain([4], "type: b30", blocks=bomb(30)), encoding="utf-8")
    line = refused(capsys, path, seconds=1.0)
    assert "blocks.b19: block b19 is 1,572,863 nodes with its blocks expanded, over the 1,000,000" in line
    assert "block b19 uses b18 2 times (786,431 nodes each), b18 uses b17 2 times" in line
    assert "b1 uses b0 2 times (2 nodes each); use these blocks fewer times" in line


def test_a_network_using_blocks_too_often_is_refused_naming_the_network(tmp_path, capsys):
    path = tmp_path / "wide.graph.yaml"
    path.write_text(chain([4], *["type: b15"] * 40, blocks=bomb(15)), encoding="utf-8")
    line = refused(capsys, path, seconds=1.0)
    assert "networks.main: network main is 3,932,121 nodes with its blocks expanded" in line
    assert "network main uses b15 40 times (98,303 nodes each), b15 uses b14 2 times" in line


def test_nested_blocks_under_the_limit_still_load():
    project = gc.loads(chain([4], "type: b3", blocks=bomb(3)))
    assert not gc.validate(project)


EXAMPLES = sorted((Path(__file__).resolve().parent.parent / "examples").glob("*.graph.yaml"))


@pytest.mark.parametrize("loader", [yaml.SafeLoader, getattr(yaml, "CSafeLoader", yaml.SafeLoader)])
def test_one_read_gives_what_safe_load_gives_with_either_loader(monkeypatch, loader):
    monkeypatch.setattr(yamlread, "LOADER", loader)
    for path in EXAMPLES:
        text = path.read_text(encoding="utf-8")
        data, tree = yamlread.read(text)
        assert data == yaml.safe_load(text), path.name
        assert tree.start_mark.line == yaml.compose(text, Loader=yaml.SafeLoader).start_mark.line


def test_text_nested_too_deep_is_refused_not_a_crash():
    # libyaml's own composer overflows the C stack at this depth and kills the process.
    with pytest.raises(gc.GraphError, match="t.graph.yaml:1: nested more than 100 deep"):
        gc.loads("[" * 200_000 + "]" * 200_000, file="t.graph.yaml")


def test_a_second_document_is_refused_with_its_line():
    with pytest.raises(gc.GraphError, match=r"t.graph.yaml:2: not valid YAML: but found another document"):
        gc.loads("format: netcanvas/1\n---\nname: x\n---\nname: y\n", file="t.graph.yaml")


@pytest.mark.parametrize("make, expect", [
    (lambda p: p.symlink_to("/dev/zero"), "is a device, pipe or socket, not a regular file"),
    (lambda p: os.mkfifo(p), "is a device, pipe or socket, not a regular file"),
    (lambda p: p.mkdir(), "is a folder"),
    (lambda p: p.write_bytes(b"") or os.truncate(p, MAX_FILE_BYTES + 1),
     "is 64 MB, over the 64 MB a project file may be"),
])
@pytest.mark.parametrize("command", ["validate", "info"])
def test_what_is_not_a_project_file_is_refused_before_reading(tmp_path, capsys, make, expect, command):
    path = tmp_path / "odd.graph.yaml"
    make(path)
    assert f"odd.graph.yaml: cannot read: it {expect}" in refused(capsys, path, command)


def test_saving_through_a_symlink_writes_the_file_it_points_to(tmp_path):
    real = tmp_path / "real" / "net.graph.yaml"
    real.parent.mkdir()
    gc.save(gc.Project(name="first"), real)
    link = tmp_path / "link.graph.yaml"
    link.symlink_to(real)
    gc.save(gc.Project(name="second"), link)
    assert link.is_symlink() and gc.load(real).name == "second"
    assert sorted(p.name for p in real.parent.iterdir()) == ["net.graph.yaml"]


def test_a_save_removes_the_temporary_files_a_killed_save_left(tmp_path):
    path = tmp_path / "net.graph.yaml"
    gc.save(gc.Project(name="first"), path)
    stray, newer, other = (tmp_path / ".net.graph.yaml.k1lled_9.tmp", tmp_path / ".net.graph.yaml.wr1ting_.tmp",
                           tmp_path / ".net.graph.yaml.notours.tmp")
    for file in (stray, newer, other):
        file.write_text("partial")
        os.utime(file, (1, 1))
    future = time.time() + 3600
    os.utime(newer, (future, future))
    gc.save(gc.Project(name="second"), path)
    assert not stray.exists() and newer.exists() and other.exists()


_SCALARS = (st.none() | st.booleans() | st.integers(-10**12, 10**12) | st.floats(allow_nan=False)
            | st.text(max_size=8) | st.sampled_from(["yes", "no", "on", "0x1f", "1_000", "2001-12-14", "~", "1e3",
                                                       ".inf", "-.nan", "null", "<<", "="]))
_DATA = st.recursive(_SCALARS, lambda inner: st.lists(inner, max_size=4)
                     | st.dictionaries(_SCALARS.filter(lambda k: k == k), inner, max_size=4), max_leaves=30)


@settings(max_examples=300, deadline=None)
@given(_DATA, st.sampled_from([None, True, False]))
def test_the_reader_builds_what_safe_load_builds(data, flow):
    text = yaml.safe_dump(data, default_flow_style=flow, allow_unicode=True)
    assert yamlread.read(text)[0] == yaml.safe_load(text)


@pytest.mark.parametrize("text", [
    "base: &b {x: 1}\nother:\n  <<: {x: 2, y: 3}\n  z: 4\n",  # a merge key (without aliases)
    "s: !!set {a, b}\n",
    "o: !!omap [{a: 1}, {b: 2}]\n",
    "t: 2001-12-14t21:59:43.10-05:00\nb: !!binary aGVsbG8=\n",
    "= : 1\n",
])
def test_what_only_the_constructors_walk_handles_is_built_by_it(text):
    if "&b" in text:
        text = text.replace("&b ", "")
    assert yamlread.read(text)[0] == yaml.safe_load(text)


def test_an_unhashable_key_is_refused_as_safe_load_refuses_it():
    with pytest.raises(yaml.constructor.ConstructorError, match="found unhashable key"):
        yamlread.read("? [1, 2]\n: x\n")
