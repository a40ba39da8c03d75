"""Every file in tests/bad_projects/ holds exactly one defect; each must be reported as one clear error.

A file starts with ``# expect: <substring>``: text the error message must contain (the field path
or node id and the gist). An optional second line ``# line: N [M ...]`` gives the line number(s)
the error may be reported at, as ``file:LINE: where: message``.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import graphcompiler
from graphcompiler import GraphError
from netcanvas.cli import main

ROOT = Path(__file__).resolve().parent.parent
BAD = Path(__file__).resolve().parent / "bad_projects"
FILES = sorted(BAD.glob("*.graph.yaml"))

def expectation(path: Path) -> tuple[str, list[int]]:
    """The ``# expect:`` substring and the allowed ``# line:`` numbers of a bad project."""
    lines = path.read_text(encoding="utf-8").splitlines()
    match = re.fullmatch(r"# expect: (.+)", lines[0])
    assert match, f"{path.name}: first line must be '# expect: <substring>'"
    allowed = []
    if len(lines) > 1 and lines[1].startswith("# line:"):
        allowed = [int(n) for n in lines[1].removeprefix("# line:").split()]
    return match.group(1).strip(), allowed


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def error_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("error:")]


def check_report(path_text: str, expect: str, code: int, out: str, err: str) -> None:
    assert code == 1, f"exit code {code}\nstdout: {out}\nstderr: {err}"
    assert "Traceback" not in out + err
    errors = error_lines(err)
    assert len(errors) == 1, f"expected exactly one error line, got:\n{err}"
    assert expect in errors[0], f"{expect!r} not in {errors[0]!r}"
    assert path_text in errors[0], f"file name {path_text!r} not in {errors[0]!r}"
    assert f"{path_text}: ok" not in out


def test_the_folder_covers_enough_defects():
    assert len(FILES) >= 18
    names = [p.name for p in FILES]
    assert all(re.fullmatch(r"\d\d_[a-z0-9_]+\.graph\.yaml", n) for n in names), names
    assert len({n[:2] for n in names}) == len(names), "numbers must be unique"
    for path in FILES:
        expect, _ = expectation(path)
        assert len(expect) >= 10, f"{path.name}: make the expected substring specific"


# ----------------------------------------------------------------------------------- command line

@pytest.mark.parametrize("path", FILES)
def test_validate_reports_one_clear_error(path, capsys):
    expect, _ = expectation(path)
    code, out, err = run_cli(capsys, "validate", str(path))
    check_report(str(path), expect, code, out, err)


@pytest.mark.parametrize("path", [p for p in FILES if expectation(p)[1]])
def test_error_names_the_right_line(path, capsys):
    _, allowed = expectation(path)
    code, _, err = run_cli(capsys, "validate", str(path))
    assert code == 1
    errors = error_lines(err)
    assert len(errors) == 1, err
    match = re.match(rf"error: {re.escape(str(path))}:(\d+): ", errors[0])
    assert match, f"no 'file:LINE: ' prefix in {errors[0]!r}"
    assert int(match.group(1)) in allowed, f"line {match.group(1)} reported, expected one of {allowed}"


def test_line_numbers_spot_checks(capsys):
    """A few line numbers checked by hand against the files."""
    for name, line, where in (("10_kernel_string", 13, "networks.main.nodes[1].params.kernel"),
                              ("17_duplicate_id", 10, "networks.main.nodes[2].id"),
                              ("23_cycle", 15, "networks.main.links[2]"),
                              ("03_python_tag", 8, None)):
        path = BAD / f"{name}.graph.yaml"
        code, _, err = run_cli(capsys, "validate", str(path))
        assert code == 1
        prefix = f"error: {path}:{line}: " + (f"{where}: " if where else "")
        assert err.startswith(prefix), f"{err!r} does not start with {prefix!r}"
    # The text at that line is the defect itself.
    text = (BAD / "10_kernel_string.graph.yaml").read_text().splitlines()
    assert text[13 - 1].strip() == 'kernel: "3x3"'
    text = (BAD / "23_cycle.graph.yaml").read_text().splitlines()
    assert text[15 - 1].strip() == "- relu2 -> add.x1"


SUBPROCESS_CASES = ["01_bad_indentation", "03_python_tag", "08_unknown_layer_type", "23_cycle",
                    "28_kernel_too_big"]


@pytest.mark.parametrize("name", SUBPROCESS_CASES)
def test_validate_subprocess(name):
    path = BAD / f"{name}.graph.yaml"
    rel = str(path.relative_to(ROOT))
    expect, _ = expectation(path)
    proc = subprocess.run([sys.executable, "-m", "netcanvas", "validate", rel], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    check_report(rel, expect, proc.returncode, proc.stdout, proc.stderr)


def test_validate_many_files_reports_each(capsys):
    good = ROOT / "examples" / "lenet.graph.yaml"
    bad = FILES
    code, out, err = run_cli(capsys, "validate", str(good), *map(str, bad))
    assert code == 1
    assert f"{good}: ok" in out
    assert "Traceback" not in out + err
    errors = error_lines(err)
    assert len(errors) == len(bad)
    for path, line in zip(bad, errors):
        assert str(path) in line
        assert expectation(path)[0] in line


def test_python_tag_is_not_executed(tmp_path, capsys):
    marker = tmp_path / "pwned"
    project = tmp_path / "evil.graph.yaml"
    project.write_text("format: netcanvas/1\nname: evil\nnetworks:\n  main:\n    nodes:\n"
                       f"    - {{id: x, type: Input, params: {{shape: !!python/object/apply:os.system "
                       f"['touch {marker}']}}}}\n")
    code, _, err = run_cli(capsys, "validate", str(project))
    assert code == 1
    assert not marker.exists()
    assert f"error: {project}:6: " in err
    assert "plain data only" in err


def test_zero_byte_file(tmp_path, capsys):
    project = tmp_path / "zero.graph.yaml"
    project.write_bytes(b"")
    code, out, err = run_cli(capsys, "validate", str(project))
    check_report(str(project), "the file is empty", code, out, err)


def test_not_utf8(tmp_path, capsys):
    project = tmp_path / "binary.graph.yaml"
    project.write_bytes(b"format: netcanvas/1\n\xff\xfe\x00\n")
    code, out, err = run_cli(capsys, "validate", str(project))
    check_report(str(project), "cannot read", code, out, err)


def test_deeply_nested_yaml_is_an_error_not_a_traceback(tmp_path):
    project = tmp_path / "deep.graph.yaml"
    project.write_text("format: netcanvas/1\nname: deep\nnetworks: " + "[" * 5000 + "]" * 5000 + "\n")
    proc = subprocess.run([sys.executable, "-m", "netcanvas", "validate", str(project)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stdout + proc.stderr
    errors = error_lines(proc.stderr)
    assert len(errors) == 1 and str(project) in errors[0], proc.stderr


# ------------------------------------------------------------------------------------- Python API

@pytest.mark.parametrize("path", FILES)
def test_api_raises_or_returns_graph_errors_only(path):
    expect, allowed = expectation(path)
    (checked,) = graphcompiler.check_file(path)
    assert checked.file == str(path) and expect in str(checked)
    assert not allowed or checked.line in allowed
    try:
        project = graphcompiler.load(path)  # any exception but GraphError fails the test
    except GraphError as exc:
        assert exc.file == str(path) and expect in str(exc)
        return
    problems = graphcompiler.validate(project)
    assert all(isinstance(p, GraphError) for p in problems)
    assert len(problems) == 1, [str(p) for p in problems]
    assert expect in str(problems[0])
    assert problems[0].where and problems[0].where.startswith("networks.")


def test_loads_without_file_name():
    text = (BAD / "10_kernel_string.graph.yaml").read_text()
    with pytest.raises(GraphError) as info:
        graphcompiler.loads(text)
    assert info.value.file is None
    assert info.value.line == 13
    assert info.value.where == "networks.main.nodes[1].params.kernel"
    assert str(info.value) == "networks.main.nodes[1].params.kernel: expected one or two positive ints, got '3x3'"


def test_shape_errors_name_their_node():
    project = graphcompiler.load(BAD / "28_kernel_too_big.graph.yaml")
    (problem,) = graphcompiler.validate(project)
    assert problem.node == "conv"
    assert problem.where == "networks.main.nodes[1]"


def test_missing_file_is_a_graph_error(tmp_path):
    with pytest.raises(GraphError) as info:
        graphcompiler.load(tmp_path / "nope.graph.yaml")
    assert info.value.file == str(tmp_path / "nope.graph.yaml")
    assert "no such file" in str(info.value)


@pytest.mark.skipif(os.name != "posix", reason="directory read error text is platform specific")
def test_directory_is_a_graph_error(tmp_path):
    with pytest.raises(GraphError) as info:
        graphcompiler.load(tmp_path)
    assert "cannot read" in str(info.value)
