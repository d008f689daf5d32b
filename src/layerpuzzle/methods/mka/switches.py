"""MKA's switches (docs/methods/mka.md)."""

from ..switches import Switch

SWITCHES = {
    "mka": (
        Switch("fusion", ("described", "released"), "described", {
            "described": "the 7 projections of the last two layers are merged with the lambda weights.",
            "released": "the released code's no-op: the dense model minus its last n layers."},
            released="released"),
        Switch("kernel", ("described", "released"), "described", {
            "described": "the NPIB kernel is computed between whole samples.",
            "released": "the released code's chunk bug: the tokens of the first sample of each chunk."},
            released="released"),
    ),
}
