"""Fixed merge plans (LaCo Table 16: rule-based merging vs LaCo's iterative search).

A plan is an explicit list of merged layer ranges, written 1-based and inclusive as the LaCo paper
prints them (Table 16: "merge 29-32, 21-24, 13-16" of Llama2-7B's 32 layers), joined by ``+`` so that
it fits in a checkpoint path: ``13-16+21-24+29-32``. Range ``a-b`` collapses layers ``a..b`` into one
layer (RDSC, LaCo Eq. 1, base = layer ``a``), removing ``b − a`` layers. A plan is valid when every
range has ``a < b``, no two ranges share a layer and every layer exists (``1 ≤ a``, ``b ≤ L``).
"""

from __future__ import annotations

import re

PLAN_RE = r"^[1-9][0-9]*-[1-9][0-9]*(\+[1-9][0-9]*-[1-9][0-9]*)*$"
ALLOWED = "1-based inclusive ranges a-b with a < b joined by '+' (e.g. 13-16+21-24+29-32), " \
          "no layer in two ranges, every layer in 1..L"


def parse_plan(text: str, *, key: str = "plan") -> list[tuple[int, int]]:
    """``"13-16+21-24"`` → ``[(13, 16), (21, 24)]`` (1-based, sorted); ValueError naming ``key`` when malformed,
    a range is empty or reversed, or two ranges overlap."""
    if not isinstance(text, str) or not re.match(PLAN_RE, text):
        raise ValueError(f"config key `{key}`: value {text!r} is not a merge plan; allowed: {ALLOWED}")
    ranges = sorted(tuple(int(x) for x in part.split("-")) for part in text.split("+"))
    for a, b in ranges:
        if a >= b:
            raise ValueError(f"config key `{key}`: value {text!r}: range {a}-{b} merges nothing (needs a < b); "
                             f"allowed: {ALLOWED}")
    for (a1, b1), (a2, b2) in zip(ranges, ranges[1:]):
        if a2 <= b1:
            raise ValueError(f"config key `{key}`: value {text!r} overlaps itself ({a1}-{b1} and {a2}-{b2} share "
                             f"layer {a2}); allowed: {ALLOWED}")
    return ranges  # type: ignore[return-value]


def check_plan(text: str, n_layers: int, *, key: str = "plan") -> list[tuple[int, int]]:
    """:func:`parse_plan` plus: every range lies inside a model of ``n_layers`` layers."""
    ranges = parse_plan(text, key=key)
    outside = [f"{a}-{b}" for a, b in ranges if b > n_layers]
    if outside:
        raise ValueError(f"config key `{key}`: value {text!r} leaves the model: {', '.join(outside)} beyond its "
                         f"{n_layers} layers; allowed: {ALLOWED.replace('1..L', f'1..{n_layers}')}")
    return ranges


def plan_groups(text: str, n_layers: int, *, key: str = "plan") -> list[list[int]]:
    """The 0-based groups of original layers each kept layer stands for (single layers for the unmerged)."""
    ranges = check_plan(text, n_layers, key=key)
    merged = {a - 1: list(range(a - 1, b)) for a, b in ranges}
    groups, i = [], 0
    while i < n_layers:
        g = merged.get(i, [i])
        groups.append(g)
        i = g[-1] + 1
    return groups


def shift_plan(text: str, from_layers: int, to_layers: int) -> str:
    """The plan written for a ``from_layers`` model moved to a ``to_layers`` one with the same offsets from the
    top (Table 16's 29-32, 21-24, 13-16 of 32 layers → 27-30, 19-22, 11-14 of 30); ranges that would fall below
    the first layer of a shallower model are left out (8 layers: 5-8 only)."""
    d = to_layers - from_layers
    kept = [(a + d, b + d) for a, b in parse_plan(text) if a + d >= 1]
    if not kept:
        raise ValueError(f"merge plan {text!r} of a {from_layers}-layer model has no range inside {to_layers} layers "
                         f"at the same offsets from the top")
    return "+".join(f"{a}-{b}" for a, b in kept)
