"""Designer speed: time to the first frame, frame time with 500 nodes, and the cost of one edit.

Run under a display (e.g. `xvfb-run -s "-screen 0 1600x1000x24" python bench/bench_designer.py`).
The references are measured in the same run: a bare dearpygui window with one node for the
start-up, the designer showing a 2-node network for the frame time (on a machine without a GPU
that is mostly the software rasteriser filling the window), and the 500-node window with nothing
changing for the cost of an edit.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

import graphcompiler as gc
import dearpygui.dearpygui as dpg

from designer.app import DesignerApp
from designer.model import EditorModel

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


def _wall(cmd: list[str], repeats: int = 5) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def chain_project(nodes: int) -> gc.Project:
    """A 500-node-style network: Input then blocks of Convolution, BatchNormalization, ReLU."""
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
    """Put a project in the (one) window; dearpygui cannot make a second context in a process."""
    app.model.reset(project)
    app.model.auto_layout()
    app.fit()
    _frames(app, 10)


def _edits(app: DesignerApp, count: int) -> tuple[list[float], list[float]]:
    """Seconds for a param edit in the model (shapes refreshed), and for the frame that shows it."""
    refresh, frame = [], []
    for i in range(count):
        start = time.perf_counter()
        app.model.set_param("n3", "out_channels", (16, 32)[i % 2])
        refresh.append(time.perf_counter() - start)
        frame.extend(_frames(app, 1))
    return refresh, frame


def main() -> None:
    """Print the three measurements with their references."""
    first = _wall([sys.executable, "-m", "netcanvas", "design", str(ROOT / "examples/vgg16.graph.yaml"),
                   "--frames", "1"])
    bare = _wall([sys.executable, "-c", BARE_WINDOW])
    imports = _wall([sys.executable, "-c", "import graphcompiler"])
    print(f"start to first frame, VGG16: {first * 1000:.0f} ms; bare dearpygui window: {bare * 1000:.0f} ms; "
          f"ratio {first / bare:.2f} (importing graphcompiler, i.e. torch, alone: {imports * 1000:.0f} ms)")

    app = DesignerApp(EditorModel())
    app.build()
    _show(app, chain_project(2))
    empty = _frames(app, 60)
    _show(app, chain_project(500))
    idle = _frames(app, 60)
    refresh, edited = _edits(app, 40)
    dpg.destroy_context()
    ms = lambda xs: statistics.median(xs) * 1000
    print(f"frame with nothing changing: 500 nodes {ms(idle):.1f} ms (goal <= 33 ms), 2 nodes {ms(empty):.1f} ms, "
          f"ratio {ms(idle) / ms(empty):.2f}")
    print(f"500 nodes, one edit: model command with shape refresh {ms(refresh):.2f} ms (goal < 5 ms), "
          f"then the redrawn frame {ms(edited):.1f} ms; ratio edited/idle frame {ms(edited) / ms(idle):.2f}")


if __name__ == "__main__":
    main()
