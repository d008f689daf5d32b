"""LaCo (Layer Collapse; docs/methods/laco.md): RDSC merge of C adjacent layers, accepted
while the merged model's last hidden state stays cosine-similar to the dense model's.

* :mod:`.rdsc` — the merge arithmetic, as described (paper Eq. 1) and as released;
* :mod:`.similarity` — the acceptance criterion over the fixed calibration sentences;
* :mod:`.collapse` — the search loop (paper Alg. 1 / the notebook's ``while`` loop).
"""

from .collapse import CollapseParams, CollapseResult, layer_collapse
from .rdsc import PROJECTIONS, VARIANTS, rdsc_merge

__all__ = ["CollapseParams", "CollapseResult", "layer_collapse", "PROJECTIONS", "VARIANTS", "rdsc_merge"]
