"""Post-training of pruned / merged models (docs/methods/come_sp.md, docs/methods/come_mp.md, docs/methods/fusegpt_train.md, docs/methods/streamline.md, docs/tables.md).

- :mod:`.t_layer` — T_layer = #Iterations × #Layers × #Epochs × #Steps × BatchSize × TokenLength (Table 7).
- :mod:`.losses` — hidden-state KL (CoMe Eq. 6, σ over the hidden dim), FuseGPT's dim-0 KL, MSE, LM loss.
- :mod:`.data` — training chunks (calibration-format) and the resumable batch order.
- :mod:`.teacher_activations` — the dense model's layer outputs, stored once or streamed.
- :mod:`.trainer` — the resumable optimisation loop (atomic checkpoints, RNG states, kill-safe).
- :mod:`.hierarchical`, :mod:`.come_sp`, :mod:`.come_mp` — CoMe's hierarchical distillation (Alg. 3, 4).
- :mod:`.lm_posttrain` — full-parameter causal-LM post-training of any checkpoint (LaCo App. C).
- :mod:`.streamline` — LLM-Streamline (window replaced by one trained layer).
- :mod:`.fusegpt_train` — FuseGPT with group-local training (needs :mod:`layerpuzzle.methods.fusegpt`).
- the workflow jobs live in :mod:`layerpuzzle.posttrain_jobs`, the post-training tables in :mod:`layerpuzzle.tables.posttrain`.
"""

from .come_mp import MPSettings, distill_mp, fit_lrs
from .come_sp import SPSettings, distill_sp
from .hierarchical import DistillResult, distillation_pairs
from .lm_posttrain import LMPosttrainSettings, lm_posttrain
from .losses import batch_dim_kl, hidden_kl, hidden_mse, lm_loss
from .streamline import StreamlineSettings, streamline, window_sbi
from .t_layer import PAPER_TABLE7, TrainingBudget, t_layer
from .teacher_activations import StoredTeacher, StreamingTeacher, teacher_bytes, teacher_states
from .trainer import Phase, ResumeStore, StopHook, TrainingInterrupted, run_phase

__all__ = [
    "MPSettings", "distill_mp", "fit_lrs", "SPSettings", "distill_sp", "DistillResult", "distillation_pairs",
    "LMPosttrainSettings", "lm_posttrain", "batch_dim_kl", "hidden_kl", "hidden_mse", "lm_loss", "StreamlineSettings", "streamline", "window_sbi",
    "PAPER_TABLE7", "TrainingBudget", "t_layer", "StoredTeacher", "StreamingTeacher", "teacher_bytes",
    "teacher_states", "Phase", "ResumeStore", "StopHook", "TrainingInterrupted", "run_phase",
]
