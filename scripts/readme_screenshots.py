"""Make the README's pictures of the designer: the Dataset, Training, Evaluation and Search tabs.

Runs the real designer on a virtual screen (Xvfb) and drives it with xdotool, as the GUI tests do:
LeNet on the digits data set trained for a few epochs from the Train button, then a short search
stopped with the Stop button. Writes docs/images/designer-<tab>.png.

    python scripts/readme_screenshots.py
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

import graphcompiler as gc  # noqa: E402
from gui_driver import Designer, VirtualScreen, centre  # noqa: E402
from runtime.example_data import write_dataset  # noqa: E402

IMAGES = ROOT / "docs" / "images"


def show(app: Designer, tab: str) -> None:
    """Click a tab and wait until it is the one shown."""
    app.click(*centre(app.state()["workspace"]["rects"][f"tab_{tab}"]))
    app.wait(lambda s: s["workspace"]["tab"] == f"tab_{tab}", f"the {tab} tab")


def press(app: Designer, button: str) -> None:
    """Click one of the tabs' buttons."""
    app.click(*centre(app.state()["workspace"]["rects"][button]))


def keep(app: Designer, name: str) -> None:
    """Screenshot the whole screen into docs/images."""
    app.xdo("mousemove", 1590, 990)  # the pointer out of the picture
    app.settle()
    time.sleep(0.5)
    shutil.copy(app.screenshot(name), IMAGES / name)
    print(IMAGES / name)


def main() -> None:
    IMAGES.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        write_dataset("digits", tmp / "data/digits-28", size=28)
        project = gc.load(ROOT / "examples/lenet.graph.yaml")
        project.sections["training"]["epochs"] = 8
        project.sections["search"] = {"trial_epochs": 1, "seed": 2}
        path = tmp / "lenet.graph.yaml"
        gc.save(project, path)
        screen = VirtualScreen()
        app = Designer(screen, path, tmp)
        try:
            show(app, "dataset")
            app.wait(lambda s: s["workspace"]["preview_problems"], "the preview", timeout=60)
            keep(app, "designer-dataset.png")
            show(app, "training")
            press(app, "train_button")
            app.wait(lambda s: s["workspace"]["training_state"] == "done", "the run", timeout=600)
            keep(app, "designer-training.png")
            show(app, "evaluation")
            app.wait(lambda s: s["workspace"]["confusion"], "the confusion matrix", timeout=60)
            keep(app, "designer-evaluation.png")
            show(app, "search")
            press(app, "search_start")
            app.wait(lambda s: len(s["workspace"]["search_numbers"]) >= 10, "ten trials", timeout=900)
            press(app, "search_stop")
            app.wait(lambda s: s["workspace"]["search_state"] == "stopped", "the search to stop", timeout=300)
            plot = app.state()["workspace"]["rects"]["search_plot"]
            app.click(*centre(plot))
            app.wait(lambda s: s["workspace"]["candidate"].startswith("trial "), "a candidate")
            keep(app, "designer-search.png")
        finally:
            app.close()
            screen.close()


if __name__ == "__main__":
    main()
