"""The textures the designer's Dataset and Evaluation tabs make of image files, without a window."""

import os

import dearpygui.dearpygui as dpg
import pytest
from PIL import Image

from conftest import bomb_png
from designer.tabs import Workspace


@pytest.fixture
def workspace():
    """A Workspace with dearpygui's texture registry and no window: textures need no screen."""
    dpg.create_context()
    dpg.add_texture_registry(tag="thumbnails")
    yield Workspace(app=None)
    dpg.destroy_context()


def test_a_decompression_bomb_shows_as_no_picture(workspace, tmp_path):
    bomb_png(tmp_path / "bomb.png")
    assert workspace._thumbnail(tmp_path / "bomb.png") is None
    assert workspace._picture(tmp_path / "bomb.png") is None


def test_a_redrawn_picture_replaces_its_texture(workspace, tmp_path):
    path = tmp_path / "gradcam.png"
    Image.new("RGB", (60, 40), (200, 0, 0)).save(path)
    first = workspace._picture(path)
    assert workspace._picture(path) == first, "the same file version: the texture made once is shown again"
    Image.new("RGB", (60, 40), (0, 0, 200)).save(path)  # `netcanvas evaluate` draws it again
    later = path.stat().st_mtime + 5
    os.utime(path, (later, later))
    second = workspace._picture(path)
    assert second != first and dpg.does_item_exist(second[0]) and not dpg.does_item_exist(first[0])
    assert dpg.get_item_children("thumbnails", 1) == [second[0]]
