"""The run's pictures as a reader sees them: rendered with Agg and read back pixel by pixel."""

import re
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from runtime import plots
from runtime.plots import luminance

LABELS = [str(c) for c in range(10)]


def _confusion() -> np.ndarray:
    """A digits-like result: a full diagonal and a few mistakes of one to three samples."""
    matrix = np.diag([35, 37, 34, 36, 36, 37, 36, 35, 33, 36])
    matrix[3, 5], matrix[8, 1], matrix[9, 4], matrix[7, 9], matrix[2, 0] = 2, 3, 1, 1, 12
    return matrix


def _pixels(figure) -> np.ndarray:
    """The figure drawn as Agg draws it for the PNG: height x width x RGBA in [0, 1]."""
    figure.canvas.draw()
    return np.asarray(figure.canvas.buffer_rgba(), dtype=float) / 255


def _at(pixels: np.ndarray, axes, x: float, y: float) -> np.ndarray:
    """The pixel at data point (x, y) of ``axes``."""
    px, py = axes.transData.transform((x, y))
    return pixels[pixels.shape[0] - 1 - int(round(py)), int(round(px))]


def _contrast(a: float, b: float) -> float:
    """WCAG contrast ratio of two luminances."""
    return (max(a, b) + 0.05) / (min(a, b) + 0.05)


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plots.plt.close("all")


def test_confusion_cells_darken_with_the_count_and_show_it_legibly():
    matrix = _confusion()
    figure = plots.confusion_figure(matrix, LABELS)
    pixels = _pixels(figure)
    axes = figure.axes[0]
    # Read each cell near its corner, away from the number written in its middle.
    shade = {(r, c): luminance(_at(pixels, axes, c - 0.4, r - 0.4)) for r in range(10) for c in range(10)}
    by_count = sorted(shade, key=lambda cell: matrix[cell])
    for lower, higher in zip(by_count, by_count[1:]):
        if matrix[lower] == matrix[higher]:
            assert shade[lower] == pytest.approx(shade[higher], abs=0.01)
        else:
            assert shade[higher] < shade[lower], (lower, higher)
    # A single mistake stands out from the empty cells.
    assert shade[(9, 4)] < shade[(0, 1)] - 0.1
    written = {(round(t.get_position()[1]), round(t.get_position()[0])): t for t in axes.texts}
    assert {cell: int(t.get_text()) for cell, t in written.items()} == {cell: matrix[cell] for cell in shade}
    for cell, text in written.items():
        ink = luminance(plots.matplotlib.colors.to_rgba(text.get_color()))
        assert _contrast(ink, shade[cell]) >= 4.5, (cell, text.get_color())


def test_confusion_has_a_colour_bar_from_none_to_the_most():
    figure = plots.confusion_figure(_confusion(), LABELS)
    pixels = _pixels(figure)
    bars = [a for a in figure.axes[1:] if a.get_ylabel() == "samples"]
    assert len(bars) == 1
    bar = bars[0]
    low, high = bar.get_ylim()
    assert (low, high) == (0, 37)
    assert luminance(_at(pixels, bar, 0.5, 1)) > luminance(_at(pixels, bar, 0.5, 36)) + 0.5


def test_learning_curve_gives_the_error_its_own_axis_and_keeps_the_legend_off_the_data():
    history = [{"epoch": e, "train_loss": 2.3 / e + 0.5, "val_loss": 2.0 / e + 0.55, "val_error": 0.3 / e + 0.02,
                "lr": 0.001, "seconds": e} for e in range(1, 21)]
    figure = plots.learning_curve_figure(history)
    figure.canvas.draw()
    lines = {line.get_label(): line for a in figure.axes for line in a.get_lines()}
    error = lines["validation error"]
    assert lines["training loss"].axes is lines["validation loss"].axes is not error.axes
    # On its own axis the error fills the height instead of lying flat under losses of 0.5 to 2.8.
    bottom, top = error.axes.get_ylim()
    assert (0.32 - 0.035) / (top - bottom) > 0.7
    legend = figure.legends[0]
    box = legend.get_window_extent()
    for axes in figure.axes:
        assert not box.overlaps(axes.get_window_extent())
    assert {t.get_text() for t in legend.get_texts()} == {"training loss", "validation loss", "validation error"}


@pytest.mark.parametrize("macs", [[2.3e5, 6.5e5, 1.1e6, 2.6e6, 8.4e6], [3.1e5, 3.2e5, 3.4e5, 3.6e5], [431080]])
def test_search_scatter_labels_its_log_axis_with_plain_numbers(macs):
    trials = [SimpleNamespace(state="complete", kind="mutant" if i else "base", macs=int(m), error=0.05 + i / 100,
                              number=i) for i, m in enumerate(macs)]
    figure = plots.search_scatter_figure(trials, trials[:1])
    figure.canvas.draw()
    axes = figure.axes[0]
    low, high = axes.get_xlim()
    shown = [label.get_text() for label in axes.get_xticklabels()
             if low <= label.get_position()[0] <= high and label.get_visible() and label.get_text()]
    assert len(shown) >= 3, shown
    assert all(re.fullmatch(r"\d+(\.\d+)?[kMG]?", text) for text in shown), shown


def test_pictures_are_written_as_png(tmp_path: Path):
    plots.confusion_png(_confusion(), LABELS, tmp_path / "confusion.png")
    plots.learning_curve_png([{"epoch": 1, "g_loss": 1.0, "d_loss": 0.7}], tmp_path / "curve.png")
    for name in ("confusion.png", "curve.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
