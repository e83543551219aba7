"""The choice: among the candidates within budget on validation, the fastest (`latency`) or the
smallest (`size`); nothing within budget: the candidate with the smallest validation drop, with
the reason. Test figures never enter the choice."""

from __future__ import annotations

import math

OPTIMIZE = ("latency", "size")


def choose(candidates, *, max_drop: float, optimize: str) -> tuple[object | None, dict]:
    """(the chosen candidate or None, the record of the rule and why)."""
    done = [c for c in candidates if c.error is None and c.val_drop is not None]
    if not done:
        return None, {"rule": None, "within_budget": False, "why": "no candidate could be measured"}
    within = [c for c in done if c.within_budget]
    if within:
        if optimize == "size":

            def key(c):
                return c.bytes, c.latency_ms if c.latency_ms is not None else math.inf, c.val_drop

            rule = (
                f"the smallest file among the {len(within)} candidate(s) within --max-drop {max_drop:g} "
                "on validation (ties: faster, then smaller drop)"
            )
        else:

            def key(c):
                return c.latency_ms if c.latency_ms is not None else math.inf, c.bytes, c.val_drop

            rule = (
                f"the fastest (harness p50) among the {len(within)} candidate(s) within --max-drop "
                f"{max_drop:g} on validation (ties: smaller, then smaller drop)"
            )
        chosen = min(within, key=key)
        return chosen, {
            "rule": rule,
            "within_budget": True,
            "optimize": optimize,
            "why": f"{chosen.id}: {-chosen.val_drop:+.2f} top-1 points against float on validation, "
            f"within the budget of -{max_drop:g}",
        }
    best = min(done, key=lambda c: (c.val_drop, c.latency_ms if c.latency_ms is not None else math.inf))
    steps = sorted({c.step for c in done})
    return best, {
        "rule": "nothing within budget: the candidate with the smallest validation drop (ties: faster)",
        "within_budget": False,
        "optimize": optimize,
        "why": (
            f"no candidate of steps {', '.join(map(str, steps))} is within --max-drop {max_drop:g} "
            f"on validation; the best, {best.id}, drops {best.val_drop:.2f} points"
        ),
    }
