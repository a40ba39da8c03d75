"""Shape inference and validation time on generated graphs of 100 to 2000 nodes.

Each graph starts from one Input of 16x32x32 and chains blocks of Convolution (3x3, pad 1, a few
output channels) -> ReLU -> BatchNormalization, with an Add2 skip connection (to an earlier block
output of the same shape) every few blocks and now and then a Concatenate with an earlier block
output. The generator is seeded, so every run times the same graphs; each graph is checked to
be sound (validate() finds nothing) before it is timed.

For each size the script times ``graphcompiler.infer_shapes(graph)`` and
``graphcompiler.validate(project)`` separately, the median of many calls each. ``validate``
runs one whole inference and checks its result, so it is what one edit costs: "inference +
validation", reported per call and per node. Goals: 500 nodes under 5 ms, and linear growth (time per node at 2000
nodes about that at 100; the script prints the ratio).

    python bench/bench_shape_inference.py [--sizes 100 250 ...] [--budget SECONDS] [--profile N]

``--profile N`` also runs cProfile over inference + validation of the N-node graph and prints
where the time goes, then times the pieces of one inference on their own (no profiler).
"""

from __future__ import annotations

import argparse
import cProfile
import gc as garbage
import io
import platform
import pstats
import random
import statistics
import sys
import time

import graphcompiler as gc
from machine_load import OtherLoad

SIZES = (100, 250, 500, 1000, 2000)
GOAL_MS_AT_500 = 5.0
LINEAR_TOLERANCE = 1.3
"""Per-node time at the largest size may be at most this many times that at the smallest."""




def make_graph(n_nodes: int, seed: int = 0) -> gc.Graph:
    """A sound random graph of exactly ``n_nodes`` nodes (see the module docstring)."""
    rng = random.Random(seed)
    graph = gc.Graph()
    graph.add_node("x", "Input", {"shape": [16, 32, 32]})
    channels = {"x": 16}              # node id -> channels of its output (all are C x 32 x 32)
    outputs = ["x"]                   # block outputs, oldest first: candidates for skips
    tail = "x"
    counter = 0

    def full() -> bool:
        return len(graph) >= n_nodes

    def add(layer: str, params: dict, sources: list[str], ports: list[str | None]) -> str:
        nonlocal counter, tail
        counter += 1
        node_id = f"{layer.lower()}{counter}"
        graph.add_node(node_id, layer, params, pos=(counter * 180.0, 0.0))
        for src, port in zip(sources, ports):
            graph.connect(src, node_id, dst_port=port)
        tail = node_id
        return node_id

    blocks = 0
    while not full():
        # One block: Convolution -> ReLU -> BatchNormalization (cut short at the node budget).
        width = rng.choice((8, 16, 32))
        add("Convolution", {"out_channels": width, "kernel": [3, 3], "pad": [1, 1]}, [tail], [None])
        channels[tail] = width
        for layer in ("ReLU", "BatchNormalization"):
            if full():
                break
            add(layer, {}, [tail], [None])
            channels[tail] = width
        if full():
            break
        blocks += 1
        outputs.append(tail)
        if blocks % rng.choice((2, 3, 4)) == 0:
            # Add2 skip from a recent earlier block output with the same channel count.
            same = [o for o in outputs[-9:-1] if channels[o] == width]
            if same:
                add("Add2", {}, [tail, rng.choice(same)], ["x0", "x1"])
                channels[tail] = width
                outputs.append(tail)
        elif rng.random() < 0.15 and not full():
            # Concatenate along channels with any earlier block output.
            other = rng.choice(outputs[-12:-1])
            joined = channels[tail] + channels[other]
            add("Concatenate", {}, [tail, other], ["x0", "x1"])
            channels[tail] = joined
            outputs.append(tail)
    assert len(graph) == n_nodes, (len(graph), n_nodes)
    return graph


def time_calls(fn, budget_s: float, min_reps: int = 15, max_reps: int = 2000) -> list[float]:
    """Call ``fn`` repeatedly (after 3 warm-up calls) for about ``budget_s``; seconds per call."""
    for _ in range(3):
        fn()
    times = []
    deadline = time.perf_counter() + budget_s
    while len(times) < max_reps and (len(times) < min_reps or time.perf_counter() < deadline):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def profile(graph: gc.Graph, project: gc.Project, calls: int = 20, top: int = 25) -> str:
    """cProfile of ``calls`` rounds of infer_shapes + validate; the hottest functions as text."""
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(calls):
        gc.infer_shapes(graph)
        gc.validate(project)
    profiler.disable()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    total = stats.total_tt
    out.write(f"total {total * 1e3 / calls:.2f} ms per inference + validation (under the profiler)\n")
    stats.sort_stats("tottime").print_stats(top)
    stats.sort_stats("cumulative").print_stats(top)
    return out.getvalue()


def breakdown(graph: gc.Graph, reps: int = 200) -> list[tuple[str, float]]:
    """Median ms of the pieces one infer_shapes() is made of, each timed on its own over every
    node (no profiler, so no per-call distortion): what remains is infer_node's own bookkeeping."""
    from graphcompiler.layers import REGISTRY

    order = graph.topological_order()
    nodes = [graph.node(n) for n in order]
    specs = [REGISTRY[n.type] for n in nodes]
    params = [s.resolve(n.params) for s, n in zip(specs, nodes)]
    shapes = gc.infer_shapes(graph)
    ins = [shapes[n].inputs for n in order]

    def med(fn):
        return statistics.median(time_calls(fn, 0.0, min_reps=reps, max_reps=reps)) * 1e3

    total = med(lambda: gc.infer_shapes(graph))
    parts = [
        ("Graph.topological_order", med(graph.topological_order)),
        ("Graph.inputs_of, every node",
         med(lambda: [graph.inputs_of(n) for n in order])),
        ("LayerSpec.resolve, every node",
         med(lambda: [s.resolve(n.params) for s, n in zip(specs, nodes)])),
        ("shape rules, every node", med(lambda: [s.shape(i, p) for s, p, i in zip(specs, params, ins)])),
        ("Graph.node, every node", med(lambda: [graph.node(n) for n in order])),
    ]
    parts.append(("rest of infer_node (bookkeeping)", total - sum(ms for _, ms in parts)))
    return [("infer_shapes, total", total)] + parts


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES))
    parser.add_argument("--budget", type=float, default=4.0,
                        help="seconds of timing per size and function (default 4)")
    parser.add_argument("--profile", type=int, default=0, metavar="N",
                        help="also cProfile inference + validation of the N-node graph")
    args = parser.parse_args(argv)
    print(f"Python {platform.python_version()}, graphcompiler from {gc.__file__}")

    rows = []
    for n in args.sizes:
        graph = make_graph(n, seed=n)
        project = gc.Project(networks={"main": graph})
        problems = gc.validate(project)
        assert not problems, [p.message for p in problems]
        kinds = {}
        for node in graph.nodes():
            kinds[node.type] = kinds.get(node.type, 0) + 1
        garbage.collect()
        with OtherLoad() as other:
            t_infer = statistics.median(time_calls(lambda: gc.infer_shapes(graph), args.budget))
            t_valid = statistics.median(time_calls(lambda: gc.validate(project), args.budget))
        total = t_valid
        rows.append((n, len(graph.links()), t_infer, t_valid, total, other.describe()))
        mix = ", ".join(f"{v} {k}" for k, v in kinds.items())
        print(f"{n:5d} nodes, {len(graph.links())} links ({mix}): "
              f"infer {t_infer * 1e3:.2f} ms, validate {t_valid * 1e3:.2f} ms", flush=True)

    print()
    print("| nodes | links | infer_shapes alone (ms) | validate = inference + validation (ms) | µs per node "
          "| other load |")
    print("|---:|---:|---:|---:|---:|---:|")
    for n, links, t_infer, t_valid, total, load in rows:
        print(f"| {n} | {links} | {t_infer * 1e3:.2f} | {total * 1e3:.2f} | {total / n * 1e6:.1f} | {load} |")
    print()
    print("other load: CPU time other processes took while a size was timed, as a share of all cores.")
    print()
    by_size = {n: total for n, *_, total, _ in rows}
    if 500 in by_size:
        ms = by_size[500] * 1e3
        print(f"500 nodes: {ms:.2f} ms per inference + validation: "
              f"{'meets' if ms < GOAL_MS_AT_500 else 'MISSES'} the goal < {GOAL_MS_AT_500} ms")
    if len(rows) > 1:
        (n0, *_, t0, _), (n1, *_, t1, _) = rows[0], rows[-1]
        ratio = (t1 / n1) / (t0 / n0)
        print(f"per-node time at {n1} vs {n0} nodes: {ratio:.2f}x "
              f"({'about linear' if ratio <= LINEAR_TOLERANCE else 'NOT linear'}; "
              f"linear means about 1, bound {LINEAR_TOLERANCE})")
    if args.profile:
        graph = make_graph(args.profile, seed=args.profile)
        print()
        print(f"cProfile, {args.profile} nodes:")
        print(profile(graph, gc.Project(networks={"main": graph})))
        print(f"Pieces of one infer_shapes, {args.profile} nodes, timed without the profiler "
              f"(validate is one inference plus its checks):")
        parts = breakdown(graph)
        for name, ms in parts:
            print(f"  {name:36s} {ms:6.2f} ms  {100 * ms / parts[0][1]:5.1f}%")
    return 0


if __name__ == "__main__":
    sys.exit(main())
