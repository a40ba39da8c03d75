"""What changed between two versions of a network, as lines a person reads (a search candidate against its base)."""

from __future__ import annotations

from .graph import Graph


def graph_diff(base: Graph, other: Graph) -> list[str]:
    """One line per change from ``base`` to ``other``: nodes added (+), removed (-) or changed (~), then links."""
    before, after = {n.id: n for n in base.nodes()}, {n.id: n for n in other.nodes()}
    lines = [f"+ {n.id} ({n.type})" for n in other.nodes() if n.id not in before]
    lines += [f"- {n.id} ({n.type})" for n in base.nodes() if n.id not in after]
    for node_id, old in before.items():
        new = after.get(node_id)
        if new is None:
            continue
        if new.type != old.type:
            lines.append(f"~ {node_id}: {old.type} -> {new.type}")
        for name in [*old.params, *(k for k in new.params if k not in old.params)]:
            if old.params.get(name) != new.params.get(name):
                lines.append(f"~ {node_id}.{name}: {old.params.get(name)} -> {new.params.get(name)}")
    old_links = {(l.src, l.src_port, l.dst, l.dst_port) for l in base.links()}
    new_links = {(l.src, l.src_port, l.dst, l.dst_port) for l in other.links()}
    lines += [f"+ link {s}.{sp} -> {d}.{dp}" for s, sp, d, dp in sorted(new_links - old_links)]
    lines += [f"- link {s}.{sp} -> {d}.{dp}" for s, sp, d, dp in sorted(old_links - new_links)]
    return lines
