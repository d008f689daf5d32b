"""MKA (Manifold-based Knowledge Alignment; docs/methods/mka.md).

* :mod:`.prompts` — the zero-shot MMLU calibration prompts (first ``num_tasks``
  subjects, ``num_samples`` random questions each);
* :mod:`.activations` — the input of every decoder layer, first 512 tokens;
* :mod:`.manifold` — diffusion-kernel manifold embedding (described or the
  released kernel) and rank normalisation;
* :mod:`.npib` — the NPIB layer-similarity matrix;
* :mod:`.fusion` — fusion ratios and the last-two-layers merge loop (described
  weighted merge, or the released no-op = dropping the last layers).
"""

from .fusion import FUSIONS, fusion_ratio, merge_last_layers
from .manifold import KERNELS, diffusion_embedding, layer_embedding, rank_normalise
from .npib import knn_entropy, npib_matrix

__all__ = ["FUSIONS", "fusion_ratio", "merge_last_layers", "KERNELS", "diffusion_embedding", "layer_embedding",
           "rank_normalise", "knn_entropy", "npib_matrix"]
