"""The editor model: the project being edited, its selection, and undoable commands. No GUI here.

Every command snapshots the network (as plain data) before changing it in place, so undo and
redo restore it exactly, node order included, and a refused command leaves no trace.
After every change the model reruns shape inference and cost, and bumps ``revision`` so a
view knows to redraw.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

from graphcompiler import (Cost, Graph, GraphError, NodeShapes, Project, cost, infer_shapes, load,
                           save, shape_errors)
from graphcompiler.graph import GraphData
from graphcompiler.importers import import_sdcproj
from graphcompiler.layout import auto_layout
from runtime.settings import SECTIONS, read

HISTORY_LIMIT = 200
PASTE_OFFSET = (40.0, 40.0)


@dataclass
class _Snapshot:
    label: str
    data: GraphData
    state: int
    sections: dict
    """The project's dataset, training and search sections, which the tabs edit."""


class EditorModel:
    """One open project, one network of it in the editor, and the history of edits to it."""

    def __init__(self, project: Project | None = None, path: str | Path | None = None,
                 network: str | None = None):
        self.project = project or Project()
        self.path = Path(path) if path else None
        self.network = network or self.project.main_network
        self.selection: list[str] = []
        self.clipboard = GraphData((), ())
        self.revision = 0
        self.shapes: dict[str, NodeShapes] = {}
        self.cost = Cost()
        self._undo: list[_Snapshot] = []
        self._redo: list[_Snapshot] = []
        self._histories: dict[str, tuple[list[_Snapshot], list[_Snapshot]]] = {}
        self._state = self._saved_state = 0
        self._next_state = 1
        self.last_action = ""
        self._place_unplaced()
        self._refresh()

    # ------------------------------------------------------------------ state

    @property
    def graph(self) -> Graph:
        """The network being edited."""
        return self.project.networks[self.network]

    @property
    def state(self) -> int:
        """Identifies the network's content: it changes with every edit, undo and redo."""
        return self._state

    @property
    def dirty(self) -> bool:
        """Whether there are edits since the last open or save."""
        return self._state != self._saved_state

    @property
    def can_undo(self) -> bool:
        """Whether there is an edit to undo."""
        return bool(self._undo)

    @property
    def can_redo(self) -> bool:
        """Whether there is an undone edit to redo."""
        return bool(self._redo)

    @property
    def undo_label(self) -> str | None:
        """What undo would revert, for the Edit menu."""
        return self._undo[-1].label if self._undo else None

    def problems(self) -> list[GraphError]:
        """Root-cause errors of the current network, in topological order."""
        return shape_errors(self.shapes)

    def _refresh(self) -> None:
        self.shapes = infer_shapes(self.graph)
        self.cost = cost(self.shapes)
        self.selection = [n for n in self.selection if n in self.graph]
        self.revision += 1

    def _edit(self, label: str, change: Callable[[Graph], Any]) -> Any:
        """Run ``change`` on the network and record an undo entry; if it fails, put everything back."""
        before, sections = self.graph.snapshot(), copy.deepcopy(self.project.sections)
        try:
            result = change(self.graph)
        except BaseException:
            self.project.networks[self.network] = Graph.from_snapshot(before, self.graph.blocks)
            self.project.sections = sections
            self._refresh()
            raise
        self._undo.append(_Snapshot(label, before, self._state, sections))
        del self._undo[:-HISTORY_LIMIT]
        self._redo.clear()
        self._state = self._next_state
        self._next_state += 1
        self.last_action = label
        self._refresh()
        return result

    def undo(self) -> str | None:
        """Revert the last edit; returns its label, or None when there is none."""
        label = self._swap(self._undo, self._redo)
        self.last_action = f"undo {label}" if label else self.last_action
        return label

    def redo(self) -> str | None:
        """Repeat the last undone edit; returns its label, or None when there is none."""
        label = self._swap(self._redo, self._undo)
        self.last_action = f"redo {label}" if label else self.last_action
        return label

    def _swap(self, source: list[_Snapshot], target: list[_Snapshot]) -> str | None:
        if not source:
            return None
        snapshot = source.pop()
        target.append(_Snapshot(snapshot.label, self.graph.snapshot(), self._state,
                                copy.deepcopy(self.project.sections)))
        self.project.networks[self.network] = Graph.from_snapshot(snapshot.data, self.graph.blocks)
        self.project.sections = snapshot.sections
        self._state = snapshot.state
        self._refresh()
        return snapshot.label

    # --------------------------------------------------------------- commands

    def add_node(self, layer_type: str, pos: tuple[float, float] = (0.0, 0.0), node_id: str | None = None) -> str:
        """Add a layer with its initial params; its id is the type's stem and a free number."""
        spec = self.graph.spec(layer_type)
        node_id = node_id or self.graph.unique_id(spec.id_prefix)

        def change(graph: Graph) -> str:
            graph.add_node(node_id, layer_type, spec.initial_params(), pos)
            return node_id
        result = self._edit(f"add {node_id}", change)
        self.selection = [result]
        return result

    def delete(self, node_ids: Iterable[str] = (), links: Iterable[tuple[str, str]] = ()) -> None:
        """Delete nodes (with their links) and links given as (target node, input port)."""
        node_ids = list(dict.fromkeys(node_ids))
        links = [(dst, port) for dst, port in links if dst in self.graph and self.graph.source_of(dst, port)]
        if not node_ids and not links:
            return

        def change(graph: Graph) -> None:
            for dst, port in links:
                if dst not in node_ids:
                    graph.disconnect(dst, port)
            for node_id in node_ids:
                graph.remove_node(node_id)
        self._edit(f"delete {', '.join(node_ids) or 'links'}", change)

    def delete_selection(self) -> None:
        """Delete the selected nodes."""
        self.delete(self.selection)

    def move(self, positions: dict[str, tuple[float, float]]) -> None:
        """Move nodes; one undo step for the whole move, none when nothing moved."""
        moved = {n: (float(p[0]), float(p[1])) for n, p in positions.items() if self.graph.node(n).pos != tuple(p)}
        if not moved:
            return

        def change(graph: Graph) -> None:
            for node_id, pos in moved.items():
                graph.node(node_id).pos = pos
        self._edit(f"move {', '.join(moved)}" if len(moved) < 4 else f"move {len(moved)} nodes", change)

    def connect(self, src: str, src_port: str | None, dst: str, dst_port: str | None) -> None:
        """Link an output to an input; refused (GraphError) if it makes a cycle or the input is taken."""
        self._edit(f"connect {src} -> {dst}", lambda graph: graph.connect(src, dst, src_port, dst_port))

    def disconnect(self, dst: str, dst_port: str) -> None:
        """Remove the link into ``dst.dst_port``."""
        if self.graph.source_of(dst, dst_port) is None:
            raise GraphError(f"input '{dst}.{dst_port}' is not connected", node=dst)
        self._edit(f"disconnect {dst}.{dst_port}", lambda graph: graph.disconnect(dst, dst_port))

    def set_param(self, node_id: str, name: str, value: Any) -> None:
        """Set a param, checked against its spec; a value equal to an optional param's default is dropped.

        Links to ports the new value removes (Concatenate's num_inputs, Split's num_outputs) go in the same step.
        """
        node = self.graph.node(node_id)
        spec = self.graph.spec(node.type)
        param = spec.param(name)
        if param is None:
            raise GraphError(f"{node.type} has no param '{name}'", node=node_id)
        try:
            checked = param.check(value)
        except ValueError as exc:
            raise GraphError(f"{node_id}.{name}: {exc}", node=node_id) from None
        stored = list(checked) if isinstance(checked, tuple) else value
        if node.params.get(name) == stored or (name not in node.params and not param.required
                                                and param.check(param.default) == checked):
            return

        def change(graph: Graph) -> None:
            target = graph.node(node_id)
            if not param.required and param.check(param.default) == checked:
                target.params.pop(name, None)
            else:
                target.params[name] = stored
            kept = set(graph.input_ports(node_id))
            for port in [p for p in graph.inputs_of(node_id) if p not in kept]:
                graph.disconnect(node_id, port)
            outputs = set(graph.output_ports(node_id))
            for link in [l for l in graph.links() if l.src == node_id and l.src_port not in outputs]:
                graph.disconnect(link.dst, link.dst_port)
        self._edit(f"set {node_id}.{name}", change)

    def set_setting(self, section: str, path: str, value: Any) -> None:
        """Set one field of the dataset, training or search section (``path`` like ``optimizer.lr``); undoable.

        The value is checked against the section's declarations before it is kept, so a bad value is
        refused with the field named and the section stays as it was.
        """
        self.set_settings(section, {path: value}, f"set {section}.{path}")

    def set_settings(self, section: str, values: dict[str, Any], label: str) -> None:
        """Set several fields of a section as one undoable edit (None removes a field), checked as set_setting is."""
        def change(graph: Graph) -> None:
            for path, value in values.items():
                tree = self.project.sections.setdefault(section, {})
                *parents, leaf = path.split(".")
                for key in parents:
                    tree = tree.setdefault(key, {})
                if value is None:
                    tree.pop(leaf, None)
                else:
                    tree[leaf] = value
            read(self.project.sections[section], SECTIONS[section], section)
        self._edit(label, change)

    def rename(self, old: str, new: str) -> None:
        """Give a node a new id; refused if the id is taken or invalid."""
        if old == new:
            return
        self.selection = [new if n == old else n for n in self.selection]
        try:
            self._edit(f"rename {old} to {new}", lambda graph: graph.rename(old, new))
        except GraphError:
            self.selection = [old if n == new else n for n in self.selection]
            raise

    def auto_layout(self) -> None:
        """Lay the whole network out: left to right by depth, top to bottom by resolution."""
        self.move(self._layout())

    def _layout(self) -> dict[str, tuple[float, float]]:
        return auto_layout(self.graph, self.shapes)

    # ---------------------------------------------------------- copy & paste

    def copy(self, node_ids: Iterable[str] | None = None) -> GraphData:
        """Copy nodes (the selection by default) with the links among them."""
        self.clipboard = self.graph.snapshot(set(self.selection if node_ids is None else node_ids))
        return self.clipboard

    def paste(self, clipboard: GraphData | None = None, offset: tuple[float, float] = PASTE_OFFSET) -> list[str]:
        """Paste copied nodes under fresh ids, shifted by ``offset``, with their internal links."""
        clip = clipboard or self.clipboard
        if not clip.nodes:
            return []

        def change(graph: Graph) -> list[str]:
            renamed = {}
            for node in clip.nodes:
                stem = re.sub(r"\d+$", "", node.id) or graph.spec(node.type).id_prefix
                new_id = renamed[node.id] = graph.unique_id(stem)
                x, y = node.pos or (0.0, 0.0)
                graph.add_node(new_id, node.type, node.copy().params, (x + offset[0], y + offset[1]))
            for link in clip.links:
                graph.connect(renamed[link.src], renamed[link.dst], link.src_port, link.dst_port)
            return list(renamed.values())
        pasted = self._edit(f"paste {len(clip.nodes)} nodes", change)
        self.selection = pasted
        return pasted

    # -------------------------------------------------------------- selection

    def select(self, node_ids: Iterable[str]) -> None:
        """Replace the selection."""
        self.selection = [n for n in dict.fromkeys(node_ids) if n in self.graph]

    def select_all(self) -> None:
        """Select every node."""
        self.selection = [n.id for n in self.graph.nodes()]

    def box_select(self, corner: tuple[float, float], other: tuple[float, float]) -> list[str]:
        """Select the nodes whose position lies in the box spanned by two canvas points."""
        (x0, x1), (y0, y1) = sorted((corner[0], other[0])), sorted((corner[1], other[1]))
        self.select(n.id for n in self.graph.nodes() if n.pos and x0 <= n.pos[0] <= x1 and y0 <= n.pos[1] <= y1)
        return self.selection

    # ------------------------------------------------------------------ files

    def _place_unplaced(self) -> None:
        graph = self.graph
        if any(node.pos is None for node in graph.nodes()):
            self.shapes = infer_shapes(graph)
            for node_id, pos in self._layout().items():
                graph.node(node_id).pos = pos

    def switch_network(self, name: str) -> None:
        """Edit another network of the project (a GAN's discriminator, say); each keeps its own undo history."""
        if name not in self.project.networks:
            raise GraphError(f"no network '{name}' (the project has {', '.join(self.project.networks)})")
        if name == self.network:
            return
        self._histories[self.network] = (self._undo, self._redo)
        self._undo, self._redo = self._histories.pop(name, ([], []))
        self.network = name
        self.selection = []
        self._place_unplaced()
        self._refresh()

    def reset(self, project: Project, path: str | Path | None = None) -> None:
        """Start over on another project: history cleared, nothing unsaved."""
        revision = self.revision
        self.__init__(project, path)
        self.revision += revision  # never one a view has shown already

    def new(self) -> None:
        """An empty, untitled project."""
        self.reset(Project())

    def open(self, path: str | Path) -> None:
        """Load a project file; a file without canvas positions is laid out automatically.

        A Neural Network Console project (.sdcproj) is imported as the CLI's ``netcanvas import`` does: it
        becomes an unsaved project whose file is the .graph.yaml beside it, and its notes are the last action.
        """
        path = Path(path)
        if path.suffix.lower() != ".sdcproj":
            self.reset(load(path), path)
            return
        imported = import_sdcproj(path)
        self.reset(imported.project, path.with_suffix(".graph.yaml"))
        self._saved_state = None  # nothing of it is written yet
        self.last_action = f"imported {path.name}" + "".join(f"; {note}" for note in imported.notes)

    def save(self, path: str | Path | None = None) -> Path:
        """Write the project (atomically) to ``path`` or where it came from."""
        target = Path(path) if path else self.path
        if target is None:
            raise GraphError("the project has no file yet: choose where to save it")
        try:
            save(self.project, target)
        except OSError as exc:
            raise GraphError(f"cannot save: {exc.strerror or exc}", file=str(target)) from None
        self.path = target
        self._saved_state = self._state
        self.revision += 1
        return target
