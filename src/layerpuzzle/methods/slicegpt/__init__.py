"""SliceGPT (Ashkboos et al., ICLR 2024) as a LaCo baseline: rotate the residual stream into its principal
components and delete the weakest directions, shrinking the embedding dimension of every layer.

* :mod:`.settings` — validated settings (slicing fraction or parameter target, rounding, orientation);
* :mod:`.budget` — sliced widths and the parameter count formula, solving d' for a parameter target;
* :mod:`.untie`, :mod:`.norms` — untying the LM head, RMSNorm folding, the weightless residual RMSNorm;
* :mod:`.pca` — the signal second moment and its eigenbasis;
* :mod:`.rotate` — rotating/slicing the weights that read or write the stream;
* :mod:`.layer` — the sliced decoder layer with its two shortcut matrices;
* :mod:`.signals` — calibration signals and per-layer forward kwargs;
* :mod:`.slicing` — the sequential per-layer rotate-and-slice;
* :mod:`.method` — end to end with timing and the checked parameter count;
* :mod:`.rebuild`, :mod:`.checkpoint` — the ``uneven_layers.json`` kind ``"sliced"`` (save / rebuild).
"""

from .budget import dense_params, param_sparsity, sliced_params, width_for_slicing, width_for_target
from .checkpoint import save_sliced
from .layer import SlicedDecoderLayer
from .method import SliceResult, resolve_width, slice_model
from .norms import ResidualRMSNorm, fold_rmsnorms
from .rebuild import rebuild_sliced
from .settings import SliceSettings
from .slicing import rotate_and_slice, sliced_record
from .untie import untie_embeddings

__all__ = ["dense_params", "param_sparsity", "sliced_params", "width_for_slicing", "width_for_target",
           "save_sliced", "SlicedDecoderLayer", "SliceResult", "resolve_width", "slice_model", "ResidualRMSNorm",
           "fold_rmsnorms", "rebuild_sliced", "SliceSettings", "rotate_and_slice", "sliced_record",
           "untie_embeddings"]
