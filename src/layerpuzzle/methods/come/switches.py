"""CoMe's and CoMe-P's switches (docs/methods/come.md, docs/methods/come_p.md): paper reading vs released code."""

from ..switches import Switch

_SHARED = (
    Switch("recompute", ("incremental", "full"), "incremental", {
        "incremental": "only the hidden states from the merged window on are recomputed each iteration (same merges "
                       "and weights as full, fewer layer forwards).",
        "full": "the whole model is re-scored every iteration, as the released code does (same results)."},
        released="full"),
    Switch("sbi_estimator", ("cosine_mean", "released", "angular_all"), "cosine_mean", {
        "cosine_mean": "SBI = 1 - mean over all tokens of cos(h[l], h[l+m'+1]) (the paper).",
        "released": "SBI = angular distance arccos(clamp(cos, 0, 1))/pi of the last token of each window (released "
                    "CoMe).",
        "angular_all": "SBI = angular distance averaged over all tokens (released CoMe-P)."},
        released="released"),
    Switch("remerge", ("allowed", "forbidden"), "allowed", {
        "allowed": "an already merged layer may be merged again (the paper, App. B.2).",
        "forbidden": "windows touching a merged layer are never chosen (released --wo-repeat)."},
        released="forbidden"),
    Switch("last_layer_output", ("raw", "final_norm"), "raw", {
        "raw": "the last layer's output is taken before the final RMSNorm (the paper's definition).",
        "final_norm": "the last layer's output is taken after the final RMSNorm (HF output_hidden_states, the "
                      "released code)."},
        released="final_norm"),
    Switch("query_mapping", ("grouped", "tiled"), "grouped", {
        "grouped": "query heads kept with KV group g are g*n_rep .. g*n_rep+n_rep-1 (HF repeat_kv).",
        "tiled": "query heads kept with KV group g are c*n_kv + g (the released code's mask.repeat, a bug on GQA)."},
        released="tiled"),
    Switch("qk_norm", ("mean", "ratio_weighted"), "mean", {
        "mean": "Qwen3 q/k norms of a merged layer are the mean of the merged layers' (the paper's norm rule).",
        "ratio_weighted": "Qwen3 q/k norms of a merged layer are the ratio-weighted sum (released merge_heads_qwen3)."},
        released="ratio_weighted"),
)

SWITCHES = {
    "come": _SHARED + (
        Switch("rho_rule", ("paper", "released"), "paper", {
            "paper": "a window is merged when max r_t reaches rho (the paper).",
            "released": "rho is replaced by rho^(1/(n_leaves-1)) for a window covering n_leaves original layers "
                        "(the released code; differs only when a merged layer is merged again)."},
            released="released"),
        Switch("sbi_span", ("merged", "released"), "merged", {
            "merged": "a window start is scored by the window that is merged, h[l] vs h[l+m'+1].",
            "released": "a window start is scored by the fixed 2-layer pair h[l] vs h[l+2], as the released loop "
                        "does whatever --merge-item is."},
            released="released"),
        Switch("bi_estimator", ("cosine_mean", "released"), "cosine_mean", {
            "cosine_mean": "BI = 1 - mean cos(h[l], h[l+1]) (paper Eq. 1).",
            "released": "BI = sum over tokens of (1 - clamp(cos, 0, 1)) / L (the released code; differs where "
                        "cos < 0)."},
            released="released"),
    ),
    "come_p": _SHARED + (
        Switch("ratio_grid", ("exact", "released"), "exact", {
            "exact": "candidate ratios are exactly i/granularity.",
            "released": "candidate ratios are the released np.arange floats (one head may round differently on "
                        "40-head models)."},
            released="released"),
        Switch("nll", ("fp32", "released"), "fp32", {
            "fp32": "a candidate's loss is sum of mean CE x S on fp32 logits.",
            "released": "a candidate's loss is the released get_loss: CE per batch in the model dtype x S x B "
                        "(bf16 ties go to the smaller ratio)."},
            released="released"),
    ),
}
