"""FuseGPT-MI's and FuseGPT-MI+F's switches (docs/methods/fusegpt_mi.md, fusegpt_mif.md)."""

from ..switches import Switch

MI_PRECISION = Switch("mi_precision", ("exact", "bfloat16"), "exact", {
    "exact": "Macro-Influence similarities in fp32 cosines with an fp64 mean.",
    "bfloat16": "Macro-Influence similarities in bf16, as the released full_importance_eval on its bf16 model "
                "(ties go to the lowest index)."},
    released="bfloat16")

SWITCHES = {
    "fusegpt_mi": (MI_PRECISION,),
    "fusegpt_mif": (
        MI_PRECISION,
        Switch("variant", ("released", "described"), "released", {
            "released": "the official init (P = 0, B = 0; coef_init ignored).",
            "described": "P and Q initialised by coef_init."},
            released="released"),
        Switch("coef_init", ("zeros", "kaiming", "normal"), "kaiming", {
            "zeros": "P = 0.",
            "kaiming": "P and Q kaiming-uniform(a=sqrt 5), like nn.Linear.",
            "normal": "P, Q ~ N(0, coef_std^2)."}),
        Switch("lora_init", ("zeros", "kaiming"), "zeros", {
            "zeros": "the LoRA B factor starts at 0 (A kaiming-uniform).",
            "kaiming": "the LoRA B factor starts kaiming-uniform (A kaiming-uniform)."}),
    ),
}
