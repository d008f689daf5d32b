"""Switches of the post-training methods (docs/methods/come_sp.md, come_mp.md, streamline.md, fusegpt_train.md)."""

from ..methods.fusegpt.switches import MI_PRECISION
from ..methods.switches import Switch

SIGMA_AXIS = Switch("sigma_axis", ("hidden", "batch"), "hidden", {
    "hidden": "sigma in Eq. 6 is a softmax over each token's hidden vector, KL averaged over tokens (our reading).",
    "batch": "sigma is a softmax over the batch dimension, as FuseGPT's released KL (batchmean)."})

SWITCHES = {
    "come_sp": (SIGMA_AXIS,),
    "come_mp": (SIGMA_AXIS,),
    "streamline": (
        Switch("loss", ("mse", "lm"), "mse", {
            "mse": "the standalone layer is trained to the dense h[j+n+1] by MSE (the released MSE variant).",
            "lm": "the layer is trained by the next-token loss inside the pruned model."}),
        Switch("schedule", ("per_step", "released"), "per_step", {
            "per_step": "the cosine schedule (after warmup) decays to min_lr over the run.",
            "released": "the released trajectory: built for steps x accumulation / 2 but stepped per optimiser step "
                        "(LR barely decays); with loss lm stepped every micro-batch."},
            released="released"),
        Switch("attention", ("causal", "released"), "causal", {
            "causal": "the standalone layer attends causally, as it runs in the model.",
            "released": "the standalone layer runs without an attention mask (every token attends to every token), "
                        "as the released code."},
            released="released"),
        Switch("keep", ("best", "last"), "best", {
            "best": "the state with the lowest validation loss is kept (what the released code intends).",
            "last": "the final state is kept (what the released code keeps: its best state aliases the live "
                    "parameters)."},
            released="last"),
        Switch("teacher", ("stored", "streaming"), "stored", {
            "stored": "the dense states of the training chunks are computed once and kept in memory.",
            "streaming": "the dense states are recomputed for every batch (same numbers, nothing stored)."}),
    ),
    "fusegpt_train": (
        MI_PRECISION,
        Switch("data_sampling", ("rows", "random_windows"), "rows", {
            "rows": "training chunks are n rows shuffled, joined and cut, as for every post-training method.",
            "random_windows": "training chunks are n random windows of the joined text in sampling order "
                              "(the released get_wikitext2)."},
            released="random_windows"),
        Switch("coef_init", ("zeros", "kaiming", "normal"), "zeros", {
            "zeros": "P = 0 (the official init: fusion starts as an exact no-op).",
            "kaiming": "P kaiming-uniform(a=sqrt 5).",
            "normal": "P ~ N(0, coef_std^2)."}),
        Switch("bias_fusion", ("sum", "released"), "sum", {
            "sum": "projection biases b_t + sum_k c_k * b_f,k (one coefficient per fused layer, b_t frozen).",
            "released": "b_t + c * b_f,last (the last fused layer's bias, b_t trained), as the released FuseLinear."},
            released="released"),
        Switch("batch_order", ("shuffled", "fixed"), "shuffled", {
            "shuffled": "every pass over the chunks is a fresh seeded permutation.",
            "fixed": "batch j is chunks [j*b, (j+1)*b) in the same order every epoch (the released Fuser.update)."},
            released="fixed"),
    ),
}
