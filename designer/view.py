"""The canvas's coordinate mapping: zoom and scroll, kept apart from the widgets so it is testable.

The model keeps canvas coordinates (100% zoom). dearpygui's node editor cannot scale, so the view
draws each node at ``(canvas - origin) * zoom`` in the editor's grid, in a font of the matching size.
The editor's own panning (a middle-button drag) adds a screen offset the view measures, not sets.
"""

from __future__ import annotations

from dataclasses import dataclass

Point = tuple[float, float]
ZOOMS = (0.015, 0.02, 0.03, 0.05, 0.075, 0.1, 0.125, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.6, 0.75, 0.9, 1.0, 1.25,
         1.5, 2.0)
"""The zoom steps: one font is loaded for each."""
COMPACT_BELOW = 0.5
"""Under this zoom a node shows its id and output shape only."""
BOX_BELOW = 0.1
"""Under this zoom a node is a plain box: no text, no pins (they would cover it), sized by the layout's estimate."""
FIT_MARGIN = 24.0


@dataclass
class CanvasView:
    """Zoom and the canvas point at the editor grid's origin."""

    zoom: float = 1.0
    origin: Point = (0.0, 0.0)

    def to_grid(self, canvas: Point) -> Point:
        """Where a canvas point is drawn in the editor's grid."""
        return ((canvas[0] - self.origin[0]) * self.zoom, (canvas[1] - self.origin[1]) * self.zoom)

    def to_canvas(self, grid: Point) -> Point:
        """The canvas point drawn at a grid position."""
        return (grid[0] / self.zoom + self.origin[0], grid[1] / self.zoom + self.origin[1])

    def step(self, direction: int) -> float:
        """The next zoom step in or out (``direction`` +1 or -1) from the current zoom."""
        index = min(range(len(ZOOMS)), key=lambda i: abs(ZOOMS[i] - self.zoom))
        return ZOOMS[max(0, min(len(ZOOMS) - 1, index + direction))]

    def zoom_about(self, zoom: float, grid_point: Point) -> None:
        """Change the zoom keeping the canvas point at ``grid_point`` (the mouse) where it is on screen."""
        anchor = self.to_canvas(grid_point)
        self.zoom = zoom
        self.origin = (anchor[0] - grid_point[0] / zoom, anchor[1] - grid_point[1] / zoom)

    def fit(self, bounds: tuple[float, float, float, float], area: Point, pan: Point = (0.0, 0.0)) -> None:
        """The largest zoom step at which ``bounds`` (canvas left, top, right, bottom) fits ``area``,
        scrolled so they start at the area's top-left corner; ``pan`` is the editor's own panning."""
        left, top, right, bottom = bounds
        room = (area[0] - 2 * FIT_MARGIN, area[1] - 2 * FIT_MARGIN)
        fitting = [z for z in ZOOMS if (right - left) * z <= room[0] and (bottom - top) * z <= room[1]]
        self.zoom = min(max(fitting, default=ZOOMS[0]), 1.0)
        self.origin = (left - (FIT_MARGIN - pan[0]) / self.zoom, top - (FIT_MARGIN - pan[1]) / self.zoom)
