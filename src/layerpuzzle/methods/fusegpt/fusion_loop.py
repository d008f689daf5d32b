"""The FuseGPT loop without post-training (docs/methods/fusegpt_mif.md; CoMe App. B.1).

``n_remove`` iterations (the code's ``--iterative``), each on the current stack:

1. Macro Influence of every layer (:func:`.macro_influence.macro_influence`);
2. the lowest-MI layer f is removed —
   * FuseGPT-MI (``fuse=False``): simply deleted (CoMe: "fusion and
     post-training code masked");
   * FuseGPT-MI+F (``fuse=True``): fused into the 7 other layers of its group
     (:func:`.fuse_linear.fuse_group`) and deleted; no group-local training
     (CoMe: post-training masked, fusion kept).

Without training the FuseLinears of an iteration are folded into plain Linears
at once (:func:`.fuse_linear.fold_fused`); that equals keeping them, since the
code also uses the effective weight of a fused layer that is fused again.  With
the official zero init the result equals FuseGPT-MI bit for bit.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from ...engine.runner import LayerwiseRunner
from ...models import architecture as arch
from .fuse_linear import CoefInit, fold_fused, fuse_group
from .macro_influence import macro_influence


@dataclass
class FuseGPTResult:
    groups: list[list[int]]                  # original index of every kept layer
    removed_original: list[int]              # original indices in removal order (Table 4 order)
    iterations: list[dict[str, Any]] = field(default_factory=list)
    layer_forwards: int = 0


@torch.no_grad()
def fusegpt_prune(model, input_ids: torch.Tensor, n_remove: int, *, fuse: bool, rank: int = 128,
                  lora_rank: int = 128, init: CoefInit = CoefInit(), seed: int = 0, group_size: int = 8,
                  batch_size: int = 8, device=None, state_device=None, mi_precision: str = "exact") -> FuseGPTResult:
    """Remove ``n_remove`` layers of ``model`` (in place) by iterative Macro Influence, fusing if ``fuse``.

    ``mi_precision``: ``exact`` or ``bfloat16`` (the released scores, :mod:`.macro_influence`).
    """
    n0 = arch.num_layers(model)
    if not 0 <= n_remove < n0:
        raise ValueError(f"cannot remove {n_remove} of {n0} layers")
    runner = LayerwiseRunner(model, input_ids, batch_size=batch_size, device=device)
    h0 = runner.embed()
    original = list(range(n0))
    result = FuseGPTResult(groups=[], removed_original=[])
    for it in range(n_remove):
        mi = macro_influence(runner, h0, state_device=state_device, precision=mi_precision)
        f = mi.least_important()
        record = {"iteration": it, "n_layers": arch.num_layers(model), "removed_current": f,
                  "removed_original": original[f], "macro_influence": [float(x) for x in mi.scores],
                  "layer_forwards": mi.layer_forwards}
        if fuse:
            group = fuse_group(model, f, rank=rank, lora_rank=lora_rank, init=init, seed=seed + it,
                               group_size=group_size)
            record["group_current_after"] = [group.start, group.stop]
            record["fused_into_original"] = [original[t + (t >= f)] for t in range(group.start, group.stop)]
            fold_fused(model)
        else:
            arch.drop_layers(model, [f])
        result.removed_original.append(original.pop(f))
        result.iterations.append(record)
    result.groups = [[o] for o in original]
    result.layer_forwards = runner.layer_forwards
    return result
