"""The Pareto front: the variants no other variant beats on size, latency and accuracy at once.

A row *dominates* another when it is at least as good on every metric of the basis and
strictly better on one: smaller file (bytes), lower p50 latency, higher top-1. Rows that
tie on every metric do not dominate each other, so both stay on the front.

Fronts are drawn per group of comparable rows: same model, same input (shape, alpha,
classes) and same host (architecture, CPU model, cores). Formats, runtimes and thread counts of
that model compete in one group: the question is which artifact to ship to that machine.
Failed benchmarks are never on a front.

Missing numbers: a group's front uses the metrics that *every* candidate in the group has.
When one row was never evaluated, the group's front is on size and p50 only; when one
was never benchmarked, on size and top-1; top-1 is also left out when the rows were
scored on different data. The basis used is recorded on each row (`front_basis`) and
each narrowed group gets a note saying what was left out and why. No metric in common:
no front for that group.
"""

from __future__ import annotations

from typing import Sequence

# name shown, ComparedRow attribute, sense
METRICS = (("size", "bytes", "min"), ("p50", "p50", "min"), ("top-1", "top1", "max"))


def dominates(a: Sequence[float], b: Sequence[float], senses: Sequence[str]) -> bool:
    """a is at least as good as b everywhere and strictly better somewhere."""
    strictly = False
    for x, y, sense in zip(a, b, senses):
        if sense == "min":
            x, y = -x, -y
        if x < y:
            return False
        if x > y:
            strictly = True
    return strictly


def front(points: Sequence[Sequence[float]], senses: Sequence[str]) -> list[bool]:
    """For each point, whether no other point dominates it (ties all stay)."""
    return [
        not any(dominates(other, point, senses) for j, other in enumerate(points) if j != i)
        for i, point in enumerate(points)
    ]


def step_points(points: Sequence[tuple[float, float]], senses: tuple[str, str]) -> list[tuple[float, float]]:
    """The 2-D front of (x, y) points sorted by x, for a step line (`drawstyle="steps-post"`)."""
    on = front(points, senses)
    return sorted({p for p, keep in zip(points, on) if keep})


def mark_fronts(rows) -> list[str]:
    """Set `front` and `front_basis` on ComparedRows; return one note per group whose basis narrowed."""
    from edgecnn.reports.join import data_key, input_label

    groups: dict[tuple, list] = {}
    for row in rows:
        row.front, row.front_basis = False, ()
        if not row.failed:
            groups.setdefault((row.group_model, row.facts.input_key, row.host_key), []).append(row)
    notes = []
    for members in groups.values():
        basis, left_out = [], []
        for name, attr, sense in METRICS:
            missing = sum(1 for r in members if getattr(r, attr) is None)
            if missing:
                if missing < len(members):
                    left_out.append(f"{name} missing for {missing} of {len(members)} rows")
                continue
            if attr == "top1" and len({data_key(r.evaluation) for r in members}) > 1:
                left_out.append("top-1 scored on different data")
                continue
            basis.append((name, attr, sense))
        head = members[0]
        where = f"{head.model} {input_label(head.facts)}".strip()
        if head.host:
            where += f" on {head.host.get('board') or head.host.get('cpu')}"
        if not basis:
            notes.append(f"{where}: no front (no metric known for every row)")
            continue
        names = tuple(name for name, _, _ in basis)
        points = [tuple(float(getattr(r, attr)) for _, attr, _ in basis) for r in members]
        for row, keep in zip(members, front(points, [sense for _, _, sense in basis])):
            row.front, row.front_basis = keep, names
        if left_out:
            notes.append(f"{where}: front on {' and '.join(names)} only ({'; '.join(left_out)})")
    return notes
