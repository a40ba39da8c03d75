"""The canvas's zoom and scroll, without a screen."""

from hypothesis import given, strategies as st

from designer.view import FIT_MARGIN, ZOOMS, CanvasView

points = st.tuples(st.floats(-5000, 5000), st.floats(-5000, 5000))


@given(points, points, st.sampled_from(ZOOMS), st.sampled_from(ZOOMS))
def test_zooming_keeps_the_canvas_point_under_the_mouse_where_it_is(origin, mouse, before, after):
    view = CanvasView(before, origin)
    under_mouse = view.to_canvas(mouse)
    view.zoom_about(after, mouse)
    assert view.zoom == after
    x, y = view.to_grid(under_mouse)
    assert abs(x - mouse[0]) < 1e-6 and abs(y - mouse[1]) < 1e-6


def test_steps_stop_at_the_ends_and_find_the_nearest_step():
    assert CanvasView(ZOOMS[-1]).step(1) == ZOOMS[-1] and CanvasView(ZOOMS[0]).step(-1) == ZOOMS[0]
    assert CanvasView(1.0).step(1) == 1.25 and CanvasView(0.98).step(-1) == 0.9


def test_fit_picks_the_largest_step_that_shows_everything_and_never_magnifies():
    view = CanvasView()
    view.fit((100, 50, 9100, 1050), (1100, 800), pan=(8, 8))
    assert view.zoom == 0.1  # 9,000 wide in 1,052: 0.117 fits, the step below it is 0.1
    left, top = view.to_grid((100, 50))
    right, bottom = view.to_grid((9100, 1050))
    assert (left + 8, top + 8) == (FIT_MARGIN, FIT_MARGIN) and right + 8 <= 1100 and bottom + 8 <= 800
    view.fit((0, 0, 300, 200), (1100, 800))
    assert view.zoom == 1.0
