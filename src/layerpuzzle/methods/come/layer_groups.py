"""Which original layers every current layer stands for: the layer map P (docs/methods/come.md).

A *group* is the sorted list of original layer indices a current layer was
merged from (``[k]`` for an untouched layer).  Merging the window
``start..stop`` of the current model joins those groups into one:

    [[0], [1], [2], [3]]  --merge 1..2-->  [[0], [1, 2], [3]]

``n_leaves`` of a window is the number of original layers it covers (the
released code's ``count_elements``; it sets the ρ^(1/(n_leaves-1)) threshold).

For hierarchical distillation only *merged* groups enter P: student layer
``b`` is matched with teacher layer ``a = max(group_b)``, the last original
layer of its group (Alg. 1 line 11; docs/methods/come.md).
"""

from __future__ import annotations

from typing import Sequence

Groups = list[list[int]]


def initial_groups(n_layers: int) -> Groups:
    """``[[0], [1], ..., [L-1]]``: every layer stands for itself."""
    return [[i] for i in range(int(n_layers))]


def _check_window(groups: Sequence[Sequence[int]], start: int, stop: int) -> None:
    if not 0 <= start < stop < len(groups):
        raise ValueError(f"window {start}..{stop} is not a window of >= 2 layers among {len(groups)}")


def merge_groups(groups: Sequence[Sequence[int]], start: int, stop: int) -> Groups:
    """The groups after merging current layers ``start..stop`` (inclusive) into one."""
    _check_window(groups, start, stop)
    joined = sorted(int(x) for g in groups[start:stop + 1] for x in g)
    return [list(g) for g in groups[:start]] + [joined] + [list(g) for g in groups[stop + 1:]]


def n_leaves(groups: Sequence[Sequence[int]], start: int, stop: int) -> int:
    """Original layers covered by the window ``start..stop``."""
    _check_window(groups, start, stop)
    return sum(len(g) for g in groups[start:stop + 1])


def is_merged(group: Sequence[int]) -> bool:
    return len(group) > 1


def touches_merged(groups: Sequence[Sequence[int]], start: int, stop: int) -> bool:
    """True when a layer of the window ``start..stop`` is already a merge (``--wo-repeat`` rule)."""
    return any(is_merged(g) for g in groups[start:stop + 1])


def distillation_pairs(groups: Sequence[Sequence[int]]) -> list[dict[str, int]]:
    """P: ``[{student: b, teacher: a}]`` for every merged student layer b, a = max original leaf, by b."""
    return [{"student": b, "teacher": max(g)} for b, g in enumerate(groups) if is_merged(g)]


def check_partition(groups: Sequence[Sequence[int]], n_original: int) -> None:
    """Raise unless the groups cover every original layer exactly once, in increasing order."""
    flat = [x for g in groups for x in g]
    if flat != list(range(n_original)):
        raise ValueError(f"layer groups {groups} are not an ordered partition of range({n_original})")
