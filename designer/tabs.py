"""The Dataset, Training, Evaluation and Search tabs and the Export window: dearpygui views over the workbench.

Everything here draws state from ``designer.workbench`` and forwards presses to it; the work runs in
background jobs, so a frame only drains their queues and redraws what changed.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

import dearpygui.dearpygui as dpg
import numpy as np
from PIL import Image

from graphcompiler import GraphError
from runtime.settings import SECTIONS, TRIAL_KINDS, Group, Mapping
from runtime.ticks import log_ticks, short_number

from . import jobs
from .workbench import (Evaluation, ExportSession, FoldersSession, PredictionSession, SearchSession, TrainingSession,
                        default_folders_output, folder_options, list_runs, load_evaluation, preview_dataset,
                        relative_data_path, use_folder_dataset)
from .widgets import BOTTOM_HEIGHT, descendants, param_widget, rect

THUMB = 28
PICTURE_SIDE = 300
"""Longest side, in pixels, of an evaluation picture in the gallery."""
MAX_RESULT_ROWS = 200
"""Rows of the output result table drawn at once; sorting and the mistakes filter pick which."""
MAX_WRITTEN_CLASSES = 30
"""Up to this many classes the confusion matrix writes each cell's count; beyond, they would not fit."""
RUN_LIST_SECONDS = 1.0
EDITED = "the network being edited"
HEADER_COLOUR = (150, 180, 220)
ERROR_COLOUR = (190, 60, 40)
WARNING_COLOUR = (230, 159, 0)
"""Okabe and Ito's orange: a warning about a run that goes on, not an error that stopped it."""
THEME_COLOUR = (-255, 0, 0, 255)
"""dearpygui's way of saying: the theme's text colour."""
IMAGE_TYPES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff")
CURVE_COLOURS = {"train_loss": (0, 114, 178), "val_loss": (230, 159, 0), "val_error": (204, 121, 167)}
"""Okabe and Ito's blue, orange and reddish purple (told apart with any colour vision), as in learning_curve.png."""
BLUES = ((247, 251, 255), (222, 235, 247), (198, 219, 239), (158, 202, 225), (107, 174, 214), (66, 146, 198),
         (33, 113, 181), (8, 81, 156), (8, 48, 107))
"""ColorBrewer's sequential Blues, light to dark: the confusion matrix's scale, as in its PNG."""
COUNT_GAMMA = 0.5
"""Colour follows count ** 0.5 (as runtime.plots does), so a single mistake shows against empty cells."""


def count_colours(steps: int = 64, gamma: float = COUNT_GAMMA) -> list[list[int]]:
    """The confusion colormap: ``steps`` RGBA colours for counts spread evenly from none to the most."""
    colours = []
    for i in range(steps):
        position = (i / (steps - 1)) ** gamma * (len(BLUES) - 1)
        low = min(int(position), len(BLUES) - 2)
        part = position - low
        colours.append([round(a + (b - a) * part) for a, b in zip(BLUES[low], BLUES[low + 1])] + [255])
    return colours


class Workspace:
    """The tabs beside the network editor, and the jobs they started."""

    def __init__(self, app: Any):
        self.app = app
        self.training = TrainingSession()
        self.search = SearchSession()
        self.exporter = ExportSession()
        self.folders = FoldersSession()
        self.prediction = PredictionSession()
        self.prediction_shown = None
        self.folders_default = ""
        self.pictures: dict[tuple[Path, float], tuple[int, int, int] | None] = {}
        self.job_problems: list[str] = []
        self.runs: list = []
        self.runs_read = 0.0
        self.selected_run: Path | None = None
        self.evaluation: Evaluation | None = None
        self.evaluation_shown: tuple | None = None
        self.preview_key: str | None = None
        self.forms: dict[str, str] = {}
        self.curve_points = -1
        self.trials_shown: list = []
        self.selected_trial: int | None = None
        self.textures: dict[Path, int] = {}

    @property
    def model(self):
        return self.app.model

    @property
    def base_dir(self) -> Path:
        """The folder the project's data paths are relative to: the project file's, or here when unsaved."""
        return self.model.path.resolve().parent if self.model.path else Path.cwd()

    # ---------------------------------------------------------------- build

    def build(self) -> None:
        """Add the four tabs to the current tab bar, and the windows they open."""
        self._dataset_tab()
        self._training_tab()
        self._evaluation_tab()
        self._search_tab()
        self._export_window()
        self._folders_window()
        self._inference_window()
        dpg.add_file_dialog(tag="csv_dialog", show=False, callback=self._on_csv_chosen, width=700, height=450,
                            modal=True)
        dpg.add_file_extension(".csv", parent="csv_dialog")
        dpg.add_file_dialog(tag="folders_dialog", directory_selector=True, show=False, width=700, height=450,
                            modal=True, callback=lambda s, data: self._folders_source(data["file_path_name"]))
        dpg.add_file_dialog(tag="inference_folder_dialog", directory_selector=True, show=False, width=700,
                            height=450, modal=True,
                            callback=lambda s, data: dpg.set_value("inference_input", data["file_path_name"]))
        dpg.add_file_dialog(tag="inference_file_dialog", show=False, width=700, height=450, modal=True,
                            callback=lambda s, data: dpg.set_value("inference_input", data["file_path_name"]))
        dpg.add_file_extension("Lists and images{.csv," + ",".join(IMAGE_TYPES) + "}", parent="inference_file_dialog")
        dpg.add_texture_registry(tag="thumbnails")

    def _dataset_tab(self) -> None:
        with dpg.tab(label="Dataset", tag="tab_dataset"):
            for which in ("training", "validation"):
                with dpg.group(horizontal=True):
                    dpg.add_input_text(label=f"{which} CSV", tag=f"data_{which}", width=420, on_enter=True,
                                       callback=lambda s, v, w: self._set_data(w, v), user_data=which)
                    dpg.add_button(label="Choose...", tag=f"choose_{which}", user_data=which,
                                   callback=lambda s, a, w: self._choose_csv(w))
            with dpg.group(horizontal=True):
                dpg.add_button(label="From folders...", tag="folders_open", callback=lambda: self._show_folders())
                dpg.add_text("make the lists from your own images: one subfolder per class")
            dpg.add_text("", tag="folders_message", wrap=1200)
            dpg.add_radio_button(("training", "validation"), tag="preview_which", horizontal=True,
                                 callback=lambda: self._invalidate_preview())
            dpg.add_group(tag="preview_problems")
            with dpg.group(horizontal=True):
                dpg.add_child_window(tag="preview_rows", width=520, height=-BOTTOM_HEIGHT - 80)
                dpg.add_child_window(tag="preview_summary", height=-BOTTOM_HEIGHT - 80)
            dpg.add_text("Input nodes and the CSV variables they read", color=HEADER_COLOUR)
            dpg.add_group(tag="mapping")

    def _training_tab(self) -> None:
        # Markers on the curve: after one epoch a line of one point draws nothing.
        for key, colour in CURVE_COLOURS.items():
            with dpg.theme(tag=f"curve_theme_{key}"):
                with dpg.theme_component(dpg.mvLineSeries):
                    marker = dpg.mvPlotMarker_Square if key == "val_error" else dpg.mvPlotMarker_Circle
                    dpg.add_theme_style(dpg.mvPlotStyleVar_Marker, marker, category=dpg.mvThemeCat_Plots)
                    dpg.add_theme_color(dpg.mvPlotCol_Line, colour, category=dpg.mvThemeCat_Plots)
        with dpg.tab(label="Training", tag="tab_training"):
            with dpg.group(horizontal=True):
                dpg.add_child_window(tag="form_training", width=340, height=-BOTTOM_HEIGHT)
                with dpg.child_window(height=-BOTTOM_HEIGHT):
                    with dpg.group(horizontal=True):
                        dpg.add_button(label="Train", tag="train_button", callback=self._train)
                        dpg.add_button(label="Stop", tag="stop_button", callback=lambda: self.training.stop())
                        dpg.add_button(label="Resume selected run", tag="resume_button", callback=self._resume)
                        dpg.add_button(label="Export...", tag="export_open",
                                       callback=lambda: self.show_export("ONNX", self.selected_run))
                    dpg.add_text("no training run yet", tag="training_status")
                    dpg.add_text("", tag="training_warning", color=WARNING_COLOUR, wrap=900)
                    with dpg.plot(tag="curve_plot", height=320, width=-1):
                        dpg.add_plot_legend(outside=True, location=dpg.mvPlot_Location_North, horizontal=True)
                        dpg.add_plot_axis(dpg.mvXAxis, label="epoch", tag="curve_x")
                        with dpg.plot_axis(dpg.mvYAxis, label="loss", tag="curve_y"):
                            for key, label in (("train_loss", "training loss"), ("val_loss", "validation loss")):
                                dpg.add_line_series([], [], label=label, tag=f"curve_{key}")
                                dpg.bind_item_theme(f"curve_{key}", f"curve_theme_{key}")
                        # Its own axis: an error of a few percent on the loss's scale is a flat line at the bottom.
                        with dpg.plot_axis(dpg.mvYAxis2, label="validation error", tag="curve_error_axis",
                                           opposite=True):
                            dpg.add_line_series([], [], label="validation error", tag="curve_val_error")
                            dpg.bind_item_theme("curve_val_error", "curve_theme_val_error")
                    dpg.add_text("Runs (select one to resume, evaluate or export it)", color=HEADER_COLOUR)
                    dpg.add_listbox([], tag="run_list", num_items=8, width=-1, callback=self._on_run_selected)

    def _evaluation_tab(self) -> None:
        with dpg.colormap_registry():
            dpg.add_colormap(count_colours(), qualitative=False, tag="count_colours")
        with dpg.tab(label="Evaluation", tag="tab_evaluation"):
            with dpg.group(horizontal=True):
                dpg.add_text("Select a run in the Training tab's run list.", tag="eval_title")
                dpg.add_button(label="Inference...", tag="inference_open", callback=lambda: self._show_inference())
            dpg.add_text("", tag="eval_metrics", wrap=1200)
            with dpg.group(horizontal=True):
                with dpg.child_window(width=580, height=420):
                    with dpg.group(horizontal=True):
                        # One sequential scale (not the default multi-hue map, where 31 and 35 differ in hue
                        # but 0, 1 and 2 look alike) and the count in every cell, in ink that contrasts with it.
                        with dpg.plot(tag="confusion_plot", height=400, width=470, no_mouse_pos=True,
                                      equal_aspects=True):
                            dpg.add_plot_axis(dpg.mvXAxis, label="predicted", tag="confusion_x", lock_min=True,
                                              lock_max=True, no_gridlines=True)
                            dpg.add_plot_axis(dpg.mvYAxis, label="true", tag="confusion_y", lock_min=True,
                                              lock_max=True, no_gridlines=True)
                        dpg.add_colormap_scale(tag="confusion_scale", label="samples", colormap="count_colours",
                                               min_scale=0.0, max_scale=1.0, height=400, width=80, format="%g")
                    dpg.bind_colormap("confusion_plot", "count_colours")
                dpg.add_child_window(tag="eval_report", height=420)
            with dpg.tab_bar(tag="eval_tabs"):
                with dpg.tab(label="Validation results", tag="eval_tab_results"):
                    with dpg.group(horizontal=True):
                        dpg.add_checkbox(label="mistakes only", tag="eval_mistakes",
                                         callback=lambda: self._show_results())
                        dpg.add_checkbox(label="sort by score (least sure first)", tag="eval_sort",
                                         callback=lambda: self._show_results())
                    dpg.add_child_window(tag="eval_results", height=-BOTTOM_HEIGHT)
                with dpg.tab(label="Pictures", tag="eval_tab_pictures"):
                    dpg.add_child_window(tag="eval_pictures", height=-BOTTOM_HEIGHT, horizontal_scrollbar=True)
                with dpg.tab(label="Inference", tag="eval_tab_inference"):
                    dpg.add_text("Press Inference... to run the selected run's network on new data.",
                                 tag="inference_message", wrap=1200)
                    dpg.add_child_window(tag="inference_results", height=-BOTTOM_HEIGHT, horizontal_scrollbar=True)

    def _search_tab(self) -> None:
        with dpg.tab(label="Search", tag="tab_search"):
            with dpg.group(horizontal=True):
                dpg.add_child_window(tag="form_search", width=340, height=-BOTTOM_HEIGHT)
                with dpg.child_window(height=-BOTTOM_HEIGHT):
                    with dpg.group(horizontal=True):
                        dpg.add_button(label="Start search", tag="search_start", callback=self._start_search)
                        dpg.add_button(label="Stop", tag="search_stop", callback=lambda: self.search.stop())
                    dpg.add_text("no search yet", tag="search_status")
                    with dpg.plot(tag="search_plot", height=340, width=-1):
                        dpg.add_plot_legend(outside=True, location=dpg.mvPlot_Location_North, horizontal=True)
                        dpg.add_plot_axis(dpg.mvXAxis, label="multiply-adds", tag="search_x", scale=dpg.mvPlotScale_Log10)
                        _macs_axis(1e4, 1e8)  # until the first trial
                        with dpg.plot_axis(dpg.mvYAxis, label="validation error", tag="search_y"):
                            for kind in TRIAL_KINDS:
                                dpg.add_scatter_series([], [], label=kind, tag=f"search_{kind}")
                            dpg.add_line_series([], [], label="Pareto front", tag="search_front")
                    with dpg.item_handler_registry(tag="search_plot_handlers"):
                        dpg.add_item_clicked_handler(callback=self._on_plot_clicked)
                    dpg.bind_item_handler_registry("search_plot", "search_plot_handlers")
                    with dpg.group(horizontal=True):
                        dpg.add_listbox([], tag="search_trials", num_items=9, width=560,
                                        callback=lambda s, item: self._select_trial(int(item.split()[1].rstrip(":"))))
                        with dpg.group():
                            dpg.add_button(label="Open this candidate in a new window", tag="candidate_open",
                                           callback=self._open_candidate)
                            dpg.add_text("Click a point or a trial to see how it differs from the base network.",
                                         tag="candidate_diff", wrap=500)

    def _export_window(self) -> None:
        with dpg.window(tag="export_window", label="Export", show=False, width=620, height=230, pos=(400, 200)):
            dpg.add_combo(("ONNX", "PyTorch source"), tag="export_format", label="format", width=200,
                          default_value="ONNX", callback=lambda: self._default_export_path())
            dpg.add_combo([], tag="export_source", label="network", width=420,
                          callback=lambda: self._default_export_path())
            dpg.add_input_text(tag="export_output", label="file", width=420)
            dpg.add_button(label="Export", tag="export_button", callback=self._export)
            dpg.add_text("", tag="export_message", wrap=600)

    def _folders_window(self) -> None:
        with dpg.window(tag="folders_window", label="Dataset from folders", show=False, width=720, height=150,
                        pos=(300, 160)):
            with dpg.group(horizontal=True):
                dpg.add_input_text(tag="folders_source", label="source", width=480,
                                   hint="a folder with one subfolder of images per class, or train/ and test/",
                                   callback=lambda s, v: self._folders_source(v))
                dpg.add_button(label="Choose...", tag="folders_choose", callback=lambda: dpg.show_item("folders_dialog"))
            dpg.add_input_text(tag="folders_output", label="lists go to", width=480,
                               hint="data/<source name> beside the project")
            with dpg.group(horizontal=True):
                dpg.add_input_text(tag="folders_validation", label="validation share", width=60, hint="0.2")
                dpg.add_input_int(tag="folders_height", label="x", width=60, step=0, min_value=0, min_clamped=True)
                dpg.add_input_int(tag="folders_width", label="size (0: keep)", width=60, step=0, min_value=0,
                                  min_clamped=True)
                dpg.add_combo(("keep", "1", "3"), tag="folders_channels", label="channels", default_value="keep",
                              width=70)
                dpg.add_input_int(tag="folders_seed", label="seed", width=60, step=0)
            with dpg.tooltip("folders_validation"):
                dpg.add_text("share of each class held out for validation; empty: 0.2, or none for a source that "
                             "holds train/ and test/", wrap=300)
            with dpg.tooltip("folders_width"):
                dpg.add_text("height x width: write the images resized to it as PNGs under images/, and with "
                             "channels 1 (gray) or 3 (RGB) converted; 0 x 0 and keep: the lists name the original "
                             "files", wrap=300)
            dpg.add_button(label="Write the lists and use them", tag="folders_run", callback=self._run_folders)

    def _inference_window(self) -> None:
        with dpg.window(tag="inference_window", label="Inference", show=False, width=720, height=140,
                        pos=(300, 160)):
            dpg.add_text("", tag="inference_run_name")
            with dpg.group(horizontal=True):
                dpg.add_input_text(tag="inference_input", label="input", width=420,
                                   hint="a CSV list, an image or a folder of images")
                dpg.add_button(label="File...", tag="inference_choose_file",
                               callback=lambda: dpg.show_item("inference_file_dialog"))
                dpg.add_button(label="Folder...", tag="inference_choose_folder",
                               callback=lambda: dpg.show_item("inference_folder_dialog"))
            dpg.add_input_text(tag="inference_output", label="output CSV", width=420,
                               hint="predictions/<input name>.csv in the run")
            dpg.add_button(label="Predict", tag="inference_run", callback=self._run_inference)

    def _form(self, section: str, parent: str) -> None:
        """Rebuild a settings form from the section's declarations when the section changed."""
        data = self.model.project.sections.get(section) or {}
        key = json.dumps(data, sort_keys=True, default=str)
        if self.forms.get(section) == key:
            return
        self.forms[section] = key
        dpg.delete_item(parent, children_only=True)
        dpg.push_container_stack(parent)
        try:
            self._fields(section, SECTIONS[section], data, "")
        finally:
            dpg.pop_container_stack()

    def _fields(self, section: str, fields: tuple, data: dict, prefix: str) -> None:
        for field in fields:
            path = f"{prefix}{field.name}"
            if isinstance(field, Group):
                with dpg.collapsing_header(label=field.name, default_open=field.name in ("optimizer", "augmentation")):
                    with dpg.group(indent=10):
                        self._fields(section, field.fields, data.get(field.name) or {}, f"{path}.")
            elif not isinstance(field, Mapping):
                value = data.get(field.name, field.default)
                param_widget(field, value, f"{section}.{path}", self._setting(section, path))

    def _setting(self, section: str, path: str) -> Callable[[Any], None]:
        def change(value: Any) -> None:
            self.app.apply(lambda: self.model.set_setting(section, path, value))
            self.forms.pop(section, None)  # a refused value is put back on the next frame
        return change

    # ---------------------------------------------------------------- sync

    def sync(self) -> None:
        """Drain the jobs and redraw what changed; called every frame."""
        for session in (self.training, self.search, self.exporter, self.folders, self.prediction):
            for event in session.poll():
                # A bad source tree or input is the tab's own message; the problems list is for jobs that break.
                if event.kind == "error" and session not in (self.folders, self.prediction):
                    self.job_problems.append(f"{session.job.name} job: {event.data}")
                    self.app.redraw()  # the problems list shows the job's error
                if event.kind in ("done", "stopped", "error", "started"):
                    self.runs_read = 0.0
                if event.kind == "done" and session is self.folders:
                    self.app.apply(lambda: use_folder_dataset(self.model, self.folders.result, self.base_dir))
        tab = dpg.get_item_alias(dpg.get_value("main_tabs")) if dpg.get_value("main_tabs") else ""
        # A user on these tabs is about to train or search: have a job process ready that has loaded torch
        # (a new one spends seconds on that before its first batch). Not while the tab's own job runs.
        if tab in ("tab_dataset", "tab_training", "tab_evaluation") and not self.training.running or \
                tab == "tab_search" and not self.search.running:
            jobs.warm_up()
        if tab == "tab_dataset":
            self._sync_dataset()
        elif tab == "tab_training":
            self._form("training", "form_training")
            self._sync_training()
        elif tab == "tab_evaluation":
            self._sync_evaluation()
        elif tab == "tab_search":
            self._form("search", "form_search")
            self._sync_search()
        if dpg.is_item_shown("export_window"):
            dpg.set_value("export_message", self.exporter.message)

    def _sync_dataset(self) -> None:
        dpg.set_value("folders_message", self.folders.message)
        failed = self.folders.message.startswith(("refused", "from folders failed"))
        dpg.configure_item("folders_message", color=ERROR_COLOUR if failed else THEME_COLOUR)
        section = self.model.project.sections.get("dataset") or {}
        for which in ("training", "validation"):
            if not dpg.is_item_active(f"data_{which}"):
                dpg.set_value(f"data_{which}", section.get(which, ""))
        key = json.dumps([section, dpg.get_value("preview_which"), self.model.state, str(self.base_dir)],
                         sort_keys=True, default=str)
        if key != self.preview_key:
            self.preview_key = key
            self._show_preview()

    def _invalidate_preview(self) -> None:
        self.preview_key = None

    def _show_preview(self) -> None:
        for tag in ("preview_problems", "preview_rows", "preview_summary", "mapping"):
            dpg.delete_item(tag, children_only=True)
        which = dpg.get_value("preview_which") or "training"
        try:
            preview = preview_dataset(self.model, which, self.base_dir)
        except GraphError as exc:
            dpg.add_text(str(exc), parent="preview_problems", color=ERROR_COLOUR, wrap=1200)
            return
        if preview is None:
            dpg.add_text(f"Choose the {which} CSV (an NNC dataset list).", parent="preview_problems")
            return
        for problem in preview.problems:
            dpg.add_text(problem, parent="preview_problems", color=ERROR_COLOUR, wrap=1200)
        for warning in preview.warnings:
            dpg.add_text(warning, parent="preview_problems", color=WARNING_COLOUR, wrap=1200)
        if not preview.problems:
            dpg.add_text(f"{preview.path}: {preview.count} rows; fits the network", parent="preview_problems",
                         color=(120, 170, 120))
        with dpg.table(parent="preview_rows", header_row=True, borders_innerH=True, tag="preview_table"):
            for column in preview.header:
                dpg.add_table_column(label=column)
            names = [v.name for v in preview.variables]
            for index, row in enumerate(preview.rows):
                with dpg.table_row():
                    for name, cell in zip(names, row):
                        image = preview.images.get((index, name))
                        texture = self._thumbnail(image) if image else None
                        if texture:
                            dpg.add_image(texture, width=THUMB, height=THUMB)
                        else:
                            dpg.add_text(cell)
        for var in preview.variables:
            dpg.add_text(f"{var.name}: {var.kind}, {' x '.join(map(str, var.shape)) or 'scalar'} per row",
                         parent="preview_summary")
            if var.histogram:
                with dpg.plot(parent="preview_summary", height=150, width=-1, no_mouse_pos=True):
                    dpg.add_plot_axis(dpg.mvXAxis, label=f"{var.name} value", auto_fit=True)
                    with dpg.plot_axis(dpg.mvYAxis, label="rows", auto_fit=True):
                        dpg.add_bar_series(list(map(float, var.histogram)), list(map(float, var.histogram.values())),
                                           weight=0.8)
        mapping = (self.model.project.sections.get("dataset") or {}).get("inputs") or {}
        for node in map(self.model.graph.node, self.model.graph.fed_inputs()):
            dpg.add_combo(names, label=f"Input '{node.id}' {tuple(node.params.get('shape', ()))}", parent="mapping",
                          default_value=mapping.get(node.id, node.id), width=200, user_data=node.id,
                          callback=lambda s, var, node_id: self.app.apply(
                              lambda: self.model.set_setting("dataset", f"inputs.{node_id}", var)))

    def _thumbnail(self, path: Path) -> int | None:
        """A texture of the image file, made once per file."""
        if path in self.textures:
            return self.textures[path]
        try:
            with Image.open(path) as image:
                pixels = np.asarray(image.convert("RGBA").resize((THUMB, THUMB)), dtype=np.float32) / 255.0
        except (OSError, Image.DecompressionBombError):
            return None
        self.textures[path] = dpg.add_static_texture(THUMB, THUMB, pixels.ravel().tolist(), parent="thumbnails")
        return self.textures[path]

    def _sync_training(self) -> None:
        dpg.set_value("training_status", self.training.status())
        dpg.set_value("training_warning", self.training.warning)
        if len(self.training.curve) != self.curve_points:
            self.curve_points = len(self.training.curve)
            for key in ("train_loss", "val_loss", "val_error"):
                rows = [r for r in self.training.curve if key in r]
                dpg.set_value(f"curve_{key}", [[r["epoch"] for r in rows], [r[key] for r in rows]])
            # Whole epochs a little inside the frame, so the first and last markers show whole.
            epochs = max(len(self.training.curve), 1)
            step = math.ceil(epochs / 10)
            dpg.set_axis_limits("curve_x", 1 - 0.03 * epochs - 0.2, epochs + 0.03 * epochs + 0.2)
            dpg.set_axis_ticks("curve_x", tuple((str(e), float(e)) for e in range(1, epochs + 1, step)))
            losses = [r[k] for r in self.training.curve for k in ("train_loss", "val_loss") if k in r]
            if losses:
                _fit_with_margin("curve_y", losses)
            errors = [r["val_error"] for r in self.training.curve if "val_error" in r]
            dpg.set_axis_limits("curve_error_axis", 0.0, max(errors, default=0.0) * 1.1 or 1.0)
        self._sync_runs()

    def _sync_runs(self) -> None:
        if time.monotonic() - self.runs_read < RUN_LIST_SECONDS:
            return
        self.runs_read = time.monotonic()
        self.runs = list_runs(self.base_dir / "runs")
        items = [_run_label(r) for r in self.runs]
        dpg.configure_item("run_list", items=items)
        if self.selected_run is None and self.runs:
            self.selected_run = self.runs[0].folder
        selected = next((_run_label(r) for r in self.runs if r.folder == self.selected_run), None)
        if selected:
            dpg.set_value("run_list", selected)

    def _on_run_selected(self, sender: Any, label: str) -> None:
        self.selected_run = next((r.folder for r in self.runs if _run_label(r) == label), None)

    def _train(self) -> None:
        try:
            run = self.training.start(self.model, self.base_dir, self.base_dir / "runs")
        except GraphError as exc:
            self.app.status = f"refused: {exc}"
            return
        self.selected_run, self.runs_read, self.curve_points = run, 0.0, -1
        self.app.status = f"training into {run}"

    def _resume(self) -> None:
        if self.selected_run is None:
            self.app.status = "select a stopped run to resume"
            return
        try:
            self.training.resume(self.selected_run)
        except GraphError as exc:
            self.app.status = f"refused: {exc}"
            return
        self.curve_points = -1
        self.app.status = f"resuming {self.selected_run}"

    def _sync_evaluation(self) -> None:
        self._sync_runs()
        self._sync_inference()
        run = self.selected_run
        status = next((r.status for r in self.runs if r.folder == run), None)
        if (run, status) == self.evaluation_shown:
            return
        self.evaluation_shown = (run, status)
        self.evaluation = None
        for tag in ("eval_report", "eval_results", "eval_pictures"):
            dpg.delete_item(tag, children_only=True)
        for series in dpg.get_item_children("confusion_y", 1) or []:
            dpg.delete_item(series)
        if run is None:
            return
        dpg.set_value("eval_title", f"Run {run.name}")
        try:
            self.evaluation = load_evaluation(run)
        except GraphError as exc:
            dpg.set_value("eval_metrics", str(exc))
            return
        metrics = {k: v for k, v in self.evaluation.metrics.items() if isinstance(v, (int, float, str))}
        dpg.set_value("eval_metrics", ", ".join(f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}"
                                                for k, v in metrics.items()))
        self._show_confusion()
        self._show_report()
        self._show_results()
        self._show_pictures()

    def _show_confusion(self) -> None:
        matrix, labels = self.evaluation.confusion, self.evaluation.labels
        if not matrix:
            return
        n = len(labels)
        values = [float(v) for row in matrix for v in row]
        most = max(values) or 1.0
        dpg.add_heat_series(values, n, n, parent="confusion_y", scale_min=0.0, scale_max=most,
                            bounds_min=(0.0, 0.0), bounds_max=(float(n), float(n)),
                            format="%.0f" if n <= MAX_WRITTEN_CLASSES else "")
        dpg.configure_item("confusion_scale", max_scale=most)
        ticks = tuple((label, i + 0.5) for i, label in enumerate(labels))
        dpg.set_axis_ticks("confusion_x", ticks)
        dpg.set_axis_ticks("confusion_y", tuple((label, n - i - 0.5) for i, label in enumerate(labels)))
        dpg.set_axis_limits("confusion_x", 0.0, float(n))
        dpg.set_axis_limits("confusion_y", 0.0, float(n))

    def _show_report(self) -> None:
        report = self.evaluation.report
        if not report:
            return
        with dpg.table(parent="eval_report", header_row=True, borders_innerH=True):
            for column in report[0]:
                dpg.add_table_column(label=column)
            for row in report[1:]:
                with dpg.table_row():
                    for cell in row:
                        dpg.add_text(_short(cell))

    def _show_results(self) -> None:
        if self.evaluation is None:
            return
        dpg.delete_item("eval_results", children_only=True)
        rows = self.evaluation.result_rows(by_score=dpg.get_value("eval_sort"),
                                           mistakes_only=dpg.get_value("eval_mistakes"))
        dpg.add_text(f"{len(rows)} rows{f' (the first {MAX_RESULT_ROWS} shown)' if len(rows) > MAX_RESULT_ROWS else ''}",
                     parent="eval_results", tag="eval_results_count")
        with dpg.table(parent="eval_results", header_row=True, borders_innerH=True, tag="eval_results_table"):
            dpg.add_table_column(label="")
            for column in self.evaluation.columns:
                dpg.add_table_column(label=column)
            for row in rows[:MAX_RESULT_ROWS]:
                with dpg.table_row():
                    image = self.evaluation.image_of(row)
                    texture = self._thumbnail(image) if image else None
                    if texture:
                        dpg.add_image(texture, width=THUMB, height=THUMB)
                    else:
                        dpg.add_text("")
                    for cell in self.evaluation.shown_row(row):
                        dpg.add_text(_short(cell))

    def _show_pictures(self) -> None:
        pictures = self.evaluation.pictures
        if not pictures:
            dpg.add_text("No pictures in this evaluation: `netcanvas evaluate RUN --pictures N` draws Grad-CAM of a "
                         "classifier's mistakes, segmentation masks, the worst reconstructions and ROC.",
                         parent="eval_pictures", wrap=1100)
            return
        with dpg.group(horizontal=True, parent="eval_pictures"):
            for path in pictures:
                texture = self._picture(path)
                if texture:
                    with dpg.group():
                        dpg.add_image(texture[0], width=texture[1], height=texture[2])
                        dpg.add_text(self.evaluation.caption(path), wrap=texture[1])

    def _picture(self, path: Path) -> tuple[int, int, int] | None:
        """A texture of the picture at most PICTURE_SIDE pixels on its longest side, and its size; made once per
        version of the file (`netcanvas evaluate` may draw it again)."""
        try:
            key = (path, path.stat().st_mtime)
        except OSError:
            return None
        if key not in self.pictures:
            # A redrawn picture's texture replaces the last one's: the Evaluation tab rebuilt its images first.
            for old in [k for k in self.pictures if k[0] == path]:
                made = self.pictures.pop(old)
                if made:
                    dpg.delete_item(made[0])
            self.pictures[key] = self._picture_texture(path)
        return self.pictures[key]

    def _picture_texture(self, path: Path) -> tuple[int, int, int] | None:
        try:
            with Image.open(path) as image:
                image.thumbnail((PICTURE_SIDE, PICTURE_SIDE))
                # Small pictures (28 x 28 digits side by side) enlarged with sharp pixels, not blurred.
                scale = max(1, PICTURE_SIDE // max(image.size))
                rgba = image.convert("RGBA").resize((image.width * scale, image.height * scale),
                                                    Image.Resampling.NEAREST)
        except (OSError, Image.DecompressionBombError):
            return None
        pixels = np.asarray(rgba, dtype=np.float32) / 255.0
        return (dpg.add_static_texture(rgba.width, rgba.height, pixels.ravel().tolist(), parent="thumbnails"),
                rgba.width, rgba.height)

    # ---------------------------------------------------------------- inference

    def _show_inference(self) -> None:
        run = self.selected_run
        dpg.set_value("inference_run_name", f"with the network of run {run.name}" if run else
                      "select a finished run in the Training tab's run list first")
        dpg.show_item("inference_window")

    def _run_inference(self) -> None:
        try:
            self.prediction.start(self.selected_run, dpg.get_value("inference_input"),
                                  dpg.get_value("inference_output"))
        except GraphError as exc:
            self.prediction.message = f"refused: {exc}"
        dpg.hide_item("inference_window")
        dpg.set_value("eval_tabs", "eval_tab_inference")

    def _sync_inference(self) -> None:
        session = self.prediction
        dpg.set_value("inference_message", session.message or dpg.get_value("inference_message"))
        failed = session.message.startswith(("refused", "inference failed"))
        dpg.configure_item("inference_message", color=ERROR_COLOUR if failed else THEME_COLOUR)
        if session.table is self.prediction_shown:
            return
        self.prediction_shown = table = session.table
        dpg.delete_item("inference_results", children_only=True)
        if table is None:
            return
        with dpg.table(parent="inference_results", header_row=True, borders_innerH=True, tag="inference_table",
                       policy=dpg.mvTable_SizingFixedFit, scrollX=True):
            for column in table.columns:
                dpg.add_table_column(label=column)
            for row in table.rows[:MAX_RESULT_ROWS]:
                with dpg.table_row():
                    for index, cell in enumerate(row):
                        image = table.image_of(row, index)
                        texture = self._thumbnail(image) if image else None
                        if texture:
                            dpg.add_image(texture, width=THUMB, height=THUMB)
                        else:
                            dpg.add_text(_short(cell))

    def _start_search(self) -> None:
        try:
            folder = self.search.start(self.model, self.base_dir, self.base_dir / "searches")
        except GraphError as exc:
            self.app.status = f"refused: {exc}"
            return
        self.trials_shown, self.selected_trial = [], None
        self.app.status = f"searching in {folder}"

    def _sync_search(self) -> None:
        session = self.search
        if session.job is None:
            return
        complete = sum(t.state == "complete" for t in session.trials)
        state = {"running": "running", "done": "finished", "stopped": "stopped",
                 "failed": f"failed: {session.job.error}"}[session.job.state]
        dpg.set_value("search_status", f"{session.folder}: {state}; {len(session.trials)} trials, {complete} complete, "
                                       f"{len(session.front)} on the Pareto front")
        if session.trials == self.trials_shown:
            return
        self.trials_shown = list(session.trials)
        for kind in TRIAL_KINDS:
            points = [t for t in session.trials if t.state == "complete" and t.kind == kind]
            dpg.set_value(f"search_{kind}", [[float(t.macs) for t in points], [t.error for t in points]])
        dpg.set_value("search_front", [[float(t.macs) for t in session.front], [t.error for t in session.front]])
        done = [t for t in session.trials if t.state == "complete"]
        if done:
            _macs_axis(min(t.macs for t in done), max(t.macs for t in done))
            _fit_with_margin("search_y", [t.error for t in done])
        dpg.configure_item("search_trials", items=[_trial_label(t) for t in session.trials])

    def _on_plot_clicked(self, *args: Any) -> None:
        x, y = dpg.get_plot_mouse_pos()
        points = [t for t in self.search.trials if t.state == "complete"]
        if not points or x <= 0:
            return
        (x0, x1), (y0, y1) = dpg.get_axis_limits("search_x"), dpg.get_axis_limits("search_y")
        span_x = math.log10(max(x1, 1e-9)) - math.log10(max(x0, 1e-9)) or 1.0
        span_y = (y1 - y0) or 1.0

        def distance(t) -> float:
            return math.hypot((math.log10(t.macs) - math.log10(x)) / span_x, (t.error - y) / span_y)
        self._select_trial(min(points, key=distance).number)

    def _select_trial(self, number: int) -> None:
        self.selected_trial = number
        try:
            _, diff = self.search.candidate(number)
        except GraphError as exc:
            dpg.set_value("candidate_diff", str(exc))
            return
        report = next(t for t in self.search.trials if t.number == number)
        error = f"error {report.error:.4f}" if report.error is not None else report.state
        dpg.set_value("candidate_diff", f"trial {number} ({report.kind}, {error}, {report.macs:,} multiply-adds)\n"
                                        + ("\n".join(diff) if diff else "the base network itself"))
        label = _trial_label(report)
        dpg.set_value("search_trials", label)

    def _open_candidate(self) -> None:
        if self.selected_trial is None or self.search.folder is None:
            self.app.status = "select a trial first"
            return
        from runtime import search  # optuna: loaded on the Search tab's first use, not with the editor

        path = self.search.folder / f"trial{self.selected_trial}.graph.yaml"
        try:
            search.export_trial(self.search.folder, self.selected_trial, path)
        except GraphError as exc:
            self.app.status = f"refused: {exc}"
            return
        subprocess.Popen([sys.executable, "-m", "netcanvas", "design", str(path)])
        self.app.status = f"opened {path} in a new window"

    # ---------------------------------------------------------------- export

    def show_export(self, fmt: str, run: Path | None = None) -> None:
        """Open the Export window for ONNX or PyTorch source, on the edited network or a run's trained one."""
        self.runs_read = 0.0
        self._sync_runs()
        dpg.set_value("export_format", fmt)
        dpg.configure_item("export_source", items=[EDITED, *(f"run {r.folder.name}" for r in self.runs)])
        dpg.set_value("export_source", f"run {run.name}" if run else EDITED)
        self._default_export_path()
        self.exporter.message = ""
        dpg.show_item("export_window")

    def _default_export_path(self) -> None:
        suffix = ".onnx" if dpg.get_value("export_format") == "ONNX" else ".py"
        source = dpg.get_value("export_source") or ""
        stem = source.removeprefix("run ") if source.startswith("run ") else self.model.project.name
        dpg.set_value("export_output", str(self.base_dir / f"{stem}{suffix}"))

    def _export(self) -> None:
        source = dpg.get_value("export_source") or ""
        run = next((r.folder for r in self.runs if source == f"run {r.folder.name}"), None)
        fmt = "onnx" if dpg.get_value("export_format") == "ONNX" else "pytorch"
        try:
            self.exporter.start(self.model, Path(dpg.get_value("export_output")), fmt, run)
        except GraphError as exc:
            self.exporter.message = f"refused: {exc}"

    # ---------------------------------------------------------------- data files

    def _show_folders(self) -> None:
        dpg.show_item("folders_window")

    def _folders_source(self, source: str) -> None:
        """Take the chosen source folder and name the lists' folder after it, unless the user named one."""
        dpg.set_value("folders_source", source)
        if dpg.get_value("folders_output") in ("", self.folders_default):
            self.folders_default = str(default_folders_output(source, self.base_dir)) if source.strip() else ""
            dpg.set_value("folders_output", self.folders_default)

    def _run_folders(self) -> None:
        source = dpg.get_value("folders_source").strip()
        output = dpg.get_value("folders_output").strip() or \
            (str(default_folders_output(source, self.base_dir)) if source else "")
        try:
            options = folder_options(dpg.get_value("folders_validation"), dpg.get_value("folders_height"),
                                     dpg.get_value("folders_width"), dpg.get_value("folders_channels"),
                                     dpg.get_value("folders_seed"))
            self.folders.start(source, output, options)
        except GraphError as exc:
            self.folders.message = f"refused: {exc}"
        dpg.hide_item("folders_window")

    def _set_data(self, which: str, value: str) -> None:
        path = value.strip()
        if path and Path(path).is_absolute():
            path = relative_data_path(path, self.base_dir)
        self.app.apply(lambda: self.model.set_setting("dataset", which, path or None))

    def _choose_csv(self, which: str) -> None:
        dpg.set_item_user_data("csv_dialog", which)
        dpg.show_item("csv_dialog")

    def _on_csv_chosen(self, sender: Any, app_data: dict, which: str) -> None:
        self._set_data(which, app_data["file_path_name"])

    # ---------------------------------------------------------------- the app's needs

    def shutdown(self) -> None:
        """Ask every job to stop (they also stop by themselves when the editor is gone)."""
        for session in (self.training, self.search):
            session.stop()
        jobs.release_spare()

    def ui_state(self) -> dict:
        """Where the tabs' widgets are and what they show, for tests that drive the real window."""
        rects = {tag: rect(tag) for tag in (
            "tab_network", "tab_dataset", "tab_training", "tab_evaluation", "tab_search", "data_training",
            "data_validation", "train_button", "stop_button", "resume_button", "search_start", "search_stop",
            "search_plot", "export_button", "export_output", "export_source", "candidate_open",
            "export_open", "confusion_plot", "confusion_scale", "curve_plot", "folders_open", "folders_source",
            "folders_output", "folders_run", "inference_open", "inference_input", "inference_run",
            "eval_tab_results", "eval_tab_pictures", "eval_tab_inference") if dpg.does_item_exist(tag)}
        epochs = (dpg.get_value("curve_val_error") or [[]])[0]
        scatter = [[float(v) for v in (dpg.get_value(f"search_{kind}") or [[]])[0]] for kind in TRIAL_KINDS]
        for form in ("form_training", "form_search"):
            for item in descendants(form):
                alias = dpg.get_item_alias(item)
                if alias:
                    rects[alias] = rect(item)
        return {
            "rects": rects,
            "training_pid": self.training.job.process.pid if self.training.job else None,
            "tab": dpg.get_item_alias(dpg.get_value("main_tabs")) if dpg.get_value("main_tabs") else "",
            "curve_points": len(epochs),
            "curve_axes": {key: dpg.get_item_alias(dpg.get_item_parent(f"curve_{key}"))
                           for key in ("train_loss", "val_loss", "val_error")},
            "training_state": self.training.job.state if self.training.job else None,
            "training_status": dpg.get_value("training_status"),
            "run_dir": str(self.training.run_dir) if self.training.run_dir else None,
            "selected_run": str(self.selected_run) if self.selected_run else None,
            "confusion": self._shown_confusion(),
            "eval_metrics": dpg.get_value("eval_metrics"),
            "search_state": self.search.job.state if self.search.job else None,
            "search_folder": str(self.search.folder) if self.search.folder else None,
            "search_points": sum(len(s) for s in scatter),
            "search_numbers": [t.number for t in self.trials_shown if t.state == "complete"],
            "candidate": dpg.get_value("candidate_diff"),
            "export_message": self.exporter.message,
            "export_source": dpg.get_value("export_source"),
            "job_problems": list(self.job_problems),
            "preview_problems": [dpg.get_value(i) for i in dpg.get_item_children("preview_problems", 1) or []],
            "dataset_fields": {which: dpg.get_value(f"data_{which}") for which in ("training", "validation")},
            "texts": {tag: dpg.get_value(tag) for tag in ("folders_source", "folders_output", "inference_input")},
            "dataset_labels": (self.model.project.sections.get("dataset") or {}).get("labels"),
            "folders_message": dpg.get_value("folders_message"),
            "training_warning": dpg.get_value("training_warning"),
            "confusion_labels": list(self.evaluation.labels) if self.evaluation else [],
            "pictures": len(self.evaluation.pictures) if self.evaluation else 0,
            "eval_tab": dpg.get_item_alias(dpg.get_value("eval_tabs")) if dpg.get_value("eval_tabs") else "",
            "inference_message": dpg.get_value("inference_message"),
            "inference": self._shown_inference(),
        }

    def _shown_inference(self) -> dict:
        """The inference table as drawn: its column titles and each row's cells (images by their texture)."""
        if not dpg.does_item_exist("inference_table"):
            return {"columns": [], "rows": []}
        columns = [dpg.get_item_label(c) for c in dpg.get_item_children("inference_table", 0)]
        rows = [[dpg.get_value(cell) if dpg.get_item_type(cell).endswith("Text") else "<image>"
                 for cell in dpg.get_item_children(row, 1)] for row in dpg.get_item_children("inference_table", 1)]
        return {"columns": columns, "rows": rows}

    def _shown_confusion(self) -> list[list[int]]:
        """The counts the confusion plot writes in its cells (read back from its heat series)."""
        series = dpg.get_item_children("confusion_y", 1) or []
        if not series:
            return []
        n = dpg.get_item_configuration(series[0])["rows"]
        values = [int(v) for v in dpg.get_value(series[0])[0]]
        return [values[row * n:(row + 1) * n] for row in range(n)]


def _macs_axis(low: float, high: float) -> None:
    """Frame the search plot's log axis around these multiply-adds, ticked 200k, 500k, 1M (ImPlot's own: 1e+06)."""
    low, high, ticks = log_ticks(low, high)
    dpg.set_axis_limits("search_x", low, high)
    dpg.set_axis_ticks("search_x", tuple((short_number(t), t) for t in ticks))


def _fit_with_margin(axis: str, values: list[float]) -> None:
    """Limits around the values with a margin: fit_axis_data puts the extreme points on the frame, half hidden."""
    pad = (max(values) - min(values)) * 0.08 or 0.05
    dpg.set_axis_limits(axis, min(values) - pad, max(values) + pad)


def _run_label(run) -> str:
    return f"{run.folder.name}  {run.status}, {run.epochs_done}/{run.epochs} epochs"


def _trial_label(t) -> str:
    error = f"{t.error:.4f}" if t.error is not None else t.state
    return f"trial {t.number}: {t.kind}, {error}, {t.macs:,} multiply-adds; {'; '.join(t.changes)}"


def _short(cell: str) -> str:
    try:
        value = float(cell)
    except ValueError:
        return cell
    return cell if value.is_integer() else f"{value:.4f}"
