"""FuseGPT (docs/methods/fusegpt_mi.md) without its post-training: FuseGPT-MI and FuseGPT-MI+F.

* calibration windows: :func:`layerpuzzle.data.calibration.random_windows` (sampling ``random_windows``,
  GPTQ ``get_wikitext2``);
* :mod:`.macro_influence` — Macro Influence of every layer of the current stack;
* :mod:`.fuse_linear` — :class:`FuseLinear`, :func:`fuse_group`, :func:`fold_fused`
  (reusable by the post-training work);
* :mod:`.fusion_loop` — the iterative remove(-and-fuse) loop.
"""

from ...data.calibration import random_windows  # FuseGPT's calibration windows (sampling random_windows)
from .fuse_linear import COEF_INITS, CoefInit, FusedGroup, FuseLinear, fold_fused, fuse_group, group_bounds
from .fusion_loop import FuseGPTResult, fusegpt_prune
from .macro_influence import MacroInfluence, macro_influence

__all__ = ["random_windows", "COEF_INITS", "CoefInit", "FusedGroup", "FuseLinear", "fold_fused", "fuse_group",
           "group_bounds", "FuseGPTResult", "fusegpt_prune", "MacroInfluence", "macro_influence"]
