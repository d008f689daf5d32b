"""Quantization / sparsification schemes: readable slugs and the llm-compressor recipes they stand for.

A scheme is named by a slug that is also its path component (``results/{model}/pruned/oneshot/{scheme}/{source}``),
so a slug has exactly one spelling: :func:`parse_scheme` rejects any other spelling of the same scheme
and says which one to write.

=============================  =================================================================================
slug                           recipe (llm-compressor modifiers, ``lm_head`` never touched)
=============================  =================================================================================
``gptq-w4a16-g{G}``            ``GPTQModifier``: int4 symmetric weights in groups of G columns (the ``W4A16``
                               preset with its group size replaced), 16-bit activations, static act-order
``awq-w4a16-g{G}``             ``AWQModifier(duo_scaling="both")`` then ``QuantizationModifier`` with int4
                               asymmetric weights in groups of G (the ``W4A16_ASYM`` preset, group G)
``smoothquant-w8a8-a{α}``      ``SmoothQuantModifier(smoothing_strength=α)`` then ``GPTQModifier`` with the
                               ``W8A8`` preset (int8 per-channel weights, dynamic per-token int8 activations)
``smoothquant-w4a8-g{G}-a{α}`` the same smoothing, then ``GPTQModifier`` with the ``W4A8`` preset at group G
                               (int4 symmetric group weights, dynamic per-token int8 activations)
``sparsegpt-{P}``              ``SparseGPTModifier(sparsity=P/100, mask_structure="0:0")``: unstructured, P % of
                               every decoder Linear's weights set to zero
``sparsegpt-50-2of4``          ``SparseGPTModifier(sparsity=0.5, mask_structure="2:4")``: 2 of every 4 zero
=============================  =================================================================================

G is a power of two that divides the input width of every quantized Linear (checked against the model by
:func:`check_model`: SmolLM2-135M's 576 is not divisible by 128, so it takes ``g64``). α is in (0, 1];
P is a percentage strictly between 0 and 100 (``sparsegpt-43.75`` is allowed).

This module needs llm-compressor only in :func:`build_recipe`.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

KINDS = ("gptq", "awq", "smoothquant", "sparsegpt")
SLUG_FORMS = ("gptq-w4a16-g{G}", "awq-w4a16-g{G}", "smoothquant-w8a8-a{alpha}", "smoothquant-w4a8-g{G}-a{alpha}",
              "sparsegpt-{percent}", "sparsegpt-50-2of4")
IGNORE = ("lm_head",)  # never quantized or pruned (tied to the embeddings in SmolLM2)

_NUM = r"(\d+(?:\.\d+)?)"
_PATTERNS = {
    "gptq": re.compile(r"gptq-w(\d+)a(\d+)-g(\d+)"),
    "awq": re.compile(r"awq-w(\d+)a(\d+)-g(\d+)"),
    "smoothquant": re.compile(rf"smoothquant-w(\d+)a(\d+)(?:-g(\d+))?-a{_NUM}"),
    "sparsegpt": re.compile(rf"sparsegpt-{_NUM}(?:-(\d+)of(\d+))?"),
}
# (weight bits, activation bits) each kind supports
_BITS = {"gptq": {(4, 16)}, "awq": {(4, 16)}, "smoothquant": {(8, 8), (4, 8)}}


def _num(x: float) -> str:
    """Shortest decimal spelling of a slug number (0.8, 50, 43.75)."""
    s = f"{x:.6f}".rstrip("0").rstrip(".")
    return s


@dataclass(frozen=True)
class Scheme:
    """One parsed scheme; ``slug`` is its canonical name."""

    kind: str
    weight_bits: int | None = None
    act_bits: int | None = None
    group_size: int | None = None
    alpha: float | None = None  # SmoothQuant smoothing strength
    sparsity: float | None = None  # fraction of zeroed weights (SparseGPT)
    mask_structure: str = "0:0"  # SparseGPT: "0:0" unstructured, "2:4" semi-structured

    @property
    def slug(self) -> str:
        if self.kind == "sparsegpt":
            mask = "" if self.mask_structure == "0:0" else "-" + self.mask_structure.replace(":", "of")
            return f"sparsegpt-{_num(100 * self.sparsity)}{mask}"
        wa = f"w{self.weight_bits}a{self.act_bits}"
        group = f"-g{self.group_size}" if self.group_size is not None else ""
        alpha = f"-a{_num(self.alpha)}" if self.kind == "smoothquant" else ""
        return f"{self.kind}-{wa}{group}{alpha}"

    @property
    def quantizes(self) -> bool:
        """Whether the scheme quantizes weights (else it only zeroes them)."""
        return self.kind != "sparsegpt"

    @property
    def needs_awq_cpu_workaround(self) -> bool:
        return self.kind == "awq"

    def params(self) -> dict[str, Any]:
        """The scheme's settings as recorded in ``quantization.json``."""
        keys = ("weight_bits", "act_bits", "group_size", "alpha", "sparsity", "mask_structure")
        out = {k: getattr(self, k) for k in keys if getattr(self, k) is not None}
        if self.kind != "sparsegpt":
            out.pop("mask_structure")
        return {"kind": self.kind, **out}


def _fail(slug: str, why: str) -> ValueError:
    return ValueError(f"quantization scheme {slug!r}: {why}; allowed forms: {', '.join(SLUG_FORMS)}")


def _check_group(slug: str, group: int) -> None:
    if group < 1 or group & (group - 1):
        raise _fail(slug, f"group size g{group} is not a power of two (e.g. g32, g64, g128)")


def parse_scheme(slug: str) -> Scheme:
    """Parse and validate a scheme slug; the error names what is wrong and what is allowed."""
    if not isinstance(slug, str) or not slug:
        raise _fail(str(slug), "empty or not a string")
    kind = slug.split("-", 1)[0]
    if kind not in KINDS:
        raise _fail(slug, f"unknown scheme {kind!r} (known: {', '.join(KINDS)})")
    m = _PATTERNS[kind].fullmatch(slug)
    if m is None:
        raise _fail(slug, f"not a valid {kind} slug")
    if kind == "sparsegpt":
        pct = float(m.group(1))
        if not 0 < pct < 100:
            raise _fail(slug, f"sparsity {pct / 100:g} is outside (0, 1): give a percentage strictly between "
                              f"0 and 100, e.g. sparsegpt-50")
        mask = "0:0"
        if m.group(2) is not None:
            mask = f"{int(m.group(2))}:{int(m.group(3))}"
            if mask != "2:4" or pct != 50:
                raise _fail(slug, f"semi-structured mask {m.group(2)}of{m.group(3)} at {m.group(1)} %: only "
                                  f"sparsegpt-50-2of4 is allowed")
        scheme = Scheme("sparsegpt", sparsity=pct / 100, mask_structure=mask)
    else:
        w, a = int(m.group(1)), int(m.group(2))
        if (w, a) not in _BITS[kind]:
            allowed = ", ".join(f"w{x}a{y}" for x, y in sorted(_BITS[kind]))
            raise _fail(slug, f"{kind} does not offer w{w}a{a} (allowed: {allowed})")
        group = int(m.group(3)) if m.group(3) is not None else None
        if kind == "smoothquant" and (w, a) == (8, 8) and group is not None:
            raise _fail(slug, "w8a8 quantizes weights per output channel: it takes no group size")
        if group is None and not (kind == "smoothquant" and (w, a) == (8, 8)):
            raise _fail(slug, f"{kind} w{w}a{a} needs a group size, e.g. -g128")
        if group is not None:
            _check_group(slug, group)
        alpha = None
        if kind == "smoothquant":
            alpha = float(m.group(4))
            if not 0 < alpha <= 1:
                raise _fail(slug, f"smoothing strength a{m.group(4)} is outside (0, 1] (e.g. a0.5 or a0.8)")
        scheme = Scheme(kind, weight_bits=w, act_bits=a, group_size=group, alpha=alpha)
    if scheme.slug != slug:
        raise _fail(slug, f"write it as {scheme.slug!r} (one spelling per scheme: it is a path component)")
    return scheme


# ---------------------------------------------------------------------------- model checks
def _width_key(config, width: int) -> str:
    """The config key(s) a Linear input width comes from, for error messages."""
    keys = []
    for key in ("hidden_size", "intermediate_size"):
        if getattr(config, key, None) == width:
            keys.append(f"{key}={width}")
    heads, head_dim = getattr(config, "num_attention_heads", None), getattr(config, "head_dim", None)
    if heads and head_dim and heads * head_dim == width and not keys:
        keys.append(f"num_attention_heads*head_dim={width}")
    return " / ".join(keys) or f"in_features={width}"


def quantized_linears(model) -> dict[str, Any]:
    """The ``nn.Linear`` modules a scheme touches: every Linear except ``lm_head``."""
    import torch

    return {name: mod for name, mod in model.named_modules()
            if isinstance(mod, torch.nn.Linear) and name.split(".")[-1] not in IGNORE}


def allowed_groups(widths: list[int]) -> list[int]:
    """The power-of-two group sizes from 16 to 2048 that divide every width."""
    common = math.gcd(*widths)
    return [g for g in (2 ** k for k in range(4, 12)) if common % g == 0]


def check_widths(scheme: Scheme, widths: dict[str, int]) -> None:
    """Reject a group size that does not divide every Linear input width ``{config key: width}`` (the widths
    a model's config fixes: hidden size, intermediate size, attention heads × head dim), before any weight
    is loaded. The message names the keys, their values and the group sizes the model allows."""
    if scheme.group_size is None or not widths:
        return
    bad = {k: w for k, w in widths.items() if w % scheme.group_size}
    if bad:
        allowed = allowed_groups(list(widths.values()))
        fix = (f"allowed group sizes for this model: {', '.join(f'g{g}' for g in allowed)} (e.g. "
               f"{scheme.slug.replace(f'-g{scheme.group_size}', f'-g{max(allowed)}')!r})" if allowed
               else "no power-of-two group size from g16 up divides every width")
        what = ", ".join(f"{k}={w}" for k, w in bad.items())
        raise ValueError(f"quantization scheme {scheme.slug!r}: group size {scheme.group_size} does not divide "
                         f"{what}; {fix}")


def config_widths(config: dict[str, Any]) -> dict[str, int]:
    """The Linear input widths a (parsed) ``config.json`` fixes: hidden, intermediate, heads × head dim."""
    out = {k: int(config[k]) for k in ("hidden_size", "intermediate_size") if config.get(k)}
    heads = config.get("num_attention_heads")
    head_dim = config.get("head_dim") or (int(config["hidden_size"]) // int(heads) if heads and
                                          config.get("hidden_size") else None)
    if heads and head_dim:
        out["num_attention_heads*head_dim"] = int(heads) * int(head_dim)
    return out


def check_model(scheme: Scheme, model) -> None:
    """Reject a group size that does not divide every quantized Linear's input width, naming the widths."""
    if scheme.group_size is None:
        return
    widths: dict[int, list[str]] = {}
    for name, mod in quantized_linears(model).items():
        widths.setdefault(int(mod.in_features), []).append(name.split(".")[-1])
    if not widths:
        raise ValueError(f"quantization scheme {scheme.slug!r}: the model has no Linear layer to quantize")
    bad = sorted(w for w in widths if w % scheme.group_size)
    if bad:
        common = math.gcd(*widths)
        allowed = [g for g in (2 ** k for k in range(4, 12)) if common % g == 0]
        what = "; ".join(f"{_width_key(model.config, w)} (input of {', '.join(sorted(set(widths[w])))})"
                         for w in bad)
        fix = (f"allowed group sizes for this model: {', '.join(f'g{g}' for g in allowed)} (e.g. "
               f"{scheme.slug.replace(f'-g{scheme.group_size}', f'-g{max(allowed)}')!r})" if allowed
               else "no power-of-two group size from g16 up divides every width")
        raise ValueError(f"quantization scheme {scheme.slug!r}: group size {scheme.group_size} does not divide {what}; "
                         f"{fix}")


# ---------------------------------------------------------------------------- recipes
def _preset(name: str, group_size: int | None) -> dict[str, Any]:
    """A compressed-tensors preset's arguments, with the weight group size replaced."""
    import copy

    from compressed_tensors.quantization.quant_scheme import PRESET_SCHEMES

    args = copy.deepcopy(PRESET_SCHEMES[name])
    if group_size is not None:
        args["weights"].group_size = int(group_size)
    return args


def _config_groups(preset: str, group_size: int | None) -> dict[str, Any]:
    from compressed_tensors.quantization import QuantizationScheme

    return {"group_0": QuantizationScheme(targets=["Linear"], **_preset(preset, group_size))}


def build_recipe(scheme: Scheme) -> list:
    """The llm-compressor modifiers of ``scheme`` (a list, applied in order by ``oneshot``)."""
    ignore = list(IGNORE)
    if scheme.kind == "gptq":
        from llmcompressor.modifiers.gptq import GPTQModifier

        return [GPTQModifier(config_groups=_config_groups("W4A16", scheme.group_size), ignore=ignore)]
    if scheme.kind == "awq":
        from llmcompressor.modifiers.quantization import QuantizationModifier
        from llmcompressor.modifiers.transform import AWQModifier

        return [AWQModifier(duo_scaling="both"),
                QuantizationModifier(config_groups=_config_groups("W4A16_ASYM", scheme.group_size), ignore=ignore)]
    if scheme.kind == "smoothquant":
        from llmcompressor.modifiers.gptq import GPTQModifier
        from llmcompressor.modifiers.transform import SmoothQuantModifier

        preset = "W8A8" if scheme.weight_bits == 8 else "W4A8"
        return [SmoothQuantModifier(smoothing_strength=scheme.alpha),
                GPTQModifier(config_groups=_config_groups(preset, scheme.group_size), ignore=ignore)]
    if scheme.kind == "sparsegpt":
        from llmcompressor.modifiers.pruning.sparsegpt import SparseGPTModifier

        return [SparseGPTModifier(sparsity=scheme.sparsity, mask_structure=scheme.mask_structure,
                                  targets=["Linear"], ignore=[f"re:.*{n}" for n in ignore])]
    raise ValueError(f"unknown scheme kind {scheme.kind!r}; allowed: {', '.join(KINDS)}")


def recipe_yaml(modifiers: list) -> str:
    """The recipe as YAML, with only plain values (llm-compressor's own ``Recipe.yaml`` writes python tags)."""
    import json

    import yaml
    from llmcompressor.recipe import Recipe

    plain = json.loads(json.dumps(Recipe.from_modifiers(modifiers).to_dict(), default=str))
    return yaml.safe_dump(plain, sort_keys=False)
