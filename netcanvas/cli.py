"""The ``netcanvas`` command: one subcommand per job, each a thin call into the public API."""

from __future__ import annotations

import argparse
import sys

from graphcompiler import GraphError, check_file, load
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
    return _report(check_file(args.file))


def _report(problems: list[GraphError]) -> int:
    for problem in problems:
        print(f"error: {problem}", file=sys.stderr)
    return 1 if problems else 0


def _validate(args: argparse.Namespace) -> int:
    status = 0
    for path in args.files:
        if _report(check_file(path)):
            status = 1
        else:
            print(f"{path}: ok")
    return status


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
    check.set_defaults(run=_validate)
    design = commands.add_parser("design", help="open the node editor (a new project if FILE does not exist)")
    design.add_argument("file", nargs="?", help="a .graph.yaml project")
    design.add_argument("--screenshot", metavar="PNG", help="save a picture of the window (with --frames)")
    design.add_argument("--frames", type=int, help="close after this many frames")
    design.set_defaults(run=_design)
    layers = commands.add_parser("layers", help="list the layer types of the registry")
    layers.add_argument("--markdown", action="store_true", help="print the full reference as Markdown")
    layers.set_defaults(run=_layers)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the process exit code."""
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except GraphError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
