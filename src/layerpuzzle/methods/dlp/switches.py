"""Switches of the direct layer-removal baselines (docs/methods/mag_plus.md, taylor_plus.md, shortgpt.md, sleb.md)."""

from ..switches import Switch

SWITCHES = {
    "mag_plus": (
        Switch("reduction", ("fp32", "released"), "fp32", {
            "fp32": "sum |W| is reduced in fp32 (shortened-llm).",
            "released": "row sums and total of |W| in the model dtype, as the CoMe code's methods/magnitude.py "
                        "(identical on fp32 models)."},
            released="released"),
    ),
    "taylor_plus": (
        Switch("accumulate", ("signed_sum", "abs_per_batch", "released_cumulative"), "signed_sum", {
            "signed_sum": "score = |sum over batches of W*grad| (the paper's formula, L the calibration loss).",
            "abs_per_batch": "score = sum over batches of |W*grad| (equal to signed_sum with one batch).",
            "released_cumulative": "one window per backward with .grad never zeroed, adding sum |W*G_k| after every "
                                   "window, in the model dtype (the CoMe code's methods/taylor.py)."},
            released="released_cumulative"),
    ),
    "shortgpt": (
        Switch("last_layer_output", ("raw", "final_norm"), "raw", {
            "raw": "the last layer's output for its BI is taken before the final RMSNorm (the paper's definition).",
            "final_norm": "the last layer's output is taken after the final RMSNorm (the hf-models branch of the "
                          "reproduction code)."},
            released="final_norm"),
        Switch("bi_estimator", ("cosine_mean", "released"), "cosine_mean", {
            "cosine_mean": "BI = 1 - mean cos (the paper's Eq. 1).",
            "released": "each token's cosine clamped to [0, 1] (NaN read as 0.5) before 1 - cos, summed and divided "
                        "by L (the CoMe code's methods/shortgpt.py)."},
            released="released"),
    ),
    "sleb": (
        Switch("nll", ("fp32", "released"), "fp32", {
            "fp32": "a candidate's loss is sum over windows of mean CE x S on fp32 logits.",
            "released": "a candidate's loss is the CoMe code's get_loss: CE per batch in the model dtype x S x B "
                        "(bf16 ties go to the lower index)."},
            released="released"),
    ),
}
