"""Designer speed: time to the first frame, frame time at Fit, the cost of one edit, and the layout.

Run under a display (e.g. `xvfb-run -s "-screen 0 1600x1000x24" python bench/bench_designer.py`).
The references are measured in the same run: a bare dearpygui window with one node for the
start-up, the designer showing a 2-node network for the frame time (on a machine without a GPU
that is mostly the software rasteriser filling the window), and the same window with nothing
changing for the cost of an edit.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import dearpygui.dearpygui as dpg

import graphcompiler as gc
from designer.app import DesignerApp
from designer.model import EditorModel
from graphcompiler.layout import auto_layout

ROOT = Path(__file__).resolve().parent.parent
BARE_WINDOW = """
import dearpygui.dearpygui as dpg
dpg.create_context(); dpg.create_viewport(width=1600, height=1000); dpg.setup_dearpygui()
with dpg.window(tag="w"):
    with dpg.node_editor():
        with dpg.node(label="n"):
            with dpg.node_attribute():
                dpg.add_text("x")
dpg.set_primary_window("w", True); dpg.show_viewport(); dpg.render_dearpygui_frame(); dpg.destroy_context()
"""
TORCH_FREE = "import sys, designer.app; print(sorted(m for m in ('torch', 'matplotlib', 'optuna') if m in sys.modules))"


def _wall(cmd: list[str], repeats: int = 5) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def chain_project(nodes: int) -> gc.Project:
    """A long network: Input then blocks of Convolution, BatchNormalization, ReLU."""
    graph = gc.Graph()
    graph.add_node("x", "Input", {"shape": [16, 32, 32]})
    last, kinds = "x", [("Convolution", {"out_channels": 16, "pad": [1, 1]}), ("BatchNormalization", {}),
                        ("ReLU", {})]
    for i in range(1, nodes):
        layer_type, params = kinds[i % 3]
        node_id = f"n{i}"
        graph.add_node(node_id, layer_type, params)
        graph.connect(last, node_id)
        last = node_id
    return gc.Project(name=f"chain{nodes}", networks={"main": graph})


def residual_graph(nodes: int) -> gc.Graph:
    """A ResNet-like network: pairs of convolutions with a skip link around each pair."""
    graph = gc.Graph()
    graph.add_node("x", "Input", {"shape": [16, 32, 32]})
    last, i = "x", 0
    while len(graph) < nodes:
        first, second, add = f"c{i}a", f"c{i}b", f"add{i}"
        graph.add_node(first, "Convolution", {"out_channels": 16, "pad": [1, 1]})
        graph.add_node(second, "Convolution", {"out_channels": 16, "pad": [1, 1]})
        graph.add_node(add, "Add2")
        graph.connect(last, first)
        graph.connect(first, second)
        graph.connect(second, add, None, "x0")
        graph.connect(last, add, None, "x1")
        last, i = add, i + 1
    return graph


def _frames(app: DesignerApp, count: int) -> list[float]:
    """Seconds per frame, nothing changing."""
    times = []
    for _ in range(count):
        start = time.perf_counter()
        app.sync()
        dpg.render_dearpygui_frame()
        times.append(time.perf_counter() - start)
    return times


def _show(app: DesignerApp, project: gc.Project) -> None:
    """Put a project in the (one) window, laid out and fitted; a process has one dearpygui context."""
    app.model.reset(project)
    app.model.auto_layout()
    app.fit()
    _frames(app, 3)
    app._fit_now()
    _frames(app, 10)


def _edits(app: DesignerApp, node_id: str, param: str, values: tuple, count: int) -> tuple[list[float], list[float]]:
    """Seconds for a param edit in the model plus the view's sync (Python), and for the whole frame."""
    python, frame = [], []
    for i in range(count):
        start = time.perf_counter()
        app.model.set_param(node_id, param, values[i % 2])
        app.sync()
        python.append(time.perf_counter() - start)
        dpg.render_dearpygui_frame()
        frame.append(time.perf_counter() - start)
    return python, frame


def main() -> None:
    """Print every measurement with its reference."""
    with tempfile.TemporaryDirectory() as folder:
        big = Path(folder) / "chain500.graph.yaml"
        gc.save(chain_project(500), big)
        bare = _wall([sys.executable, "-c", BARE_WINDOW])
        print(f"bare dearpygui window with one node, start to first frame: {bare * 1000:.0f} ms")
        for name, path in (("VGG16", ROOT / "examples/vgg16.graph.yaml"), ("U-Net", ROOT / "examples/unet.graph.yaml"),
                           ("500-node chain", big)):
            first = _wall([sys.executable, "-m", "netcanvas", "design", str(path), "--frames", "1"])
            print(f"netcanvas design {name}, start to first frame: {first * 1000:.0f} ms (goal < 1000 ms for VGG16), "
                  f"ratio to the bare window {first / bare:.2f}")
    heavy = subprocess.run([sys.executable, "-c", TORCH_FREE], check=True, capture_output=True, text=True).stdout
    print(f"heavy modules imported by `import designer.app`: {heavy.strip()}")

    app = DesignerApp(EditorModel())
    app.build()
    _show(app, chain_project(2))
    empty = _frames(app, 60)
    _show(app, gc.load(ROOT / "examples/vgg16.graph.yaml"))
    vgg_idle = _frames(app, 60)
    vgg_python, vgg_frame = _edits(app, "conv1_1", "out_channels", (64, 32), 40)
    _show(app, chain_project(500))
    idle = _frames(app, 60)
    zoom = app.view.zoom
    python, edited = _edits(app, "n3", "out_channels", (16, 32), 40)
    dpg.destroy_context()
    ms = lambda xs: statistics.median(xs) * 1000
    print(f"frame at Fit ({zoom:.0%}) with nothing changing: 500 nodes {ms(idle):.1f} ms (goal <= 33 ms), "
          f"2 nodes {ms(empty):.1f} ms, ratio {ms(idle) / ms(empty):.2f}")
    print(f"VGG16, one edit: model command and view sync {ms(vgg_python):.2f} ms, "
          f"to the drawn frame {ms(vgg_frame):.1f} ms (goal < 16 ms); idle frame {ms(vgg_idle):.1f} ms; "
          f"ratio edited/idle frame {ms(vgg_frame) / ms(vgg_idle):.2f}")
    print(f"500 nodes, one edit: model command and view sync {ms(python):.2f} ms, "
          f"to the drawn frame {ms(edited):.1f} ms; "
          f"ratio edited/idle frame {ms(edited) / ms(idle):.2f}")
    for nodes in (100, 1000, 5000):
        graph = residual_graph(nodes)
        shapes = gc.infer_shapes(graph)
        start = time.perf_counter()
        auto_layout(graph, shapes)
        layout = time.perf_counter() - start
        start = time.perf_counter()
        gc.infer_shapes(graph)
        inference = time.perf_counter() - start
        print(f"layout of {len(graph)} nodes (residual): {layout * 1000:.0f} ms; shape inference of the same "
              f"graph {inference * 1000:.0f} ms, ratio {layout / inference:.1f}")


if __name__ == "__main__":
    main()
