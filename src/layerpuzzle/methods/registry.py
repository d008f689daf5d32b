"""The method registry: one entry per method, everything else derives from it.

An entry names the method's config key (``methods.<key>``, schema fragment
``config/methods/<key>.schema.yaml``), the display name printed in tables and
model cards, its place in the tables (the paper's order, Tables 8–10), its family,
the kind of checkpoint it writes and the rule file that builds it.  The workflow
includes the rule files listed here, ``all_tables`` evaluates the checkpoints of
every enabled registered method, and the results table sorts its rows by
:func:`method_order`.

Adding a method (docs/methods/README.md, "Adding a method"): its own package under
``layerpuzzle.methods``, its schema fragment, its rule file and one entry in
:data:`ENTRIES`.  This module imports nothing from the method packages (they
import their display names from here).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Family = Literal["direct removal", "weight merging", "post-training", "post-processing"]
FAMILIES: tuple[str, ...] = ("direct removal", "weight merging", "post-training", "post-processing")

CheckpointKind = Literal["layers removed", "distilled", "quantized", "uneven width"]
CHECKPOINT_KINDS: tuple[str, ...] = ("layers removed", "distilled", "quantized", "uneven width")

DENSE = "Dense"


@dataclass(frozen=True)
class MethodEntry:
    """One method.

    ``order`` sorts the tables' rows (lower first); ``rule_file`` is relative to
    the workflow's base directory; ``requires`` lists the method keys whose
    checkpoints this one starts from (a post-training method is skipped, with a
    warning, when they have no enabled variant); ``data_free`` methods need no
    calibration set; ``switches`` names the module that declares the method's
    switches (:mod:`layerpuzzle.methods.switches`).
    """

    key: str
    display_name: str
    order: int
    family: Family
    checkpoint: CheckpointKind
    rule_file: str
    requires: tuple[str, ...] = ()
    data_free: bool = False
    switches: str | None = None  # the module whose SWITCHES[key] declares the method's switches

    def __post_init__(self) -> None:
        if self.family not in FAMILIES:
            raise ValueError(f"method {self.key!r}: family {self.family!r} is not allowed; allowed: {', '.join(FAMILIES)}")
        if self.checkpoint not in CHECKPOINT_KINDS:
            raise ValueError(f"method {self.key!r}: checkpoint kind {self.checkpoint!r} is not allowed; "
                             f"allowed: {', '.join(CHECKPOINT_KINDS)}")

    @property
    def schema_fragment(self) -> str:
        """The method's schema fragment, relative to the workflow's base directory."""
        return f"config/methods/{self.key}.schema.yaml"


DLP = "layerpuzzle.methods.dlp.switches"
FUSEGPT = "layerpuzzle.methods.fusegpt.switches"
DISTILL = "layerpuzzle.distill.switches"
DLP_RULES = "rules/dlp_baselines.smk"
MERGE_RULES = "rules/merge_baselines.smk"
POSTTRAIN_RULES = "rules/posttrain.smk"
WIDTH_RULES = "rules/width_pruning.smk"

# The paper's order (CoMe Tables 8-10) first; methods the paper's tables do not show follow, alphabetically
# by display name (the order the results table has always used for them).
ENTRIES: tuple[MethodEntry, ...] = (
    MethodEntry("mag_plus", "Mag+", 10, "direct removal", "layers removed", DLP_RULES, data_free=True, switches=DLP),
    MethodEntry("taylor_plus", "Taylor+", 20, "direct removal", "layers removed", DLP_RULES, switches=DLP),
    MethodEntry("shortgpt", "ShortGPT", 30, "direct removal", "layers removed", DLP_RULES, switches=DLP),
    MethodEntry("sleb", "SLEB", 40, "direct removal", "layers removed", DLP_RULES, switches=DLP),
    MethodEntry("fusegpt_mi", "FuseGPT-MI", 50, "direct removal", "layers removed", MERGE_RULES, switches=FUSEGPT),
    MethodEntry("fusegpt_mif", "FuseGPT-MI+F", 60, "weight merging", "layers removed", MERGE_RULES,
                switches=FUSEGPT),
    MethodEntry("mka", "MKA", 70, "weight merging", "layers removed", MERGE_RULES,
                switches="layerpuzzle.methods.mka.switches"),
    MethodEntry("laco", "LaCo", 80, "weight merging", "layers removed", MERGE_RULES,
                switches="layerpuzzle.methods.laco.switches"),
    MethodEntry("come", "CoMe", 90, "weight merging", "layers removed", "rules/come.smk",
                switches="layerpuzzle.methods.come.switches"),
    MethodEntry("come_p", "CoMe-P", 100, "weight merging", "layers removed", "rules/come.smk",
                switches="layerpuzzle.methods.come.switches"),
    MethodEntry("come_mp", "CoMe-mp", 200, "post-training", "distilled", POSTTRAIN_RULES, requires=("come",),
                switches=DISTILL),
    MethodEntry("come_sp", "CoMe-sp", 210, "post-training", "distilled", POSTTRAIN_RULES, requires=("come",),
                switches=DISTILL),
    MethodEntry("fusegpt_train", "FuseGPT", 220, "post-training", "distilled", POSTTRAIN_RULES, switches=DISTILL),
    MethodEntry("streamline", "LLM-Streamline", 230, "post-training", "distilled", POSTTRAIN_RULES, switches=DISTILL),
    MethodEntry("reverse", "Reverse", 240, "direct removal", "layers removed", DLP_RULES, data_free=True,
                switches=DLP),
    # width pruning (LaCo's baselines, LaCo Tables 1-5): parameters removed inside every layer, not whole layers
    MethodEntry("llm_pruner", "LLM-Pruner", 250, "direct removal", "uneven width", WIDTH_RULES,
                switches="layerpuzzle.methods.llm_pruner.switches"),
    MethodEntry("slicegpt", "SliceGPT", 260, "direct removal", "uneven width", WIDTH_RULES,
                switches="layerpuzzle.methods.slicegpt.switches"),
)


def _index(entries: tuple[MethodEntry, ...]) -> dict[str, MethodEntry]:
    out: dict[str, MethodEntry] = {}
    for e in entries:
        if e.key in out:
            raise ValueError(f"method key {e.key!r} is registered twice")
        out[e.key] = e
    names = [e.display_name for e in entries]
    if len(set(names)) != len(names) or DENSE in names:
        raise ValueError(f"display names must be unique and not {DENSE!r}: {names}")
    return out


REGISTRY: dict[str, MethodEntry] = _index(ENTRIES)


def entry(key: str) -> MethodEntry:
    """The registered method ``key`` (error lists the registered keys)."""
    try:
        return REGISTRY[key]
    except KeyError:
        raise KeyError(f"method {key!r} is not registered; registered: {', '.join(REGISTRY)}") from None


def display_name(key: str) -> str:
    return entry(key).display_name


def key_of(display: str) -> str:
    """The key of the method displayed as ``display`` (error lists the display names)."""
    for e in REGISTRY.values():
        if e.display_name == display:
            return e.key
    raise KeyError(f"no registered method is displayed as {display!r}; registered: "
                   f"{', '.join(e.display_name for e in REGISTRY.values())}")


def keys(family: str | None = None, rule_file: str | None = None) -> list[str]:
    """Registered keys in table order, optionally of one family or one rule file."""
    if family is not None and family not in FAMILIES:
        raise ValueError(f"family {family!r} is not allowed; allowed: {', '.join(FAMILIES)}")
    return [e.key for e in sorted(REGISTRY.values(), key=lambda e: (e.order, e.key))
            if (family is None or e.family == family) and (rule_file is None or e.rule_file == rule_file)]


def display_names(family: str | None = None) -> dict[str, str]:
    """{key: display name} in table order."""
    return {k: REGISTRY[k].display_name for k in keys(family)}


def method_order() -> tuple[str, ...]:
    """Display names in table order, ``Dense`` first (the results tables' row order)."""
    return (DENSE, *display_names().values())


def rule_files() -> list[str]:
    """The rule files of the registered methods, each once, in table order of their first method."""
    out: list[str] = []
    for k in keys():
        if REGISTRY[k].rule_file not in out:
            out.append(REGISTRY[k].rule_file)
    return out
