"""From the workflow config to CoMe / CoMe-P settings (config/methods/come*.schema.yaml).

A variant's settings are resolved in three layers, later ones winning:

1. the method-level keys (``methods.come.p``, ``.rho``, ``.sbi_estimator``, ...),
   whose defaults are the paper's reading;
2. ``methods.come.model_settings.<model>`` (the paper's per-model p and ρ,
   App. B.1), plus its ``note`` for the model card;
3. the keys a variant sets explicitly — only these enter the variant's path
   component (``variant_slug``), so the paper's default run is ``default``; a path
   component is read back by :meth:`layerpuzzle.plan.Plan.parse_slug`.

``calib_rows`` / ``calib_dataset`` of a variant replace ``n`` / ``dataset`` of
the method's calibration set (Tables 12 and 14).
"""

from __future__ import annotations

import math
from typing import Any, Mapping

from .. import registry

# settings only a variant sets (no method-level key): absent = the dataclass default, so the
# settings (and rule parameters) of variants without them are as before
VARIANT_ONLY_SETTINGS = {"come": (), "come_p": ("ratio_grid", "nll")}
SETTING_KEYS = {
    "come": ("layers_per_merge", "sbi_estimator", "bi_estimator", "remerge", "last_layer_output", "query_mapping",
             "qk_norm", "p", "rho", "rho_rule"),
    "come_p": ("sbi_estimator", "remerge", "last_layer_output", "query_mapping", "qk_norm", "granularity"),
}
# settings without a method-level default: absent unless set (so the settings of existing runs stay as they were)
OPTIONAL_SETTING_KEYS = {"come": ("sbi_span",), "come_p": ()}
EXECUTION_KEYS = ("recompute", "cache_every", "batch_size")
DISPLAY_NAMES = {k: registry.display_name(k) for k in ("come", "come_p")}


def resolve_settings(key: str, method_cfg: Mapping[str, Any], model: str, variant: Mapping[str, Any]) -> dict[str, Any]:
    """The full settings of ``variant`` for ``model`` (method defaults < model_settings < variant)."""
    per_model = dict((method_cfg.get("model_settings") or {}).get(model) or {})
    per_model.pop("note", None)
    out = {}
    for name in SETTING_KEYS[key]:
        value = variant.get(name, per_model.get(name, method_cfg[name]))
        if name in ("p", "rho"):
            value = float(value)
        out[name] = value
    for name in OPTIONAL_SETTING_KEYS.get(key, ()):
        value = variant.get(name, per_model.get(name, method_cfg.get(name)))
        if value is not None:
            out[name] = value
    for name in VARIANT_ONLY_SETTINGS[key]:
        if name in variant:
            out[name] = variant[name]
    return out


def resolve_calibration(method_cfg: Mapping[str, Any], variant: Mapping[str, Any]) -> dict[str, Any]:
    """The method's calibration set with the variant's ``calib_rows`` / ``calib_dataset``."""
    spec = dict(method_cfg["calibration"])
    if variant.get("calib_rows") is not None:
        spec["n"] = int(variant["calib_rows"])
    if variant.get("calib_dataset") is not None:
        spec["dataset"] = str(variant["calib_dataset"])
    if variant.get("calib_packing") is not None:
        spec["packing"] = str(variant["calib_packing"])
    return spec


def model_note(method_cfg: Mapping[str, Any], model: str) -> str | None:
    return ((method_cfg.get("model_settings") or {}).get(model) or {}).get("note")


def ablation_variant(key: str, method_cfg: Mapping[str, Any], model: str, name: str, value: Any) -> dict[str, Any]:
    """The explicit variant of one ablation grid point: ``{}`` when it equals the model's default run.

    A Table 14 corpus listed in ``ablations.calib_dataset_rows`` also sets its number of rows (the
    paper's "PG19 (2)": 2 books, inferred), one in ``ablations.calib_dataset_packing`` its packing
    (the released Alpaca / MMLU loaders: one EOS-padded window per example).
    """
    candidate = {name: value}
    ablations = method_cfg.get("ablations") or {}
    rows = ablations.get("calib_dataset_rows") or {}
    packing = ablations.get("calib_dataset_packing") or {}
    if name == "calib_dataset" and value in rows:
        candidate["calib_rows"] = int(rows[value])
    if name == "calib_dataset" and packing.get(value, "joined") != "joined":
        candidate["calib_packing"] = packing[value]
    if name in SETTING_KEYS[key]:
        same = resolve_settings(key, method_cfg, model, candidate) == resolve_settings(key, method_cfg, model, {})
    else:
        same = resolve_calibration(method_cfg, candidate) == resolve_calibration(method_cfg, {})
    return {} if same else candidate


def is_inf(value: Any) -> bool:
    return isinstance(value, float) and math.isinf(value)
