"""The dearpygui view: draws the editor model and forwards events to it. All logic lives in the model."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any, Callable

import dearpygui.dearpygui as dpg

from graphcompiler import GraphError, Project, get_spec
from graphcompiler.layers import categories

from .model import EditorModel, node_captions
from .recent import recent_files, remember
from .tabs import Workspace
from .widgets import BOTTOM_HEIGHT, descendants, param_widget, rect

PAYLOAD = "netcanvas-layer"
ERROR_COLOUR = (190, 60, 40)
FOCUS_COLOUR = (200, 160, 30)
PALETTE_WIDTH, SIDE_WIDTH = 190, 310
ACTIVE_FPS, IDLE_FPS, IDLE_AFTER = 60, 10, 1.0
"""Frame rates while the mouse or keyboard was used in the last IDLE_AFTER seconds, and otherwise."""
FRAME_HISTORY = 600


class _NodeView:
    """What is on screen for one node, so the next sync only touches what changed."""

    def __init__(self, tag: int, layer_type: str, ports: tuple[tuple[str, ...], tuple[str, ...]],
                 inputs: dict[str, int], outputs: dict[str, int], caption: int, shape: int, labels: dict[str, int]):
        self.tag, self.type, self.ports = tag, layer_type, ports
        self.inputs, self.outputs, self.caption, self.shape = inputs, outputs, caption, shape
        self.labels = labels
        """Port name -> the text item in its row, whose rectangle locates the pin on screen."""
        self.pos: tuple[float, float] | None = None
        self.texts: tuple[str, str] = ("", "")
        self.theme: int | None = None


class DesignerApp:
    """The main window: palette, node editor, properties and statistics, problems and status line."""

    def __init__(self, model: EditorModel):
        self.model = model
        self.nodes: dict[str, _NodeView] = {}
        self.links: dict[tuple[str, str], tuple[str, str, int]] = {}
        self.attrs: dict[int, tuple[str, str]] = {}
        self.origin = (0.0, 0.0)
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

    def _themes(self) -> None:
        for tag, colour in (("error_theme", ERROR_COLOUR), ("focus_theme", FOCUS_COLOUR)):
            with dpg.theme(tag=tag):
                with dpg.theme_component(dpg.mvNode):
                    dpg.add_theme_color(dpg.mvNodeCol_TitleBar, colour, category=dpg.mvThemeCat_Nodes)
                    dpg.add_theme_color(dpg.mvNodeCol_TitleBarHovered, colour, category=dpg.mvThemeCat_Nodes)
                    dpg.add_theme_color(dpg.mvNodeCol_NodeOutline, colour, category=dpg.mvThemeCat_Nodes)

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
        with dpg.child_window(tag="palette", width=PALETTE_WIDTH, height=-BOTTOM_HEIGHT):
            dpg.add_combo(tag="network_combo", label="network", width=-70,
                           callback=lambda s, name: self.apply(lambda: self.model.switch_network(name)))
            dpg.add_text("Layers")
            dpg.add_input_text(tag="palette_filter", hint="filter", width=-1,
                               callback=lambda s, value: dpg.set_value("palette_set", value))
            with dpg.filter_set(tag="palette_set"):
                for category, types in categories().items():
                    self._palette_group(category, types, get_spec)
                dpg.add_group(tag="palette_blocks")

    def _palette_group(self, category: str, types: list[str], spec_of: Callable[[str], Any]) -> None:
        dpg.add_text(category, color=(150, 180, 220), filter_key=" ".join(types))
        for layer_type in types:
            tag = f"palette_{layer_type}"
            dpg.add_button(label=layer_type, tag=tag, width=-1, filter_key=layer_type)
            with dpg.tooltip(tag):
                dpg.add_text(spec_of(layer_type).doc, wrap=300)
            with dpg.drag_payload(parent=tag, payload_type=PAYLOAD, drag_data=layer_type):
                dpg.add_text(layer_type)
            with dpg.item_handler_registry() as handlers:
                dpg.add_item_double_clicked_handler(callback=self._on_palette_double_click, user_data=layer_type)
            dpg.bind_item_handler_registry(tag, handlers)

    def _sync_palette_blocks(self) -> None:
        """The project's blocks, as a last palette category; they change when another project is opened."""
        blocks = list(self.model.project.blocks)
        if blocks == self.shown_blocks:
            return
        self.shown_blocks = blocks
        dpg.delete_item("palette_blocks", children_only=True)
        # The filter box sees the group as one entry, so it matches any block's name.
        dpg.configure_item("palette_blocks", filter_key="Blocks " + " ".join(blocks))
        if blocks:
            dpg.push_container_stack("palette_blocks")
            self._palette_group("Blocks", blocks, self.model.graph.spec)
            dpg.pop_container_stack()

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
            if node.pos != view.pos:
                x, y = node.pos or (0.0, 0.0)
                dpg.set_item_pos(view.tag, [x - self.origin[0], y - self.origin[1]])
                view.pos = node.pos
            texts = node_captions(graph, shapes, node.id)
            if texts != view.texts:
                dpg.set_value(view.caption, texts[0])
                dpg.set_value(view.shape, f"-> {texts[1]}")
                view.texts = texts
            theme = "error_theme" if info.error else "focus_theme" if node.id in selected else None
            if theme != view.theme:
                dpg.bind_item_theme(view.tag, theme or 0)
                view.theme = theme

    def _add_node(self, node_id: str, layer_type: str,
                  ports: tuple[tuple[str, ...], tuple[str, ...]]) -> _NodeView:
        in_ports, out_ports = ports
        with dpg.node(label=node_id, parent="editor") as tag:
            with dpg.node_attribute(attribute_type=dpg.mvNode_Attr_Static):
                caption = dpg.add_text("")
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
        return _NodeView(tag, layer_type, ports, inputs, outputs, caption, shape, labels)

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
        on_screen = [self._node_of(tag) for tag in dpg.get_selected_nodes("editor")]
        on_screen = [n for n in on_screen if n]
        if on_screen and on_screen != self.shown_selection:
            self.model.select(on_screen)
            self.shown_selection = list(self.model.selection)
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
            dpg.add_text(f"output: {info.describe()}")
            if info.error:
                dpg.add_text(str(info.error), color=ERROR_COLOUR, wrap=SIDE_WIDTH - 30)

    def _setter(self, node_id: str, name: str) -> Callable[[Any], None]:
        return lambda value: self.apply(lambda: self.model.set_param(node_id, name, value))

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
        links = [self._link_key(tag) for tag in dpg.get_selected_links("editor")]
        self.model.delete(self.model.selection, [k for k in links if k])
        dpg.clear_selected_nodes("editor")
        dpg.clear_selected_links("editor")

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
        x, y = dpg.get_mouse_pos(local=False)
        grid = self._screen_to_grid(x, y)
        self.apply(lambda: self.model.add_node(layer_type, grid))

    def _on_palette_double_click(self, sender: Any, app_data: Any, layer_type: str) -> None:
        x0, y0, w, h = rect("canvas")
        centre = self._screen_to_grid(x0 + w / 2 - 60, y0 + h / 2 - 40)
        self.apply(lambda: self.model.add_node(layer_type, centre))

    def _screen_to_grid(self, x: float, y: float) -> tuple[float, float]:
        """Canvas position under a screen point, measured against a node already on screen."""
        for view in self.nodes.values():
            if view.pos is None:
                continue
            sx, sy = dpg.get_item_rect_min(view.tag)
            gx, gy = dpg.get_item_pos(view.tag)
            return (round(x - (sx - gx) + self.origin[0]), round(y - (sy - gy) + self.origin[1]))
        x0, y0, _, _ = rect("canvas")
        return (round(x - x0 - 16 + self.origin[0]), round(y - y0 - 16 + self.origin[1]))

    def _on_mouse_release(self) -> None:
        moved = {}
        for node_id, view in self.nodes.items():
            x, y = dpg.get_item_pos(view.tag)
            pos = (float(x + self.origin[0]), float(y + self.origin[1]))
            if view.pos is not None and pos != view.pos:
                moved[node_id] = pos
                view.pos = pos
        if moved:
            self.apply(lambda: self.model.move(moved))

    def _on_key(self, sender: Any, key: int) -> None:
        ctrl = dpg.is_key_down(dpg.mvKey_ModCtrl) or dpg.is_key_down(dpg.mvKey_LControl) or \
            dpg.is_key_down(dpg.mvKey_RControl)
        # Any text field of any tab: a key typed there is text, not a command.
        typing = any(dpg.get_item_state(item).get("active") for item in descendants("main"))
        shortcuts = {dpg.mvKey_S: self.save, dpg.mvKey_Z: self.model.undo, dpg.mvKey_Y: self.model.redo,
                     dpg.mvKey_C: self.model.copy, dpg.mvKey_V: self.model.paste,
                     dpg.mvKey_A: self.model.select_all, dpg.mvKey_L: self.model.auto_layout,
                     dpg.mvKey_N: lambda: self._confirm_discard(self.model.new),
                     dpg.mvKey_O: lambda: self._confirm_discard(lambda: dpg.show_item("open_dialog"))}
        if ctrl and key in shortcuts and (not typing or key == dpg.mvKey_S):
            self.apply(shortcuts[key])
        elif key == dpg.mvKey_Delete and not typing and self._network_shown() and self._mouse_over_canvas():
            self.apply(self._delete_selected)

    def _network_shown(self) -> bool:
        return dpg.get_value("main_tabs") in ("tab_network", dpg.get_alias_id("tab_network"))

    def _mouse_over_canvas(self) -> bool:
        x, y = dpg.get_mouse_pos(local=False)
        left, top, width, height = rect("canvas")
        return left <= x < left + width and top <= y < top + height

    def _add_editor(self) -> None:
        # A new node editor is the only way dearpygui offers to reset the view's panning.
        dpg.add_node_editor(tag="editor", parent="canvas", callback=self._on_link, delink_callback=self._on_delink,
                            minimap=self.minimap, minimap_location=dpg.mvNodeMiniMap_Location_BottomRight,
                            width=-1, height=-1)

    def fit(self) -> None:
        """Shift the view so the whole network starts at the canvas's top-left corner."""
        placed = [n.pos for n in self.model.graph.nodes() if n.pos]
        if not placed:
            return
        self.origin = (min(p[0] for p in placed) - 20, min(p[1] for p in placed) - 20)
        for view in self.nodes.values():
            view.pos = None
        dpg.delete_item("editor")
        self._add_editor()
        self.nodes.clear()
        self.links.clear()
        self.attrs.clear()
        self.redraw()

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
            "canvas": rect("canvas"), "statistics_tab": rect("statistics_tab"),
            "palette_filter": rect("palette_filter"), "palette_filter_text": dpg.get_value("palette_filter"),
            "statistics": [dpg.get_value(t) for t in ("stat_params", "stat_macs") if dpg.does_item_exist(t)],
            "nodes": {node_id: {"rect": rect(view.tag), "texts": list(view.texts), "error": view.theme == "error_theme",
                                "inputs": {p: rect(view.labels[p]) for p in view.inputs},
                                "outputs": {p: rect(view.labels.get(p, view.shape)) for p in view.outputs}}
                      for node_id, view in self.nodes.items()},
            "properties": {name.removeprefix("prop_"): rect(name) for name in
                           [dpg.get_item_alias(i) for i in descendants("properties")] if name and
                           name.startswith("prop_")},
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

