"""LaCo's switches (docs/methods/laco.md)."""

from ..switches import Switch

SWITCHES = {
    "laco": (
        Switch("variant", ("described", "released"), "described", {
            "described": "layers are merged by RDSC, paper Eq. 1.",
            "released": "the notebook's merge_layers_return_model: the base layer gets layer base+m's projections "
                        "and keeps its norms."},
            released="released"),
        Switch("layer_bounds", ("literal", "one_based"), "literal", {
            "literal": "L and H are used as the notebook's 0-based LOWEST_LAY / HIGHEST_LAY as given.",
            "one_based": "L and H are the paper's 1-based values: LOWEST_LAY = L - 1, HIGHEST_LAY = H - 1."},
            released="one_based"),
        Switch("search_dtype", ("model", "float32"), "model", {
            "model": "merges and similarity forwards run in the model's dtype.",
            "float32": "merges and similarity forwards run in fp32, as the notebook loads the model."},
            released="float32"),
    ),
}
