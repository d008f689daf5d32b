"""SliceGPT's switches (docs/methods/slicegpt.md); the values are those of :mod:`.settings`."""

from ..switches import Switch
from .settings import ORIENTATIONS, TARGET_RULES

SWITCHES = {
    "slicegpt": (
        Switch("final_orientation", ORIENTATIONS, "random", {
            "pca": "each kept block stays in the principal-component basis (eigenvalues descending).",
            "random": "each kept block is turned by a seeded random orthogonal matrix (the function is unchanged; "
                      "run_slicegpt.py's --final-orientation default)."},
            released="random"),
        Switch("target_rule", TARGET_RULES, "at_most", {
            "at_most": "the width whose parameter sparsity is the largest one at or below the target (LaCo's "
                       "baselines sit 'equal or slightly smaller' than LaCo).",
            "at_least": "the width whose parameter sparsity is the smallest one at or above the target.",
            "nearest": "the width whose parameter sparsity is nearest the target (ties: the wider)."}),
    ),
}
