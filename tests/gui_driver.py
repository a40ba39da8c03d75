"""Drive the real designer on a virtual screen: Xvfb for the display, xdotool for mouse and keys.

The app, run with NETCANVAS_UI_STATE, writes where its widgets are after every change; the
driver reads that to know where to press, then sends real X events.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"


def require_tools() -> None:
    """Skip where the virtual screen tools are missing, except in CI, where that is a failure."""
    missing = [tool for tool in ("Xvfb", "xdotool", "import") if shutil.which(tool) is None]
    if missing:
        message = f"GUI tests need {', '.join(missing)} (apt-get install xvfb xdotool imagemagick)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


class VirtualScreen:
    """An Xvfb server on a free display number."""

    def __init__(self, size: str = "1600x1000x24"):
        self.display = None
        for number in range(91, 120):
            if not Path(f"/tmp/.X11-unix/X{number}").exists() and not Path(f"/tmp/.X{number}-lock").exists():
                self.display = f":{number}"
                break
        # No key auto-repeat: on a busy machine a key held a little long would otherwise type twice.
        self.proc = subprocess.Popen(["Xvfb", self.display, "-screen", "0", size, "-nolisten", "tcp",
                                      "-ardelay", "100000", "-arinterval", "100000"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 10
        while not Path(f"/tmp/.X11-unix/X{self.display[1:]}").exists():
            if time.time() > deadline:
                raise RuntimeError("Xvfb did not start")
            time.sleep(0.05)

    def close(self) -> None:
        """Stop the server."""
        self.proc.terminate()
        self.proc.wait(timeout=10)


class Designer:
    """A running `netcanvas design` process and the means to press its buttons."""

    def __init__(self, screen: VirtualScreen, project: Path, workdir: Path):
        self.env = dict(os.environ, DISPLAY=screen.display, XDG_CONFIG_HOME=str(workdir / "config"),
                        NETCANVAS_UI_STATE=str(workdir / "ui-state.json"))
        self.state_file = workdir / "ui-state.json"
        self.log = open(workdir / "designer.log", "w")
        self.proc = subprocess.Popen([sys.executable, "-m", "netcanvas", "design", str(project)], env=self.env,
                                     stdout=self.log, stderr=subprocess.STDOUT)
        self.wait(lambda s: s["nodes"] is not None, "the window to come up", timeout=60)
        time.sleep(0.5)

    def state(self) -> dict:
        """The app's latest description of its screen."""
        try:
            return json.loads(self.state_file.read_text())
        except (OSError, ValueError):
            return {"nodes": None}

    def wait(self, predicate, what: str, timeout: float = 15) -> dict:
        """Wait until the app's state satisfies ``predicate``."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"the designer exited with {self.proc.returncode}: {self.read_log()}")
            state = self.state()
            try:
                if state.get("nodes") is not None and predicate(state):
                    return state
            except (KeyError, TypeError, IndexError):
                pass
            time.sleep(0.1)
        raise AssertionError(f"timed out waiting for {what}; last state: {json.dumps(self.state())[:2000]}")

    def settle(self, frames: int = 3) -> None:
        """Wait until the app has drawn a few more frames, so it has seen the last X events."""
        start = self.state().get("frame", 0)
        self.wait(lambda s: s.get("frame", 0) >= start + frames, f"{frames} frames", timeout=30)

    def read_log(self) -> str:
        """What the app printed."""
        self.log.flush()
        return Path(self.log.name).read_text()[-3000:]

    def xdo(self, *args: str | int | float) -> None:
        """Run one xdotool command on the virtual screen."""
        subprocess.run(["xdotool", *map(str, args)], env=self.env, check=True)

    def click(self, x: float, y: float) -> None:
        """Left click at a screen point."""
        self.xdo("mousemove", int(x), int(y))
        self.settle()
        self.xdo("click", 1)
        self.settle()

    def drag(self, start: tuple[float, float], end: tuple[float, float], steps: int = 12) -> None:
        """Press at ``start``, move in steps (frames apart) to ``end``, release."""
        self.xdo("mousemove", int(start[0]), int(start[1]))
        self.settle()
        self.xdo("mousedown", 1)
        self.settle()
        for i in range(1, steps + 1):
            x = start[0] + (end[0] - start[0]) * i / steps
            y = start[1] + (end[1] - start[1]) * i / steps
            self.xdo("mousemove", int(x), int(y))
            self.settle(1)
        self.settle()
        self.xdo("mouseup", 1)
        self.settle()

    def key(self, *keys: str, delay_ms: int = 80) -> None:
        """Press keys (xdotool names, e.g. Return or ctrl+s); a shortcut's modifiers are held around its key.

        An idle window draws 10 frames a second, and a shortcut is read with the modifiers down in the
        frame that sees the key: ``xdotool key ctrl+y`` can release ctrl before that frame.
        """
        for combo in keys:
            *modifiers, key = combo.split("+")
            if not modifiers:
                self.xdo("key", "--delay", delay_ms, key)
                continue
            for modifier in modifiers:
                self.xdo("keydown", modifier)
            self.settle(1)
            self.xdo("key", key)
            self.settle(1)
            for modifier in reversed(modifiers):
                self.xdo("keyup", modifier)
        self.settle()

    def type(self, text: str) -> None:
        """Type text into the focused widget."""
        self.xdo("type", "--delay", "60", text)
        self.settle()

    def replace_text(self, field: list[float], text: str) -> None:
        """Click into a text field, erase what it holds, type ``text``.

        End and BackSpace rather than Ctrl+A: on a busy machine Ctrl can reach the app a frame
        after the A, which then types an 'a'.
        """
        self.click(*centre(field))
        self.key("End", *["BackSpace"] * 24, delay_ms=25)
        self.type(text)

    def tab(self, name: str) -> dict:
        """Click a tab of the workspace; a click that lands while the app is still busy with earlier input is
        clicked again."""
        for attempt in range(3):
            self.click(*centre(self.state()["workspace"]["rects"][f"tab_{name}"]))
            try:
                return self.wait(lambda s: s["workspace"]["tab"] == f"tab_{name}", f"the {name} tab", timeout=8)
            except AssertionError:
                if attempt == 2:
                    raise

    def press(self, button: str) -> None:
        """Click a workspace button once it is on screen (a window's button only once the window shows)."""
        state = self.wait(lambda s: s["workspace"]["rects"][button][2] > 0, f"{button} on screen")
        self.click(*centre(state["workspace"]["rects"][button]))

    def screenshot(self, name: str) -> Path:
        """Save the whole virtual screen as a PNG under test-artifacts/."""
        ARTIFACTS.mkdir(exist_ok=True)
        path = ARTIFACTS / name
        subprocess.run(["import", "-window", "root", str(path)], env=self.env, check=True)
        return path

    def close(self) -> None:
        """End the app (it is not asked about unsaved work)."""
        self.proc.kill()
        self.proc.wait(timeout=10)
        self.log.close()


def centre(rect: list[float]) -> tuple[float, float]:
    """Middle of an [x, y, w, h] rectangle."""
    return rect[0] + rect[2] / 2, rect[1] + rect[3] / 2


def output_pin(state: dict, node_id: str, port: str = "y") -> tuple[float, float]:
    """Screen point of one of a node's output pins: the right edge, level with its row."""
    node = state["nodes"][node_id]
    x, _, w, _ = node["rect"]
    return x + w - 1, centre(node["outputs"][port])[1]


def input_pin(state: dict, node_id: str, port: str) -> tuple[float, float]:
    """Screen point of one of a node's input pins: the left edge, level with its row."""
    node = state["nodes"][node_id]
    return node["rect"][0] + 1, centre(node["inputs"][port])[1]
