"""The dearpygui view: draws the editor model and forwards events to it. All logic lives in the model."""

from __future__ import annotations

import importlib.util
import json
import os
import time
from pathlib import Path
from typing import Any, Callable

import dearpygui.dearpygui as dpg

from graphcompiler import GraphError, Project, get_spec
from graphcompiler.layers import categories
from graphcompiler.layout import CHAR_SIZE, NODE_PADDING, node_box, node_captions

from .model import EditorModel
from .recent import recent_files, remember
from .tabs import Workspace
from .view import BOX_BELOW, COMPACT_BELOW, ZOOMS, CanvasView
from .widgets import BOTTOM_HEIGHT, descendants, param_widget, rect

PAYLOAD = "netcanvas-layer"
ERROR_COLOUR = (190, 60, 40)
FOCUS_COLOUR = (200, 160, 30)
PALETTE_WIDTH, SIDE_WIDTH = 190, 310
ACTIVE_FPS, IDLE_FPS, IDLE_AFTER = 60, 10, 1.0
"""Frame rates while the mouse or keyboard was used in the last IDLE_AFTER seconds, and otherwise."""
FRAME_HISTORY = 600
EQUAL_KEY = dpg.mvKey_Minus + 4
"""The '=' (and '+') key: dearpygui 2 names no constant for it (its mvKey_Plus is an old GLFW code);
in ImGui's key order it comes four after Minus (Apostrophe, Comma, Minus, Period, Slash, Semicolon, Equal)."""
PIN_REACH = 12.0
"""How far outside its node a pin can be grabbed, at 100% zoom (the pin hover radius and a little)."""
NODE_FONT = 13.0
"""Pixel size of the node font at 100% zoom, before the window's 0.85 font scale (11 px on screen)."""


def _font_file() -> Path | None:
    """DejaVu Sans Mono from matplotlib's own files (found without importing it): monospace, so node
    sizes are known before they are drawn."""
    spec = importlib.util.find_spec("matplotlib")
    for folder in (spec.submodule_search_locations or []) if spec else []:
        path = Path(folder) / "mpl-data" / "fonts" / "ttf" / "DejaVuSansMono.ttf"
        if path.is_file():
            return path
    return None


class _NodeView:
    """What is on screen for one node, so the next sync only touches what changed."""

    def __init__(self, tag: int, layer_type: str, ports: tuple[tuple[str, ...], tuple[str, ...]],
                 inputs: dict[str, int], outputs: dict[str, int], caption: int, shape: int, labels: dict[str, int],
                 spacer: int):
        self.tag, self.type, self.ports = tag, layer_type, ports
        self.inputs, self.outputs, self.caption, self.shape = inputs, outputs, caption, shape
        self.spacer = spacer
        """Holds a plain box's size when the zoom hides its texts."""
        self.labels = labels
        """Port name -> the text item in its row, whose rectangle locates the pin on screen."""
        self.pos: tuple[float, float] | None = None
        self.grid: tuple[float, float] | None = None
        """Where the view last put the node in the editor's grid."""
        self.detail = "full"
        """"full", "compact" (id and output shape) or "box" (no text), after the zoom."""
        self.style: tuple[str | None, float | None] = (None, None)
        """The colour and zoom the node is drawn with."""
        self.texts: tuple[str, str] = ("", "")
        self.theme: str | None = None
        """"error", "focus" (selected) or None."""


class DesignerApp:
    """The main window: palette, node editor, properties and statistics, problems and status line."""

    def __init__(self, model: EditorModel):
        self.model = model
        self.nodes: dict[str, _NodeView] = {}
        self.links: dict[tuple[str, str], tuple[str, str, int]] = {}
        self.attrs: dict[int, tuple[str, str]] = {}
        self.view = CanvasView()
        self.fit_wanted = False
        """Fit once the nodes are on screen: fitting needs their drawn positions to measure the panning."""
        self.screen_selection: list[int] | None = []
        """The editor's node selection as last seen; None makes the next frame take it as the model's."""
        self.refused: dict[tuple[str, str], str] = {}
        """(node, param) -> why its last entered value was refused, shown beside the field."""
        self.shown_revision = -1
        self.stats_revision = -1
        self.shown_blocks: list[str] = []
        self.minimap = True
        self.shown_selection: list[str] = []
        self.status = "ready"
        self.pending: Callable[[], None] | None = None
        self.running = True
        self.workspace = Workspace(self)
        self.last_input = time.monotonic()
        self.frame_seconds: list[float] = []
        """How long the latest frames took to build and draw (for the frame-time benchmark)."""

    # ------------------------------------------------------------------ build

    def build(self, width: int = 1600, height: int = 1000) -> None:
        """Create the viewport and every panel."""
        dpg.create_context()
        dpg.create_viewport(title="netcanvas designer", width=width, height=height, x_pos=0, y_pos=0,
                            disable_close=True)
        dpg.set_exit_callback(lambda: self._confirm_discard(self._quit))
        dpg.set_global_font_scale(0.85)
        self._fonts()
        self._themes()
        with dpg.viewport_menu_bar():
            self._menus()
        with dpg.window(tag="main", no_scrollbar=True):
            # The primary window starts under the viewport's menu bar; without this the tab row is hidden.
            dpg.add_spacer(height=12)
            with dpg.tab_bar(tag="main_tabs"):
                with dpg.tab(label="Network", tag="tab_network"):
                    with dpg.group(horizontal=True):
                        self._palette()
                        with dpg.child_window(tag="canvas", width=-SIDE_WIDTH - 8, height=-BOTTOM_HEIGHT,
                                              drop_callback=self._on_drop, payload_type=PAYLOAD, no_scrollbar=True):
                            self._add_editor()
                        with dpg.child_window(tag="side", width=SIDE_WIDTH, height=-BOTTOM_HEIGHT):
                            with dpg.tab_bar(tag="side_tabs", callback=lambda *args: self._sync_statistics()):
                                with dpg.tab(label="Properties"):
                                    dpg.add_group(tag="properties")
                                with dpg.tab(label="Statistics", tag="statistics_tab"):
                                    dpg.add_group(tag="statistics")
                self.workspace.build()
            with dpg.child_window(tag="bottom", height=-1):
                dpg.add_text("", tag="status")
                dpg.add_text("Problems", color=(170, 170, 170))
                dpg.add_group(tag="problems")
        dpg.set_primary_window("main", True)
        with dpg.handler_registry():
            dpg.add_key_press_handler(callback=self._on_key)
            dpg.add_mouse_release_handler(button=dpg.mvMouseButton_Left, callback=self._on_mouse_release)
            dpg.add_mouse_click_handler(button=dpg.mvMouseButton_Left, callback=self._on_click)
            dpg.add_mouse_wheel_handler(callback=self._on_wheel)
            for handler in (dpg.add_mouse_move_handler, dpg.add_mouse_down_handler, dpg.add_mouse_wheel_handler,
                            dpg.add_key_down_handler):
                handler(callback=self._on_input)
        dpg.add_file_dialog(tag="open_dialog", show=False, callback=self._on_open_chosen, width=700, height=450,
                            modal=True)
        dpg.add_file_extension("Projects (*.yaml *.sdcproj){.yaml,.sdcproj}", parent="open_dialog")
        dpg.add_file_extension(".yaml", parent="open_dialog")
        dpg.add_file_extension(".sdcproj", parent="open_dialog")
        dpg.add_file_dialog(tag="save_dialog", show=False, callback=self._on_save_chosen, width=700, height=450,
                            modal=True, default_filename="untitled.graph")
        dpg.add_file_extension(".yaml", parent="save_dialog")
        with dpg.window(tag="confirm", modal=True, show=False, label="Unsaved changes", no_resize=True,
                        width=380, height=110, pos=(width // 2 - 190, height // 2 - 55)):
            dpg.add_text("", tag="confirm_text")
            with dpg.group(horizontal=True):
                dpg.add_button(label="Save", callback=lambda: self._answer("save"))
                dpg.add_button(label="Discard", callback=lambda: self._answer("discard"))
                dpg.add_button(label="Cancel", callback=lambda: self._answer("cancel"))
        dpg.setup_dearpygui()
        dpg.show_viewport()

    def _fonts(self) -> None:
        """One node font per zoom step, made once: zooming only binds them."""
        self.fonts: dict[float, int] = {}
        path = _font_file()
        if path:
            sizes: dict[float, int] = {}
            with dpg.font_registry():
                for zoom in ZOOMS:
                    size = max(NODE_FONT * zoom, 1.0)
                    self.fonts[zoom] = sizes[size] = sizes.get(size) or dpg.add_font(str(path), size)

    def _themes(self) -> None:
        """A node theme per colour (plain, error, selected) and zoom step: the node's style scaled with it."""
        self.node_themes: dict[tuple[str | None, float], int] = {}
        for kind, colour in ((None, None), ("error", ERROR_COLOUR), ("focus", FOCUS_COLOUR)):
            for zoom in ZOOMS:
                with dpg.theme() as theme:
                    with dpg.theme_component(dpg.mvAll):
                        if colour:
                            for target in (dpg.mvNodeCol_TitleBar, dpg.mvNodeCol_TitleBarHovered,
                                           dpg.mvNodeCol_NodeOutline):
                                dpg.add_theme_color(target, colour, category=dpg.mvThemeCat_Nodes)
                        if zoom < BOX_BELOW:  # dearpygui's pins keep their size at any zoom
                            for target in (dpg.mvNodeCol_Pin, dpg.mvNodeCol_PinHovered):
                                dpg.add_theme_color(target, (0, 0, 0, 0), category=dpg.mvThemeCat_Nodes)
                        for var, value in ((dpg.mvNodeStyleVar_NodePadding, NODE_PADDING),
                                           (dpg.mvNodeStyleVar_PinHoverRadius, (10.0,)),
                                           (dpg.mvNodeStyleVar_NodeCornerRounding, (4.0,))):
                            dpg.add_theme_style(var, *(max(v * zoom, 1.0) for v in value),
                                                category=dpg.mvThemeCat_Nodes)
                        dpg.add_theme_style(dpg.mvStyleVar_ItemSpacing, 8 * zoom, (CHAR_SIZE[1] - NODE_FONT) * zoom)
                self.node_themes[kind, zoom] = theme
        for zoom in ZOOMS:
            with dpg.theme() as theme:
                with dpg.theme_component(dpg.mvAll):
                    dpg.add_theme_style(dpg.mvNodeStyleVar_LinkThickness, max(3.0 * zoom, 1.0),
                                        category=dpg.mvThemeCat_Nodes)
                    dpg.add_theme_style(dpg.mvNodeStyleVar_GridSpacing, 24.0 * zoom, category=dpg.mvThemeCat_Nodes)
            self.node_themes["editor", zoom] = theme

    def _menus(self) -> None:
        with dpg.menu(label="File"):
            dpg.add_menu_item(label="New", shortcut="Ctrl+N", callback=lambda: self._confirm_discard(self.model.new))
            dpg.add_menu_item(label="Open...", shortcut="Ctrl+O",
                              callback=lambda: self._confirm_discard(lambda: dpg.show_item("open_dialog")))
            dpg.add_menu_item(label="Save", shortcut="Ctrl+S", callback=self.save)
            dpg.add_menu_item(label="Save As...", callback=lambda: dpg.show_item("save_dialog"))
            dpg.add_menu(label="Recent files", tag="recent_menu")
            dpg.add_separator()
            dpg.add_menu_item(label="Export to ONNX...", callback=lambda: self.workspace.show_export("ONNX"))
            dpg.add_menu_item(label="Export to PyTorch source...",
                              callback=lambda: self.workspace.show_export("PyTorch source"))
            dpg.add_separator()
            dpg.add_menu_item(label="Quit", callback=lambda: self._confirm_discard(self._quit))
        with dpg.menu(label="Edit"):
            for label, shortcut, action in (
                    ("Undo", "Ctrl+Z", self.model.undo), ("Redo", "Ctrl+Y", self.model.redo),
                    ("Copy", "Ctrl+C", self.model.copy), ("Paste", "Ctrl+V", self.model.paste),
                    ("Delete", "Del", self._delete_selected), ("Select all", "Ctrl+A", self.model.select_all),
                    ("Auto-layout", "Ctrl+L", self.model.auto_layout)):
                dpg.add_menu_item(label=label, shortcut=shortcut, callback=self._command(action))
        with dpg.menu(label="View"):
            dpg.add_menu_item(label="Zoom in", shortcut="Ctrl+=", callback=lambda: self.zoom_step(1))
            dpg.add_menu_item(label="Zoom out", shortcut="Ctrl+-", callback=lambda: self.zoom_step(-1))
            dpg.add_menu_item(label="Zoom 100%", shortcut="Ctrl+0", callback=lambda: self.set_zoom(1.0))
            dpg.add_menu_item(label="Fit to window", shortcut="F", callback=self.fit)
            dpg.add_menu_item(label="Minimap", check=True, default_value=True, callback=self._toggle_minimap)
        self._fill_recent()

    def _toggle_minimap(self, sender: Any, shown: bool) -> None:
        self.minimap = shown
        dpg.configure_item("editor", minimap=shown)

    def _fill_recent(self) -> None:
        dpg.delete_item("recent_menu", children_only=True)
        for path in recent_files():
            dpg.add_menu_item(label=path, parent="recent_menu",
                              callback=lambda s, a, p: self._confirm_discard(lambda: self.open(p)), user_data=path)

    def _palette(self) -> None:
        with dpg.child_window(tag="palette", width=PALETTE_WIDTH, height=-BOTTOM_HEIGHT, no_scrollbar=True):
            dpg.add_combo(tag="network_combo", label="network", width=-70,
                           callback=lambda s, name: self.apply(lambda: self.model.switch_network(name)))
            dpg.add_text("Layers")
            # Outside the list's own scrolling, so the filter stays in view however far the list scrolls.
            dpg.add_input_text(tag="palette_filter", hint="filter", width=-1,
                               callback=lambda *args: self._filter_palette())
            with dpg.child_window(tag="palette_list", height=-1, border=False):
                self.palette_entries: dict[str, list[str]] = {}
                for category, types in categories().items():
                    self._palette_group(category, types, get_spec)
                dpg.add_group(tag="palette_blocks")

    def _palette_group(self, category: str, types: list[str], spec_of: Callable[[str], Any]) -> None:
        with dpg.collapsing_header(label=category, tag=f"palette_category_{category}", default_open=True):
            for layer_type in types:
                tag = f"palette_{layer_type}"
                dpg.add_button(label=layer_type, tag=tag, width=-1)
                with dpg.tooltip(tag):
                    dpg.add_text(spec_of(layer_type).doc, wrap=300)
                with dpg.drag_payload(parent=tag, payload_type=PAYLOAD, drag_data=layer_type):
                    dpg.add_text(layer_type)
                with dpg.item_handler_registry() as handlers:
                    dpg.add_item_double_clicked_handler(callback=self._on_palette_double_click, user_data=layer_type)
                dpg.bind_item_handler_registry(tag, handlers)
        self.palette_entries[category] = list(types)

    def _filter_palette(self) -> None:
        """Show the layers whose name holds the filter text; a category with none of them is hidden,
        and one with some is unfolded."""
        text = dpg.get_value("palette_filter").strip().lower()
        for category, types in self.palette_entries.items():
            shown = [t for t in types if text in t.lower()]
            for layer_type in types:
                dpg.configure_item(f"palette_{layer_type}", show=layer_type in shown)
            header = f"palette_category_{category}"
            dpg.configure_item(header, show=bool(shown))
            if text and shown:
                dpg.set_value(header, True)

    def _sync_palette_blocks(self) -> None:
        """The project's blocks, as a last palette category; they change when another project is opened."""
        blocks = list(self.model.project.blocks)
        if blocks == self.shown_blocks:
            return
        self.shown_blocks = blocks
        dpg.delete_item("palette_blocks", children_only=True)
        self.palette_entries.pop("Blocks", None)
        if blocks:
            dpg.push_container_stack("palette_blocks")
            self._palette_group("Blocks", blocks, self.model.graph.spec)
            dpg.pop_container_stack()
            self._filter_palette()

    # ------------------------------------------------------------- run loop

    def run(self, frames: int | None = None, screenshot: str | None = None) -> None:
        """Render until closed, or for ``frames`` frames; save a screenshot near the end if asked."""
        count = 0
        state_file = os.environ.get("NETCANVAS_UI_STATE")
        while self.running and dpg.is_dearpygui_running():
            started = time.perf_counter()
            self.workspace.sync()
            self.sync()
            dpg.render_dearpygui_frame()
            if self.fit_wanted and self._drawn():
                self._fit_now()
            self.frame_seconds.append(time.perf_counter() - started)
            del self.frame_seconds[:-FRAME_HISTORY]
            count += 1
            if state_file:
                self._write_ui_state(state_file, count)
            if screenshot and frames and count == frames - 5:
                dpg.output_frame_buffer(file=screenshot)
            if frames and count >= frames:
                break
            self._pace(started)
        self.workspace.shutdown()
        dpg.destroy_context()

    def _on_input(self, *args: Any) -> None:
        self.last_input = time.monotonic()

    def _pace(self, started: float) -> None:
        """Sleep out the rest of the frame: full speed while someone works, a few frames a second otherwise.

        Without a screen's vsync (a virtual display, software OpenGL) dearpygui redraws as fast as the
        CPU allows, which starves a training job of the cores it shares with the editor.
        """
        idle = time.monotonic() - self.last_input > IDLE_AFTER
        period = 1.0 / (IDLE_FPS if idle else ACTIVE_FPS)
        time.sleep(max(0.0, period - (time.perf_counter() - started)))

    def _quit(self) -> None:
        self.running = False

    # ----------------------------------------------------------------- sync

    def sync(self) -> None:
        """Bring the screen up to date with the model, touching only what changed."""
        self._sync_selection()
        if self.model.revision == self.shown_revision:
            return
        self._sync_nodes()
        self._sync_links()
        self._sync_properties()
        self._sync_statistics()
        self._sync_problems()
        self._sync_palette_blocks()
        dpg.configure_item("network_combo", items=list(self.model.project.networks))
        dpg.set_value("network_combo", self.model.network)
        title = f"{self.model.path.name if self.model.path else 'untitled'}{' *' if self.model.dirty else ''}"
        dpg.set_viewport_title(f"{title} - netcanvas designer")
        dpg.set_value("status", self.status)
        self.shown_revision = self.model.revision
        self.shown_selection = list(self.model.selection)

    def _sync_nodes(self) -> None:
        graph, shapes = self.model.graph, self.model.shapes
        for node_id in [n for n in self.nodes if n not in graph]:
            self._remove_node(node_id)
        selected = set(self.model.selection)
        for node in graph.nodes():
            info = shapes[node.id]
            ports = (graph.input_ports(node.id), graph.output_ports(node.id))
            view = self.nodes.get(node.id)
            if view is None or view.type != node.type or view.ports != ports:
                if view is not None:
                    self._remove_node(node.id)
                view = self.nodes[node.id] = self._add_node(node.id, node.type, ports)
            if node.pos != view.pos or view.grid is None:
                self._place(node.id, view)
            texts = node_captions(graph, shapes, node.id)
            if texts != view.texts:
                dpg.set_value(view.caption, texts[0])
                dpg.set_value(view.shape, f"-> {texts[1]}")
                view.texts = texts
            view.theme = "error" if info.error else "focus" if node.id in selected else None
            self._style(view)

    def _place(self, node_id: str, view: _NodeView) -> None:
        """Put a node where the view draws its canvas position, with the detail its zoom allows."""
        zoom = self.view.zoom
        view.pos = self.model.graph.node(node_id).pos
        view.grid = self.view.to_grid(view.pos or (0.0, 0.0))
        dpg.set_item_pos(view.tag, list(view.grid))
        self._style(view)
        detail = "box" if zoom < BOX_BELOW else "compact" if zoom < COMPACT_BELOW else "full"
        if detail == "box":
            # The texts shrink no further than a 1-pixel font, so the box's size comes from the layout's estimate.
            width, height = node_box(self.model.graph, self.model.shapes, node_id).size
            dpg.configure_item(view.spacer, width=int(width * zoom * 0.6), height=int(height * zoom * 0.6))
        if detail != view.detail:
            dpg.configure_item(view.tag, label="" if detail == "box" else node_id)
            dpg.configure_item(view.caption, show=detail == "full")
            for item in (view.shape, *view.labels.values()):
                dpg.configure_item(item, show=detail != "box")
            dpg.configure_item(view.spacer, show=detail == "box")
            view.detail = detail

    def _style(self, view: _NodeView) -> None:
        """Give a node its colour and the zoom's font and sizes (the editor's own do not reach its nodes)."""
        style = (view.theme, self.view.zoom)
        if style == view.style:
            return
        if self.view.zoom != view.style[1] and self.view.zoom in self.fonts:
            dpg.bind_item_font(view.tag, self.fonts[self.view.zoom])
        dpg.bind_item_theme(view.tag, self.node_themes[style])
        view.style = style

    def _add_node(self, node_id: str, layer_type: str,
                  ports: tuple[tuple[str, ...], tuple[str, ...]]) -> _NodeView:
        in_ports, out_ports = ports
        with dpg.node(label=node_id, parent="editor") as tag:
            with dpg.node_attribute(attribute_type=dpg.mvNode_Attr_Static):
                caption = dpg.add_text("")
                spacer = dpg.add_spacer(show=False)
            inputs, outputs, labels = {}, {}, {}
            for port in in_ports:
                with dpg.node_attribute(attribute_type=dpg.mvNode_Attr_Input) as attr:
                    labels[port] = dpg.add_text(port)
                inputs[port] = attr
                self.attrs[attr] = (node_id, port)
            # One output: its pin sits on the shape row. Several: a pin row per port, then the shapes.
            for port in out_ports if len(out_ports) > 1 else ():
                with dpg.node_attribute(attribute_type=dpg.mvNode_Attr_Output) as attr:
                    labels[port] = dpg.add_text(port)
                outputs[port] = attr
                self.attrs[attr] = (node_id, port)
            kind = dpg.mvNode_Attr_Output if len(out_ports) == 1 else dpg.mvNode_Attr_Static
            with dpg.node_attribute(attribute_type=kind) as attr:
                shape = dpg.add_text("")
            if len(out_ports) == 1:
                outputs[out_ports[0]] = attr
                self.attrs[attr] = (node_id, out_ports[0])
        return _NodeView(tag, layer_type, ports, inputs, outputs, caption, shape, labels, spacer)

    def _remove_node(self, node_id: str) -> None:
        view = self.nodes.pop(node_id)
        for key in [k for k, (src, _, _) in self.links.items() if src == node_id or k[0] == node_id]:
            dpg.delete_item(self.links.pop(key)[2])
        for attr in [*view.inputs.values(), *view.outputs.values()]:
            self.attrs.pop(attr, None)
        dpg.delete_item(view.tag)

    def _sync_links(self) -> None:
        wanted = {(l.dst, l.dst_port): (l.src, l.src_port) for l in self.model.graph.links()}
        for key, (src, src_port, tag) in list(self.links.items()):
            if wanted.get(key) != (src, src_port):
                dpg.delete_item(tag)
                del self.links[key]
        for (dst, dst_port), (src, src_port) in wanted.items():
            if (dst, dst_port) in self.links or dst not in self.nodes or src not in self.nodes:
                continue
            target = self.nodes[dst].inputs.get(dst_port)
            if target is None:
                continue
            source = self.nodes[src].outputs.get(src_port)
            if source is None:
                continue
            tag = dpg.add_node_link(source, target, parent="editor")
            self.links[(dst, dst_port)] = (src, src_port, tag)

    def _sync_selection(self) -> None:
        """Take the editor's node selection as the model's whenever it changes on screen.

        Clicking empty canvas or a link empties it, and so empties the model's selection too; a click
        on the canvas makes the next frame take it even if it looks unchanged (the model may have
        selected a node the editor does not know of, such as a node just added).
        """
        tags = dpg.get_selected_nodes("editor")
        if tags == self.screen_selection:
            return
        self.screen_selection = tags
        on_screen = [n for n in (self._node_of(tag) for tag in tags) if n]
        if on_screen != self.model.selection:
            self.model.select(on_screen)
        if self.model.selection != self.shown_selection:
            self.shown_selection = list(self.model.selection)
            self._sync_properties()
            self._sync_nodes()

    def clear_selection(self) -> None:
        """Select nothing: no node, no link."""
        dpg.clear_selected_nodes("editor")
        dpg.clear_selected_links("editor")
        self.screen_selection = []
        self.model.select([])
        self.shown_selection = []
        self._sync_properties()
        self._sync_nodes()

    def _node_of(self, tag: int) -> str | None:
        for node_id, view in self.nodes.items():
            if view.tag == tag:
                return node_id
        return None

    # ----------------------------------------------------------- side panels

    def _sync_properties(self) -> None:
        dpg.delete_item("properties", children_only=True)
        selection = self.model.selection
        if len(selection) != 1:
            dpg.add_text(f"{len(selection)} nodes selected" if selection else "Select a node to edit it.",
                         parent="properties")
            return
        node = self.model.graph.node(selection[0])
        spec = self.model.graph.spec(node.type)
        info = self.model.shapes[node.id]
        with dpg.group(parent="properties"):
            dpg.add_text(node.type, color=(150, 180, 220))
            dpg.add_text(spec.doc, wrap=SIDE_WIDTH - 30)
            dpg.add_input_text(label="id", default_value=node.id, on_enter=True, width=150, tag="prop_id",
                               callback=lambda s, value: self.apply(lambda: self.model.rename(node.id, value.strip())))
            for param in spec.params:
                value = node.params.get(param.name, param.default)
                param_widget(param, value, f"prop_{param.name}", self._setter(node.id, param.name))
                refused = self.refused.get((node.id, param.name))
                if refused:
                    dpg.add_text(refused, tag=f"refused_{param.name}", color=ERROR_COLOUR, wrap=SIDE_WIDTH - 30)
            dpg.add_text(f"output: {info.describe()}")
            if info.error:
                dpg.add_text(str(info.error), color=ERROR_COLOUR, wrap=SIDE_WIDTH - 30)

    def _setter(self, node_id: str, name: str) -> Callable[[Any], None]:
        def set_value(value: Any) -> None:
            self.refused.pop((node_id, name), None)
            try:
                self.model.set_param(node_id, name, value)
            except GraphError as exc:
                self.refused[node_id, name] = f"refused: {exc.message}"
                self.status = f"refused: {exc}"
            else:
                self.status = f"done: {self.model.last_action}"
            self.redraw()
        return set_value

    def _sync_statistics(self) -> None:
        # A per-layer table of hundreds of rows is only rebuilt while someone can see it.
        if dpg.get_value("side_tabs") not in ("statistics_tab", dpg.get_alias_id("statistics_tab")) \
                or self.stats_revision == self.model.revision:
            return
        self.stats_revision = self.model.revision
        dpg.delete_item("statistics", children_only=True)
        cost = self.model.cost
        dpg.add_text(f"parameters: {cost.params:,}", parent="statistics", tag="stat_params")
        dpg.add_text(f"multiply-adds: {cost.macs:,}", parent="statistics", tag="stat_macs")
        with dpg.table(parent="statistics", header_row=True, resizable=True, scrollY=True, height=-1,
                       borders_innerH=True, policy=dpg.mvTable_SizingStretchProp):
            for column in ("id", "output", "params", "mult-adds"):
                dpg.add_table_column(label=column)
            for node_id, info in self.model.shapes.items():
                params, macs = cost.per_node.get(node_id, (0, 0))
                with dpg.table_row():
                    dpg.add_text(node_id)
                    dpg.add_text(info.describe())
                    dpg.add_text(f"{params:,}")
                    dpg.add_text(f"{macs:,}")

    def _sync_problems(self) -> None:
        dpg.delete_item("problems", children_only=True)
        problems = self.model.problems()
        for problem in self.workspace.job_problems:
            dpg.add_selectable(label=problem, parent="problems")
        if not problems and not self.workspace.job_problems:
            dpg.add_text("none", parent="problems", color=(120, 170, 120))
        for problem in problems:
            dpg.add_selectable(label=str(problem), parent="problems", user_data=problem.node,
                               callback=lambda s, a, node: self._focus(node))

    def _focus(self, node_id: str | None) -> None:
        if node_id and node_id in self.model.graph:
            dpg.clear_selected_nodes("editor")
            self.screen_selection = []
            self.model.select([node_id])
            self.shown_selection = [node_id]
            self.redraw()

    # ------------------------------------------------------------- actions

    def redraw(self) -> None:
        """Bring every panel up to date on the next frame, even if the model did not change."""
        self.shown_revision = -1

    def apply(self, action: Callable[[], Any]) -> Any:
        """Run a model command; a refusal goes to the status line instead of raising."""
        state = self.model.state
        try:
            result = action()
        except GraphError as exc:
            self.status = f"refused: {exc}"
            self.redraw()
            return None
        if self.model.state != state:
            self.status = f"done: {self.model.last_action}"
        return result

    def _command(self, action: Callable[[], Any]) -> Callable[..., None]:
        return lambda *args: self.apply(action)

    def _delete_selected(self) -> None:
        """Delete exactly what is selected: the selected nodes and the selected links."""
        links = [self._link_key(tag) for tag in dpg.get_selected_links("editor")]
        self.model.delete(self.model.selection, [k for k in links if k])
        dpg.clear_selected_nodes("editor")
        dpg.clear_selected_links("editor")
        self.screen_selection = []

    def _link_key(self, tag: int) -> tuple[str, str] | None:
        for key, (_, _, link_tag) in self.links.items():
            if link_tag == tag:
                return key
        return None

    def _on_link(self, sender: Any, app_data: tuple[int, int]) -> None:
        out_attr, in_attr = app_data
        src, src_port = self.attrs[out_attr]
        dst, dst_port = self.attrs[in_attr]
        self.apply(lambda: self.model.connect(src, src_port, dst, dst_port))

    def _on_delink(self, sender: Any, link_tag: int) -> None:
        key = self._link_key(link_tag)
        if key:
            self.apply(lambda: self.model.disconnect(*key))

    def _on_drop(self, sender: Any, layer_type: str) -> None:
        self.apply(lambda: self.model.add_node(layer_type, self._screen_to_canvas(*dpg.get_mouse_pos(local=False))))

    def _on_palette_double_click(self, sender: Any, app_data: Any, layer_type: str) -> None:
        x0, y0, w, h = rect("canvas")
        centre = self._screen_to_canvas(x0 + w / 2 - 60, y0 + h / 2 - 40)
        self.apply(lambda: self.model.add_node(layer_type, centre))

    def _grid_offset(self) -> tuple[float, float]:
        """Screen point of the editor grid's origin: measured on a node, as the editor's panning moves it."""
        for view in self.nodes.values():
            if view.grid is not None:
                sx, sy, _, _ = self._box(view)
                gx, gy = dpg.get_item_pos(view.tag)
                return sx - gx, sy - gy
        x0, y0, _, _ = rect("canvas")
        return x0 + 8, y0 + 8

    def _box(self, view: _NodeView) -> list[float]:
        """A node's box on screen, [x, y, w, h]: dearpygui gives its size but the corner of its content,
        inside the node's padding."""
        x, y, w, h = rect(view.tag)
        zoom = view.style[1] or self.view.zoom
        return [x - NODE_PADDING[0] * zoom, y - NODE_PADDING[1] * zoom, w, h]

    def _screen_to_canvas(self, x: float, y: float) -> tuple[float, float]:
        """Canvas position under a screen point."""
        ox, oy = self._grid_offset()
        cx, cy = self.view.to_canvas((x - ox, y - oy))
        return float(round(cx)), float(round(cy))

    def _on_mouse_release(self) -> None:
        moved = {}
        for node_id, view in self.nodes.items():
            grid = tuple(dpg.get_item_pos(view.tag))
            if view.grid is not None and view.pos is not None and \
                    max(abs(grid[0] - view.grid[0]), abs(grid[1] - view.grid[1])) >= 1:
                x, y = self.view.to_canvas(grid)
                moved[node_id] = (float(round(x)), float(round(y)))
                view.pos, view.grid = moved[node_id], grid
        if moved:
            self.apply(lambda: self.model.move(moved))

    def _on_click(self) -> None:
        """A click on the canvas away from every node and its pins (on empty canvas or a link) selects
        no node, even when the editor had none selected and the model had (a node just added)."""
        if not (self._network_shown() and self._mouse_over_canvas()):
            return
        x, y = dpg.get_mouse_pos(local=False)
        reach = PIN_REACH * self.view.zoom
        for view in self.nodes.values():
            left, top, width, height = self._box(view)
            if left - reach <= x <= left + width + reach and top <= y <= top + height:
                return
        self.screen_selection = None

    def _on_wheel(self, sender: Any, delta: float) -> None:
        if self._ctrl() and self._network_shown() and self._mouse_over_canvas():
            self.zoom_step(1 if delta > 0 else -1, dpg.get_mouse_pos(local=False))

    def _ctrl(self) -> bool:
        return dpg.is_key_down(dpg.mvKey_ModCtrl) or dpg.is_key_down(dpg.mvKey_LControl) or \
            dpg.is_key_down(dpg.mvKey_RControl)

    def _on_key(self, sender: Any, key: int) -> None:
        ctrl = self._ctrl()
        # Any text field of any tab: a key typed there is text, not a command.
        typing = any(dpg.get_item_state(item).get("active") for item in descendants("main"))
        shortcuts = {dpg.mvKey_S: self.save, dpg.mvKey_Z: self.model.undo, dpg.mvKey_Y: self.model.redo,
                     dpg.mvKey_C: self.model.copy, dpg.mvKey_V: self.model.paste,
                     dpg.mvKey_A: self.model.select_all, dpg.mvKey_L: self.model.auto_layout,
                     dpg.mvKey_N: lambda: self._confirm_discard(self.model.new),
                     dpg.mvKey_O: lambda: self._confirm_discard(lambda: dpg.show_item("open_dialog")),
                     EQUAL_KEY: lambda: self.zoom_step(1), dpg.mvKey_Add: lambda: self.zoom_step(1),
                     dpg.mvKey_Minus: lambda: self.zoom_step(-1), dpg.mvKey_Subtract: lambda: self.zoom_step(-1),
                     dpg.mvKey_0: lambda: self.set_zoom(1.0)}
        on_canvas = not typing and self._network_shown()
        if ctrl and key in shortcuts and (not typing or key == dpg.mvKey_S):
            self.apply(shortcuts[key])
        elif key == dpg.mvKey_Delete and on_canvas and self._mouse_over_canvas():
            self.apply(self._delete_selected)
        elif key == dpg.mvKey_Escape and on_canvas:
            self.clear_selection()
        elif key == dpg.mvKey_F and not ctrl and on_canvas:
            self.fit()

    def _network_shown(self) -> bool:
        return dpg.get_value("main_tabs") in ("tab_network", dpg.get_alias_id("tab_network"))

    def _mouse_over_canvas(self) -> bool:
        x, y = dpg.get_mouse_pos(local=False)
        left, top, width, height = rect("canvas")
        return left <= x < left + width and top <= y < top + height

    def _add_editor(self) -> None:
        dpg.add_node_editor(tag="editor", parent="canvas", callback=self._on_link, delink_callback=self._on_delink,
                            minimap=self.minimap, minimap_location=dpg.mvNodeMiniMap_Location_BottomRight,
                            width=-1, height=-1)
        self._bind_zoom()

    def _bind_zoom(self) -> None:
        dpg.bind_item_theme("editor", self.node_themes["editor", self.view.zoom])

    def _apply_view(self) -> None:
        """Redraw every node where the current zoom and scroll put it."""
        self._bind_zoom()
        for node_id, view in self.nodes.items():
            self._place(node_id, view)

    def set_zoom(self, zoom: float, about: tuple[float, float] | None = None) -> None:
        """Zoom to one of the steps, keeping the canvas point under ``about`` (a screen point; by
        default the mouse when it is over the canvas, else the canvas's middle) where it is."""
        x0, y0, w, h = rect("canvas")
        ox, oy = self._grid_offset()
        sx, sy = about or (dpg.get_mouse_pos(local=False) if self._mouse_over_canvas() else (x0 + w / 2, y0 + h / 2))
        self.view.zoom_about(zoom, (sx - ox, sy - oy))
        self._apply_view()
        self.status = f"zoom {zoom:.0%}"
        dpg.set_value("status", self.status)

    def zoom_step(self, direction: int, about: tuple[float, float] | None = None) -> None:
        """One zoom step in (+1) or out (-1)."""
        self.set_zoom(self.view.step(direction), about)

    def _drawn(self) -> bool:
        """Whether the canvas and every node have been laid out on screen (a frame or two after a change)."""
        _, _, width, height = rect("canvas")
        return width > 100 and height > 100 and len(self.nodes) == len(self.model.graph) and \
            all(rect(view.tag)[2] > 0 for view in self.nodes.values())

    def fit(self) -> None:
        """Zoom and scroll so the whole network fits the canvas, starting at its top-left corner (next frame)."""
        self.fit_wanted = True

    def _fit_now(self) -> None:
        self.fit_wanted = False
        graph, shapes = self.model.graph, self.model.shapes
        placed = [(n.pos, node_box(graph, shapes, n.id).size) for n in graph.nodes() if n.pos]
        if not placed:
            return
        bounds = (min(p[0] for p, _ in placed), min(p[1] for p, _ in placed),
                  max(p[0] + s[0] for p, s in placed), max(p[1] + s[1] for p, s in placed))
        x0, y0, w, h = rect("canvas")
        ox, oy = self._grid_offset()
        self.view.fit(bounds, (w, h), (ox - x0, oy - y0))
        self._apply_view()

    # --------------------------------------------------------------- files

    def open(self, path: str | Path) -> None:
        """Open a project file (or import an NNC .sdcproj) in place of the current one."""
        self.apply(lambda: self.model.open(path))
        if self.model.path:
            if self.model.path.exists():  # an imported project has no file of its own until it is saved
                remember(self.model.path)
                self._fill_recent()
            self.fit()

    def save(self) -> None:
        """Save to the project's file, or ask where when it has none."""
        if self.model.path is None:
            dpg.show_item("save_dialog")
            return
        self._save_to(None)

    def _on_open_chosen(self, sender: Any, app_data: dict) -> None:
        self.open(app_data["file_path_name"])

    def _on_save_chosen(self, sender: Any, app_data: dict) -> None:
        path = app_data["file_path_name"]
        if not path.endswith(".graph.yaml"):
            path = path.removesuffix(".yaml").removesuffix(".graph") + ".graph.yaml"
        self._save_to(path)
        if self.pending and not self.model.dirty:
            then, self.pending = self.pending, None
            self.apply(then)

    def _save_to(self, path: str | None) -> None:
        saved = self.apply(lambda: self.model.save(path))
        if saved:
            self.status = f"saved {saved}"
            remember(saved)
            self._fill_recent()

    def _confirm_discard(self, then: Callable[[], None]) -> None:
        if not self.model.dirty:
            self.apply(then)
            return
        self.pending = then
        name = self.model.path.name if self.model.path else "the untitled project"
        dpg.set_value("confirm_text", f"Save changes to {name}?")
        dpg.show_item("confirm")

    def _answer(self, choice: str) -> None:
        dpg.hide_item("confirm")
        then, self.pending = self.pending, None
        if choice == "cancel" or then is None:
            return
        if choice == "save":
            if self.model.path is None:
                self.pending = then  # carried out once the save dialog has saved
            self.save()
            if self.model.dirty:
                return
        self.apply(then)
        self.fit()

    # -------------------------------------------------- state for UI tests

    def _write_ui_state(self, target: str, frame: int) -> None:
        """Write where things are on screen (NETCANVAS_UI_STATE), for tests that drive the mouse."""
        state = {
            "frame": frame,
            "revision": self.model.revision, "status": self.status, "dirty": self.model.dirty,
            "palette": {t: rect(f"palette_{t}") for ts in [*categories().values(), self.shown_blocks] for t in ts},
            "canvas": rect("canvas"), "statistics_tab": rect("statistics_tab"), "zoom": self.view.zoom,
            "selection": list(self.model.selection),
            "selected_links": [k for k in map(self._link_key, dpg.get_selected_links("editor")) if k],
            "palette_filter": rect("palette_filter"), "palette_filter_text": dpg.get_value("palette_filter"),
            "palette_open": {category: bool(dpg.get_value(f"palette_category_{category}"))
                             for category in self.palette_entries},
            "palette_headers": {category: rect(f"palette_category_{category}") for category in self.palette_entries},
            "statistics": [dpg.get_value(t) for t in ("stat_params", "stat_macs") if dpg.does_item_exist(t)],
            "nodes": {node_id: {"rect": self._box(view), "texts": list(view.texts), "error": view.theme == "error",
                                "inputs": {p: rect(view.labels[p]) for p in view.inputs},
                                "outputs": {p: rect(view.labels.get(p, view.shape)) for p in view.outputs}}
                      for node_id, view in self.nodes.items()},
            "properties": {name.removeprefix("prop_"): rect(name) for name in
                           [dpg.get_item_alias(i) for i in descendants("properties")] if name and
                           name.startswith("prop_")},
            "refused": {name.removeprefix("refused_"): dpg.get_value(name) for name in
                        [dpg.get_item_alias(i) for i in descendants("properties")] if name and
                        name.startswith("refused_")},
            "problems": [dpg.get_item_label(i) for i in dpg.get_item_children("problems", 1) or []
                         if dpg.get_item_type(i).endswith("Selectable")],
            "workspace": self.workspace.ui_state(),
            "frame_ms": [round(t * 1000, 2) for t in self.frame_seconds[-120:]],
        }
        tmp = f"{target}.tmp"
        with open(tmp, "w", encoding="utf-8") as handle:
            json.dump(state, handle)
        os.replace(tmp, target)


def run_designer(path: str | None = None, frames: int | None = None, screenshot: str | None = None) -> int:
    """Open the designer on ``path`` (a new project there if it does not exist yet)."""
    if path and Path(path).exists():
        model = EditorModel()
        model.open(path)
    else:
        model = EditorModel(Project(name=Path(path).name.split(".")[0] if path else "untitled"), path)
    app = DesignerApp(model)
    app.build()
    if model.path and Path(model.path).exists():
        remember(model.path)
        app._fill_recent()
    app.fit()
    app.run(frames, screenshot)
    return 0

