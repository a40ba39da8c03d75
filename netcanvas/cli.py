"""The ``netcanvas`` command: one subcommand per job, each a thin call into the public API."""

from __future__ import annotations

import argparse
import errno
import json
import logging
import os
import sys
from pathlib import Path

from graphcompiler import GraphError, check_file, load, locate
from graphcompiler.layers import categories
from graphcompiler.layers.docs import markdown

from .statistics import statistics_table


def _info(args: argparse.Namespace) -> int:
    project = load(args.file)
    try:
        names = [args.network] if args.network else list(project.networks)
        graphs = [(name, project.network(name)) for name in names]
    except GraphError as exc:
        raise exc.located(file=args.file) from None
    for name, graph in graphs:
        print(f"{project.name} / network '{name}' ({len(graph)} nodes), shapes without the batch axis")
        print(statistics_table(graph))
        weights = (f"from {project.weight_files[name]}" if name in project.weight_files else
                   f"shared with network '{project.weights_from[name]}'" if name in project.weights_from else
                   "fresh (initialised when built)")
        print(f"weights: {weights}")
    return _report(check_file(args.file))


def _report(problems: list[GraphError]) -> int:
    for problem in problems:
        print(f"error: {problem}", file=sys.stderr)
    return 1 if problems else 0


def _validate(args: argparse.Namespace) -> int:
    status = 0
    for path in args.files:
        problems = check_file(path)
        if not problems:
            problems = [locate(problem, path) for problem in _run_problems(Path(path), args.data)]
        if _report(problems):
            status = 1
        else:
            print(f"{path}: ok")
    return status


def _run_problems(path: Path, data: bool) -> list[GraphError]:
    """What train, search and export would refuse in a valid project file before any work: its sections'
    fields, and with ``data`` its dataset lists."""
    from runtime.settings import section_problems

    project = load(path)
    problems = section_problems(project)
    if data and not problems:
        from runtime.data import dataset_problems
        problems = dataset_problems(project, path.parent)
    return problems


def _layers(args: argparse.Namespace) -> int:
    if args.markdown:
        print(markdown(), end="")
        return 0
    for category, types in categories().items():
        print(f"{category}: {', '.join(types)}")
    return 0


def _design(args: argparse.Namespace) -> int:
    from designer.app import run_designer  # imported here: the other commands need no GUI libraries
    return run_designer(args.file, frames=args.frames, screenshot=args.screenshot)


def _dataset(args: argparse.Namespace) -> int:
    from runtime.example_data import write_dataset
    paths = write_dataset(args.name, args.output, size=args.size, seed=args.seed,
                          validation_fraction=args.validation, count=args.count)
    for which, path in paths.items():
        print(f"{which}: {path}")
    return 0


def _detection_dataset(args: argparse.Namespace) -> int:
    from runtime.detection_data import write_detection_dataset, write_nnc_grid_lists
    made = write_detection_dataset(args.output, count=args.count, size=args.size, seed=args.seed,
                                   validation=args.validation, classes=tuple(range(args.classes)))
    for which, path in (("training", made.training), ("validation", made.validation), ("labels", made.labels)):
        print(f"{which}: {path}")
    if args.nnc:
        for which, path in zip(("training (NNC's layout)", "validation (NNC's layout)"), write_nnc_grid_lists(made)):
            print(f"{which}: {path}")
    return 0


def _from_folders(args: argparse.Namespace) -> int:
    from runtime.folders import from_folders
    made = from_folders(args.source, args.output, validation=args.validation,
                        size=tuple(args.size) if args.size else None, channels=args.channels, seed=args.seed)
    print(made.summary())
    print("\nThe dataset section, with paths relative to this folder (make them relative to the project file):")
    print(made.section())
    return 0


def _train(args: argparse.Namespace) -> int:
    from runtime import distributed
    from runtime.runs import new_run_dir, weights_note
    from runtime.training import Stopped, resume, train

    from .progress import ProgressBar
    from .stopping import EXIT_CODE, StopSignals

    if not args.resume and not args.project:
        raise GraphError("name a project file to train, or --resume RUN to continue a run")
    if args.nproc < 1:
        raise GraphError(f"--nproc {args.nproc}: give the number of processes, 1 or more")
    project = None if args.resume else load(args.project)
    if args.nproc > 1 and "RANK" not in os.environ:
        from .launch import launch
        folder = args.resume or args.run_dir or new_run_dir(Path(args.runs), project.name)
        again = ["--resume", str(folder)] if args.resume else [args.project, "--run-dir", str(folder)]
        again += (["--epochs", str(args.epochs)] if args.epochs else []) + (["--quiet"] if args.quiet else [])
        return launch(args.nproc, ["train", *again])
    here = distributed.world()
    should_stop = None
    if here.active:
        distributed.join(here)
        # torchrun hands each process the Ctrl-C; the processes stop together after the same batch.
        should_stop = StopSignals().install().requested
    progress = None if args.quiet or not here.main else ProgressBar()
    try:
        if args.resume:
            folder = args.resume
            result = resume(folder, on_progress=progress, should_stop=should_stop)
        else:
            training = project.sections.get("training")
            if args.epochs and (training is None or isinstance(training, dict)):
                project.sections["training"] = {**(training or {}), "epochs": args.epochs}
            folder = here.on_main(lambda: args.run_dir or new_run_dir(Path(args.runs), project.name))
            if here.main:
                print(f"run: {folder}", file=sys.stderr)
            try:
                result = train(project, folder, base_dir=Path(args.project).parent, on_progress=progress,
                               should_stop=should_stop)
            except GraphError as exc:
                raise locate(exc, args.project) from None
    except Stopped:
        if here.main:
            print(f"stopped; continue with --resume {folder}", file=sys.stderr)
        return EXIT_CODE
    finally:
        distributed.leave()
    if here.main:
        print(json.dumps(result, indent=2))
        print(f"run: {folder}\nweights: {weights_note(Path(folder))}", file=sys.stderr)
        if result.get("stopped_by") == "max_seconds":
            print(f"stopped by training.max_seconds; continue with --resume {folder}", file=sys.stderr)
        elif result.get("stopped_by") == "early_stopping":
            print("ended early: the validation error stopped improving (training.early_stopping)", file=sys.stderr)
    return 0


def _integers(text: str | None, option: str) -> tuple[int, ...] | None:
    if text is None:
        return None
    try:
        return tuple(int(v) for v in text.split(","))
    except ValueError:
        raise GraphError(f"{option} {text}: give whole numbers separated by commas") from None


def _evaluate(args: argparse.Namespace) -> int:
    from runtime.pictures import PictureOptions
    from runtime.runs import evaluate_run
    if not 0 <= args.false_positive_rate < 1:
        raise GraphError(f"--false-positive-rate {args.false_positive_rate}: give a share from 0 up to 1")
    pictures = PictureOptions(count=args.pictures, rows=_integers(args.rows, "--rows"), node=args.gradcam_node,
                              normal=_integers(args.normal, "--normal"), false_positive_rate=args.false_positive_rate)
    result = evaluate_run(args.folder, data=args.data, output=args.output, pictures=pictures, last=args.last,
                          force=args.force)
    print(json.dumps(result, indent=2))
    print(f"weights: {result['weights']}\nevaluation: {result['folder']}", file=sys.stderr)
    return 0


def _predict(args: argparse.Namespace) -> int:
    from runtime.prediction import predict
    result = predict(args.source, args.input, args.output, gradcam=args.gradcam, gradcam_node=args.gradcam_node,
                     last=args.last)
    print(f"weights: {result.weights}", file=sys.stderr)
    print(f"{result.csv}: {result.rows} row(s) ({result.task})"
          + (f", {result.images} image(s) in {result.csv.stem}_images/" if result.images else ""))
    return 0


def _export(args: argparse.Namespace) -> int:
    from runtime.exporting import export, export_target

    if not Path(args.target).is_dir() and _report(check_file(args.target)):
        return 1
    if args.int8_layers is not None and not args.int8:
        raise GraphError("--int8-layers names the layers --int8 keeps float: add --int8")
    if args.int8 and (args.format != "onnx" or args.fp16):
        raise GraphError("--int8 writes an ONNX file with int8 weights: drop --format pytorch and --fp16")
    if args.int8:
        from runtime.int8 import quantize_run

        keep = tuple(name.strip() for name in (args.int8_layers or "").split(",") if name.strip())
        report = quantize_run(args.target, args.output, keep_float=keep, network=args.network, last=args.last,
                              opset=args.opset, verify=not args.no_verify)
        print(f"weights: {report.weights}", file=sys.stderr)
        print(report.summary())
        return 0
    target = export_target(args.target, args.network, last=args.last)
    print(f"weights: {target.metadata['netcanvas.weights']}", file=sys.stderr)
    output = args.output or f"{target.stem}.{'onnx' if args.format == 'onnx' else 'py'}"
    print(export(target, output, args.format, opset=args.opset, fp16=args.fp16, verify=not args.no_verify))
    return 0


def _search(args: argparse.Namespace) -> int:
    from runtime import search

    from .stopping import EXIT_CODE, StopSignals

    signals = StopSignals().install()
    if args.resume:
        folder = Path(args.resume)
        search.open_study(folder)
    else:
        if not args.project:
            raise GraphError("name a project to search from, or --resume SEARCH to continue a search")
        project = load(args.project)
        folder = Path(args.dir) if args.dir else new_search_dir(project.name)
        try:
            search.create(project, folder, base_dir=Path(args.project).parent, storage=args.storage,
                          study=args.study)
        except GraphError as exc:
            raise locate(exc, args.project) from None
    print(f"search: {folder} (stop with Ctrl-C; continue with --resume {folder})", file=sys.stderr)

    def show(report) -> None:
        print(report.line(), file=sys.stderr)

    limits = {"max_trials": args.max_trials, "max_hours": args.hours}
    workers = []
    if args.workers > 1:
        import multiprocessing
        context = multiprocessing.get_context("spawn")
        workers = [context.Process(target=_search_worker, args=(folder, i, limits)) for i in range(1, args.workers)]
        with signals.starting_children():
            for process in workers:
                process.start()
                signals.children.append(process.pid)
    try:
        mine = search.run(folder, should_stop=signals.requested, on_trial=show, **limits)
    except BaseException:
        signals.stop_children()
        raise
    finally:
        for process in workers:
            process.join()
    print(f"{len(mine)} trial(s) in this process{'; stopped' if signals.requested() else ''}", file=sys.stderr)
    return EXIT_CODE if signals.requested() else 0


def _search_worker(folder: Path, worker: int, limits: dict) -> None:
    """A local worker process of ``netcanvas search --workers N``; stops when its parent says so."""
    from runtime import search

    from .stopping import StopSignals

    signals = StopSignals(worker=True).install()
    search.run(folder, should_stop=signals.requested, worker=worker, **limits)


def new_search_dir(name: str) -> Path:
    """A fresh folder ``searches/<name>-<timestamp>``."""
    from runtime.runs import new_run_dir
    return new_run_dir(Path("searches"), name)


def _qat_sweep(args: argparse.Namespace) -> int:
    from runtime.evaluation import HEADLINE
    from runtime.qat import PICTURE, TABLE, bit_sweep
    from runtime.runs import new_run_dir

    bits = _integers(args.bits, "--bits")
    if any(width < 1 or width > 32 for width in bits):
        raise GraphError(f"--bits {args.bits}: give widths from 1 to 32 bits")
    project = load(args.project)
    output = Path(args.output or new_run_dir(Path("runs"), f"{project.name}-bits"))
    bit_sweep(project, Path(args.project).parent, bits, output=output, kind=args.kind,
              on_run=lambda label, metrics: print(f"{label}: {HEADLINE[metrics['task']]} "
                                                  f"{metrics[HEADLINE[metrics['task']]]:.4f}", file=sys.stderr))
    print(f"{output / TABLE}\n{output / PICTURE}")
    return 0


def _search_results(args: argparse.Namespace) -> int:
    from runtime import search
    from runtime.plots import search_scatter_png

    if args.export is not None:
        path = search.export_trial(args.folder, args.export, args.output or f"trial{args.export}.graph.yaml")
        print(f"{path}: trial {args.export}")
        return 0
    trials = search.reports(args.folder)
    front = search.pareto(trials)
    states = [t.state for t in trials]
    print(f"{len(trials)} trials, {states.count('complete')} complete, {states.count('pruned')} pruned, "
          f"{states.count('duplicate')} duplicates; Pareto front:")
    print(f"{'trial':>5}  {'error':>8}  {'multiply-adds':>14}  {'params':>11}  kind     changes")
    for t in front:
        settings = f"{t.settings_text()}; " if t.settings else ""
        print(f"{t.number:>5}  {t.error:>8.4f}  {t.macs:>14,}  {t.params:>11,}  {t.kind:<7}  {settings}"
              f"{'; '.join(t.changes)}")
    picture = Path(args.folder) / "search.png"
    search_scatter_png(trials, front, picture)
    print(f"scatter plot: {picture}")
    return 0


def _import(args: argparse.Namespace) -> int:
    if Path(args.model).suffix.lower() == ".sdcproj":
        from graphcompiler import save
        from graphcompiler.importers import import_sdcproj
        result = import_sdcproj(args.model, partial=args.partial)
        save(result.project, args.output)
        for line in [*result.notes, *(f"left out: {u}" for u in result.unmapped)]:
            print(f"warning: {line}", file=sys.stderr)
        print(f"{args.output}: imported from {args.model} ({len(result.project.networks)} network(s)"
              f"{f', {len(result.unmapped)} layer(s) left out' if result.unmapped else ''})")
        return 0
    if args.partial:
        raise GraphError("--partial is for Neural Network Console projects (.sdcproj)")
    from graphcompiler.importers import import_onnx_file
    notes: list[str] = []
    result = import_onnx_file(args.model, args.output, notes)
    for line in notes:
        print(f"warning: {line}", file=sys.stderr)
    print(f"{args.output}: imported from {args.model}" + (f"; weights in {result}" if result else ""))
    return 0


def _settings(args: argparse.Namespace) -> int:
    from runtime.settings import markdown
    print(markdown(), end="")
    return 0


LAST_HELP = "a run's last epoch's weights (default: its best validation epoch's)"
GRADCAM_NODE_HELP = ("class activation map (LayerCAM) at this node (default: the last C x H x W layer whose cells "
                     "see at most a quarter of the image)")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for every subcommand."""
    parser = argparse.ArgumentParser(prog="netcanvas", description="Design, train, search and export "
                                     "neural networks drawn as node graphs (.graph.yaml projects).")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    info = commands.add_parser("info", help="print NNC-style statistics: shapes, params, multiply-adds")
    info.add_argument("file", help="a .graph.yaml project")
    info.add_argument("--network", help="only this network (default: all)")
    info.set_defaults(run=_info)
    check = commands.add_parser("validate", help="check project files; exit 1 on any problem")
    check.add_argument("files", nargs="+", metavar="FILE")
    check.add_argument("--data", action="store_true", help="also read the dataset lists as train does: files "
                       "exist, variables fit the Inputs, labels fit the classes (images opened, not decoded)")
    check.set_defaults(run=_validate)
    design = commands.add_parser("design", help="open the node editor (a new project if FILE does not exist)")
    design.add_argument("file", nargs="?", help="a .graph.yaml project")
    design.add_argument("--screenshot", metavar="PNG", help="save a picture of the window (with --frames)")
    design.add_argument("--frames", type=int, help="close after this many frames")
    design.set_defaults(run=_design)
    dataset = commands.add_parser("dataset", help="write an NNC dataset (CSV lists): an example from scikit-learn's "
                                  "bundled digits (nothing is downloaded), or from-folders: your own images")
    kinds = dataset.add_subparsers(dest="name", required=True, metavar="NAME")
    from runtime.example_data import DATASETS
    for name, doc in DATASETS.items():
        example = kinds.add_parser(name, help=doc)
        example.add_argument("-o", "--output", required=True, help="folder for train.csv, validation.csv and the files")
        example.add_argument("--size", type=int, help="image side in pixels (digits are 8x8; 28 suits LeNet)")
        example.add_argument("--count", type=int, help="only this many samples")
        example.add_argument("--seed", type=int, default=0, help="seed of the split and of generated images")
        example.add_argument("--validation", type=float, default=0.2, help="share of samples for validation")
        example.set_defaults(run=_dataset)
    detection = kinds.add_parser("detection", help="object detection: 1-5 digits at random places and sizes per "
                                 "image, a box file per image (label,x,y,width,height), labels.txt")
    detection.add_argument("-o", "--output", required=True, help="folder for train.csv, validation.csv, labels.txt, "
                           "images/ and boxes/")
    detection.add_argument("--count", type=int, default=1000, help="images (default 1000)")
    detection.add_argument("--size", type=int, default=64, help="image side in pixels (default 64)")
    detection.add_argument("--seed", type=int, default=0, help="seed of the images and the split")
    detection.add_argument("--validation", type=float, default=0.2, help="share of images for validation")
    detection.add_argument("--classes", type=int, default=10, choices=range(1, 11), metavar="N",
                           help="digits 0 to N-1 (default 10)")
    detection.add_argument("--nnc", action="store_true", help="also train_nnc.csv and validation_nnc.csv in the "
                           "layout of NNC's synthetic_image_object_detection sample (class and region grids of "
                           "16 px cells, 5 anchors; use --size 112 --classes 4 for the sample)")
    detection.set_defaults(run=_detection_dataset)
    folders = kinds.add_parser("from-folders", help="image classification lists from SRC/<class>/ (split here) or "
                               "SRC/train/<class>/ and SRC/test/<class>/ (taken as they are), with labels.txt")
    folders.add_argument("source", metavar="SRC", help="a folder with one subfolder of images per class (its name "
                         "is the class name; classes are numbered in sorted order), or train/ and test/ so")
    folders.add_argument("-o", "--output", required=True, help="folder for train.csv, validation.csv, labels.txt "
                         "(and images/ with --size or --channels); outside SRC")
    folders.add_argument("--validation", type=float, help="share of each class held out for validation (default "
                         "0.2); not with train/ and test/")
    folders.add_argument("--size", type=int, nargs=2, metavar=("H", "W"), help="write the images resized to H x W "
                         "as PNGs under images/ (default: the lists name the original files)")
    folders.add_argument("--channels", type=int, choices=(1, 3), help="write the images as 1 (gray) or 3 (RGB) "
                         "channel PNGs under images/")
    folders.add_argument("--seed", type=int, default=0, help="seed of the split")
    folders.set_defaults(run=_from_folders)
    trainer = commands.add_parser("train", help="train a project on its dataset section (NNC's Train)")
    trainer.add_argument("project", nargs="?", help="a .graph.yaml project with dataset and training sections")
    trainer.add_argument("--resume", metavar="RUN", help="continue a stopped or killed run from its last checkpoint")
    trainer.add_argument("--runs", default="runs", help="folder that gets one subfolder per run (default: runs)")
    trainer.add_argument("--run-dir", help="exact folder for this run")
    trainer.add_argument("--epochs", type=int, help="override training.epochs")
    trainer.add_argument("--quiet", action="store_true", help="no progress bar")
    trainer.add_argument("--nproc", type=int, default=1, help="train on N processes of this machine with "
                         "DistributedDataParallel (gloo on CPUs, NCCL on GPUs); several machines: see README")
    trainer.set_defaults(run=_train)
    evaluate = commands.add_parser("evaluate", help="score a run (NNC's Evaluate): confusion matrix, report, "
                                   "output result table")
    evaluate.add_argument("folder", metavar="RUN", help="a run folder made by netcanvas train, or a project whose "
                          "network names its weights file (an imported model)")
    evaluate.add_argument("--data", help="another NNC dataset CSV (default: the validation list)")
    evaluate.add_argument("--output", help="folder for the files (default: evaluation/ in the run; one that "
                          "holds an earlier evaluation is kept and evaluation-<time>/ written beside it)")
    evaluate.add_argument("--force", action="store_true", help="overwrite the folder's earlier evaluation")
    evaluate.add_argument("--last", action="store_true", help=LAST_HELP)
    evaluate.add_argument("--pictures", type=int, default=16, metavar="N", help="rows pictured: a classifier's "
                          "first N mistakes with Grad-CAM, N segmentation masks over their inputs, the N worst "
                          "reconstructions (default 16; 0: none)")
    evaluate.add_argument("--rows", help="picture these data rows instead (0 is the first), such as 3,17,20")
    evaluate.add_argument("--gradcam-node", help=GRADCAM_NODE_HELP)
    evaluate.add_argument("--normal", help="autoencoder: label values of normal samples, such as 0 (default: a "
                          "0/1 label column, 1 anomalous); gives ROC-AUC and the anomaly threshold")
    evaluate.add_argument("--false-positive-rate", type=float, default=0.05, help="share of normal samples the "
                          "anomaly threshold may flag (default 0.05)")
    evaluate.set_defaults(run=_evaluate)
    predictor = commands.add_parser("predict", help="run a trained network on new data: a CSV list (labels "
                                    "optional), an image or a folder of images; writes NNC's output result")
    predictor.add_argument("source", metavar="RUN", help="a run folder, or a project whose network names its weights")
    predictor.add_argument("input", metavar="INPUT", help="an NNC dataset CSV, an image, or a folder of images "
                           "(subfolders too, in path order)")
    predictor.add_argument("-o", "--output", help="the CSV to write (default: predictions/<input>.csv in the run); "
                           "output images go to <name>_images/ beside it")
    predictor.add_argument("--gradcam", action="store_true", help="a classifier's Grad-CAM picture for every row")
    predictor.add_argument("--gradcam-node", help=GRADCAM_NODE_HELP)
    predictor.add_argument("--last", action="store_true", help=LAST_HELP)
    predictor.set_defaults(run=_predict)
    export = commands.add_parser("export", help="export a project's or a run's network to ONNX or PyTorch source")
    export.add_argument("target", metavar="PROJECT_OR_RUN", help="a .graph.yaml project, or a run folder (its "
                        "trained weights are exported)")
    export.add_argument("--format", choices=("onnx", "pytorch"), default="onnx")
    export.add_argument("-o", "--output", help="file to write (default: <project>.onnx or .py here)")
    export.add_argument("--network", help="which network (default: main, or the first)")
    export.add_argument("--last", action="store_true", help=LAST_HELP)
    export.add_argument("--opset", type=int, default=17, help="ONNX opset (default 17; 14 or newer)")
    export.add_argument("--fp16", action="store_true", help="store ONNX weights as float16 (half the file)")
    export.add_argument("--no-verify", action="store_true", help="skip onnx.checker and the onnxruntime "
                        "comparison (for huge networks)")
    export.add_argument("--int8", action="store_true", help="a trained network as int8 ONNX (onnxruntime static "
                        "quantization, calibrated on training rows); reports validation accuracy beside the float file's")
    export.add_argument("--int8-layers", metavar="KEEP", help="with --int8: node ids to keep in float, comma-separated "
                        "(a block's inner node as block/node)")
    export.set_defaults(run=_export)
    searcher = commands.add_parser("search", help="architecture search from a project until stopped (Ctrl-C)")
    searcher.add_argument("project", nargs="?", help="the base project (its search section sets the limits)")
    searcher.add_argument("--resume", metavar="SEARCH", help="continue a search folder, numbering on")
    searcher.add_argument("--dir", help="folder for the search (default: searches/<project>-<timestamp>)")
    searcher.add_argument("--storage", help="Optuna storage URL (default: SQLite in the folder); "
                          "postgresql://... for workers on many machines")
    searcher.add_argument("--study", help="join (or start) the study of this name in --storage: run the same "
                          "command on every machine to share one search")
    searcher.add_argument("--workers", type=int, default=1, help="worker processes on this machine")
    searcher.add_argument("--max-trials", type=int, help="override search.max_trials")
    searcher.add_argument("--hours", type=float, help="override search.max_hours")
    searcher.set_defaults(run=_search)
    sweep = commands.add_parser("qat-sweep", help="train a project in float and quantization-aware at each bit "
                                "width; write accuracy against bits as bits.csv and bits.png")
    sweep.add_argument("project", help="a .graph.yaml project with dataset and training sections")
    sweep.add_argument("--bits", default="16,8,6,4", help="the widths, such as 16,8,6,4 (the default)")
    sweep.add_argument("--kind", choices=("fixed_point", "pow2", "min_max"), default="fixed_point")
    sweep.add_argument("-o", "--output", help="folder for the runs and the table (default runs/<name>-bits-<time>)")
    sweep.set_defaults(run=_qat_sweep)
    results = commands.add_parser("search-results", help="print a search's Pareto front and plot all trials")
    results.add_argument("folder", metavar="SEARCH", help="a search folder")
    results.add_argument("--export", type=int, metavar="K", help="write trial K as a project file")
    results.add_argument("-o", "--output", help="with --export: the project file (default trialK.graph.yaml)")
    results.set_defaults(run=_search_results)
    importer = commands.add_parser("import", help="turn an ONNX model (its weights beside it) or a Neural Network "
                                   "Console project into a project")
    importer.add_argument("model", help="an .onnx file or an NNC .sdcproj")
    importer.add_argument("-o", "--output", required=True, help="the .graph.yaml project to write")
    importer.add_argument("--partial", action="store_true", help=".sdcproj: import what maps and list the rest, "
                          "instead of failing")
    importer.set_defaults(run=_import)
    settings = commands.add_parser("settings", help="print the reference of the dataset and training sections")
    settings.set_defaults(run=_settings)
    layers = commands.add_parser("layers", help="list the layer types of the registry")
    layers.add_argument("--markdown", action="store_true", help="print the full reference as Markdown")
    layers.set_defaults(run=_layers)
    return parser


class _Warnings(logging.Handler):
    """The library's warnings as ``warning:`` lines on the standard error of the moment (tests swap it)."""

    def emit(self, record: logging.LogRecord) -> None:
        print(f"warning: {record.getMessage()}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the process exit code."""
    library = logging.getLogger("netcanvas")
    if not any(isinstance(handler, _Warnings) for handler in library.handlers):
        library.addHandler(_Warnings(logging.WARNING))
        library.propagate = False
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except GraphError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except ValueError as exc:
        # Argument values the library refuses (an unknown example dataset, a split it cannot make).
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        # The last net of every command: a folder it may not write, a full disk, a file gone mid-run.
        print(f"error: {_os_problem(exc)}", file=sys.stderr)
        return 1
    except MemoryError:
        print("error: out of memory: lower training.batch_size or dataset.image_size, set dataset.cache: false, "
              "or close other programs", file=sys.stderr)
        return 1


_OS_ADVICE = {
    errno.EACCES: "not allowed here: pick a folder you may write (--runs, --output, -o) or change its permissions",
    errno.EPERM: "not allowed here: pick a folder you may write (--runs, --output, -o) or change its permissions",
    errno.EROFS: "the file system is read-only: pick a folder on another disk (--runs, --output, -o)",
    errno.ENOSPC: "the disk is full: free some space, or write to another disk (--runs, --output, -o)",
    errno.ENOTDIR: "part of the path is a file, not a folder: pick another path",
    errno.EISDIR: "it is a folder, not a file: name a file",
}


def _os_problem(exc: OSError) -> str:
    """An operating-system error in one line: the path, what went wrong, and what to do."""
    paths = ", ".join(str(name) for name in (exc.filename, exc.filename2) if name is not None)
    reason = exc.strerror or str(exc) or exc.__class__.__name__
    advice = _OS_ADVICE.get(exc.errno, "check the path and try again")
    return f"{paths + ': ' if paths else ''}{reason}; {advice}"
