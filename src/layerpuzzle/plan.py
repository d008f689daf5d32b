"""The workflow's plan: which artifacts a validated config asks for, and where they live.

Snakemake's rule files only wire; every path, variant and label comes from here, a
plain module tested without Snakemake.  Nothing here depends on the order in
which rule files are included: the methods come from the registry
(:mod:`layerpuzzle.methods.registry`).

**Variant** (one meaning everywhere): a set of settings of one method, an item of
``methods.<key>.variants`` (schema defaults filled in).  Derived from it:

* its *path component* (slug): the variant's own keys over the method-level
  settings that differ from the schema default (:func:`layerpuzzle.config.checkpoint_slug`),
  ``default`` when there are none;
* its *label* (shown after the method name in tables): its ``label``, else ``""``
  for a method's first configured variant, else its path component.

Every method accepts any valid path component, configured or not
(:meth:`Plan.variant`), so one checkpoint can be rebuilt by its path.

A checkpoint id is ``dense`` or ``<method key>/<target label>/<path component>``; a target label is
``sp<percent>`` (a sparsity target, ``sp30``) or ``n<k>`` (k layers removed, ``n8``). A post-processing
stage (:data:`POST_STAGES`) appends ``/<stage>/<scheme>`` to any such id: ``dense/oneshot/gptq-w4a16-g64``
is the dense model quantized by llm-compressor's ``oneshot`` (rules/oneshot.smk, docs/quantization.md),
``mka/n8/default/oneshot/awq-w4a16-g64`` the MKA checkpoint quantized; :meth:`Plan.oneshot_id` builds it,
:meth:`Plan.split_oneshot` takes it apart.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .config import (
    TARGET_LABEL_RE,
    checkpoint_slug,
    defaults_validator,
    method_defaults,
    known_architecture,
    method_path_settings,
    settings_digest,
    slug_value,
    target_label,
    variant_slug,
)
from .data.calibration import CalibrationSpec
from .methods import registry

# {target}: sp + the sparsity target in percent (sp30; sp29.9 for a target that is not a whole percent), or
# n + the number of layers removed (n8). An alternation: wrap it in (?:...) inside a longer pattern.
TARGET_RE = TARGET_LABEL_RE
# a variant's path component
SLUG_RE = r"[A-Za-z0-9_.=,+-]+"
# a source checkpoint: dense or <method key>/<target label>/<path component>
BASE_CKPT_RE = rf"dense|[A-Za-z0-9_+.-]+/(?:{TARGET_RE})/{SLUG_RE}"
# Post-processing stages: each takes a checkpoint id and appends /<stage>/<slug>:
#   /oneshot/<scheme>      quantization / sparsification with llm-compressor (rules/oneshot.smk)
#   /posttrain/<variant>   LM post-training (rules/lm_posttrain.smk)
POSTTRAIN = "posttrain"
POST_STAGES = ("oneshot", POSTTRAIN)
# a oneshot scheme slug (layerpuzzle.methods.quantize.parse_scheme accepts one spelling of each)
SCHEME_RE = r"[a-z0-9][a-z0-9.-]*"
POSTTRAIN_RE = rf"/{POSTTRAIN}/{SLUG_RE}"
# the post-processing suffix of a chain: at most one /posttrain/<variant> (longer chains go through derived
# models, docs/methods/lm_posttrain.md), then any /oneshot/<scheme> stages
POST_RE = rf"(?:{POSTTRAIN_RE})?(?:/oneshot/{SCHEME_RE})*"
# {ckpt}: a source checkpoint, then any post-processing stages
CKPT_RE = rf"(?:{BASE_CKPT_RE}){POST_RE}"
TABLES = "results/tables"
FIGURES = "results/figures"
# keys of a variant that are not settings: never part of its path component
NON_SETTING_KEYS = ("label", "targets")


@dataclass(frozen=True)
class Variant:
    """One variant of method ``key`` on ``model``: its settings, path component and label."""

    key: str
    model: str
    settings: dict[str, Any] = field(hash=False)  # the variant's own keys (no label / targets)
    slug: str
    label: str
    targets: tuple[float | str, ...] | None = None  # fractions and n<k> labels; None = run.targets
    configured: bool = True


def settings_of(variant: dict[str, Any]) -> dict[str, Any]:
    """A variant's settings: every key but ``label`` and ``targets``."""
    return {k: v for k, v in variant.items() if k not in NON_SETTING_KEYS}


class Plan:
    """Paths, variants and checkpoint lists of one validated config (``schema`` with its method fragments)."""

    def __init__(self, config: dict[str, Any], schema: dict[str, Any]):
        self.config = config
        self.schema = schema
        self.method_schemas: dict[str, Any] = schema["properties"]["methods"]["properties"]
        self.defaults = method_defaults(config, schema)
        unregistered = sorted(set(self.method_schemas) - set(registry.REGISTRY))
        if unregistered:
            raise ValueError(f"config/methods has schema fragments of unregistered methods: {', '.join(unregistered)}; "
                             f"add them to layerpuzzle.methods.registry")
        if "oneshot" in config:  # bad oneshot.build entries are refused before any job is scheduled
            for m in self.run_models:
                self.oneshot_builds(m)

    # ------------------------------------------------------------------ models
    @staticmethod
    def model_dir(model: str) -> str:
        return f"results/{model}/dense"

    def model_param(self, model: str, key: str, default: Any = None) -> Any:
        return self.config["models"][model].get(key, default)

    @property
    def run_models(self) -> list[str]:
        return list(self.config["run"]["models"])

    # ------------------------------------------------------------------ calibration
    def calib_id(self, name: str) -> str:
        """The id of the named calibration set (config ``calibration.<name>``)."""
        return CalibrationSpec(**self.config["calibration"][name]).id

    @staticmethod
    def calib_path(model: str, spec: dict[str, Any] | CalibrationSpec) -> str:
        """Where the calibration set ``spec`` (a calibration block or spec) of ``model`` is built."""
        if isinstance(spec, dict):
            spec = CalibrationSpec(**spec)
        return f"results/{model}/calib/{spec.id}.safetensors"

    # ------------------------------------------------------------------ scores
    def scoring_id(self) -> str:
        s = self.config["scores"]
        return f"{s['last_layer_output']}-span{s['max_span']}"

    def scores_dir(self, model: str) -> str:
        return f"results/{model}/scores/{self.calib_id(self.config['scores']['calibration'])}/{self.scoring_id()}"

    def scores_outputs(self, model: str) -> list[str]:
        d = self.scores_dir(model)
        return [f"{d}/bi.parquet", f"{d}/sbi.parquet", f"{d}/channel_sensitivity.safetensors"]

    # ------------------------------------------------------------------ methods and variants
    def method_cfg(self, key: str) -> dict[str, Any]:
        return self.config["methods"].get(key) or {}

    def configured_variants(self, key: str) -> list[dict[str, Any]]:
        return list(self.method_cfg(key).get("variants", []))

    def enabled_variants(self, key: str) -> list[dict[str, Any]]:
        """The configured variants of ``key``, or none when the method is disabled."""
        return self.configured_variants(key) if self.method_cfg(key).get("enabled", False) else []

    def path_settings(self, key: str, model: str) -> dict[str, Any]:
        """{name: value} of method ``key``'s method-level settings that differ from the schema default, on ``model``."""
        return method_path_settings(self.method_cfg(key), self.defaults.get(key) or {},
                                    self.method_schemas.get(key) or {}, model)

    def variant_path(self, key: str, variant: dict[str, Any], model: str) -> str:
        """The path component of ``variant`` (a settings dict) of method ``key`` on ``model``."""
        return checkpoint_slug(self.path_settings(key, model), variant)

    def variants(self, key: str, model: str) -> list[Variant]:
        """The enabled variants of ``key`` on ``model``, in config order."""
        return [self._configured(key, i, v, model) for i, v in enumerate(self.enabled_variants(key))]

    def _configured(self, key: str, index: int, v: dict[str, Any], model: str) -> Variant:
        slug = self.variant_path(key, v, model)
        targets = tuple(_target(t) for t in v["targets"]) if v.get("targets") else None
        return Variant(key, model, settings_of(v), slug, v.get("label") or ("" if index == 0 else slug), targets)

    def variant(self, key: str, slug: str, model: str) -> Variant:
        """The variant of ``key`` whose path component on ``model`` is ``slug``: a configured one (enabled or
        not), else the settings the slug names (checked against the method's schema and required to be
        the canonical path of those settings)."""
        for i, v in enumerate(self.configured_variants(key)):
            if self.variant_path(key, v, model) == slug:
                return self._configured(key, i, v, model)
        settings = self.parse_slug(key, slug, model)
        label = "" if slug == self.variant_path(key, {}, model) else slug
        return Variant(key, model, settings, slug, label, None, configured=False)

    def variant_params(self, key: str, slug: str, model: str) -> dict[str, Any]:
        """The variant as a rule parameter: its config entry (settings and ``targets``) with ``label`` as the
        tables show it; for a slug that is not configured, the settings it names."""
        v = self.variant(key, slug, model)
        if v.configured:
            raw = next(c for c in self.configured_variants(key) if self.variant_path(key, c, model) == slug)
            return {**raw, "label": v.label}
        return {**v.settings, "label": v.label}

    def variant_label(self, key: str, slug: str, model: str) -> str:
        return self.variant(key, slug, model).label

    def parse_slug(self, key: str, slug: str, model: str) -> dict[str, Any]:
        """The variant settings a path component names, with the schema's defaults of the variant keys.

        ``key=value`` parts are read with the types of ``methods.<key>.variants`` items; a part that names
        a method-level setting of this config (or their digest ``settings=``) is skipped when its value is
        the configured one. Raises ValueError naming the slug, the bad part and what is allowed, or, for
        settings whose canonical path is another, that path.
        """
        item = ((self.method_schemas.get(key) or {}).get("properties", {}).get("variants") or {}).get("items") or {}
        props = {k: s for k, s in (item.get("properties") or {}).items() if k not in NON_SETTING_KEYS}
        level = self.path_settings(key, model)
        fixed = {name: slug_value(v) for name, v in {**level, "settings": settings_digest(level)}.items()}
        params: dict[str, Any] = {}
        if slug != "default":
            for part in slug.split(","):
                name, sep, text = part.partition("=")
                if sep and name not in props and fixed.get(name) == text:
                    continue
                if not sep or name not in props:
                    raise ValueError(
                        f"method {key!r} on model {model!r}: path component {slug!r}: {part!r} is not <key>=<value> "
                        f"with key in {', '.join(sorted(props)) or '(none: this method has no variant settings)'}")
                try:
                    params[name] = _slug_scalar(key, name, text, props[name])
                except ValueError as exc:
                    raise ValueError(f"method {key!r} path component {slug!r}: {exc}") from None
        checker = defaults_validator(item)
        errors = sorted(checker.iter_errors(params), key=lambda e: list(map(str, e.absolute_path)))
        if errors:
            bad = "; ".join(f"{'.'.join(map(str, e.absolute_path)) or slug}: {e.message}" for e in errors)
            raise ValueError(f"method {key!r} path component {slug!r}: {bad}")
        canonical_slug = self.variant_path(key, params, model)
        if canonical_slug != slug:  # one path per set of settings
            raise ValueError(f"method {key!r} path component {slug!r} on model {model!r}: with this config these "
                             f"settings are named {canonical_slug!r}; use that path")
        return settings_of(params)

    def requirements_met(self, key: str) -> bool:
        """False (with a warning) when a method that starts from another's checkpoints has none to start from."""
        for need in registry.entry(key).requires:
            if not self.enabled_variants(need):
                print(f"[plan] methods.{key} skipped: no enabled methods.{need} variant to start from",
                      file=sys.stderr)
                return False
        return True

    def runs_on(self, key: str, model: str) -> bool:
        """False when method ``key`` has a ``models`` list (post-training methods) that leaves ``model`` out."""
        allowed = self.method_cfg(key).get("models")
        return allowed is None or model in allowed

    def variant_targets(self, variant: Variant) -> list[float | str]:
        """The variant's targets (else run.targets): fractions of all parameters and ``n<k>`` layer counts."""
        return list(variant.targets) if variant.targets else list(self.config["run"]["targets"])

    def largest_target(self, targets: list[float | str], model: str) -> float | str:
        """The target of ``targets`` that removes the most layers of ``model``. Fractions and layer counts
        are compared through the model's shape when the config fixes it; otherwise a mixed list's largest
        fraction is taken (a layer-count list: its largest k)."""
        fractions = [t for t in targets if not isinstance(t, str)]
        counts = [t for t in targets if isinstance(t, str)]
        if not counts:
            return max(fractions)
        if not fractions:
            return max(counts, key=lambda t: int(t[1:]))
        arch = known_architecture(self.config["models"].get(model) or {})
        if arch is None:
            return max(fractions)
        from .sparsity import removed_for

        return max(targets, key=lambda t: (removed_for(arch, t), isinstance(t, str)))

    def method_checkpoints(self, key: str, model: str) -> list[str]:
        """Checkpoint ids of every enabled variant and target of ``key`` on ``model``."""
        if not self.runs_on(key, model):
            return []
        return [f"{key}/{target_label(t)}/{v.slug}" for v in self.variants(key, model) for t in self.variant_targets(v)]

    def enabled_methods(self) -> list[str]:
        """Registered methods that all_tables runs, in table order (each method's requirements checked once)."""
        if not hasattr(self, "_enabled"):
            self._enabled = [k for k in registry.keys() if self.method_cfg(k).get("enabled", False)
                             and self.requirements_met(k)]
        return list(self._enabled)

    def checkpoints_of(self, model: str) -> list[str]:
        """``dense`` and every checkpoint of every enabled registered method on ``model``."""
        return ["dense"] + [c for k in self.enabled_methods() for c in self.method_checkpoints(k, model)]

    # ------------------------------------------------------------------ checkpoints and evaluations
    def checkpoint_dir(self, model: str, ckpt: str) -> str:
        """The directory of checkpoint ``ckpt``: the dense model's, ``results/{model}/pruned/{ckpt}`` for a
        method's, ``results/{model}/pruned/oneshot/{scheme}/{source}`` for ``{source}/oneshot/{scheme}`` and
        ``results/{model}/posttrain/lm/{source}/{slug}`` for ``{source}/posttrain/{slug}`` (a chained checkpoint
        cannot lie inside its source's directory, an output of another job)."""
        if ckpt == "dense":
            return self.model_dir(model)
        split = self.split_oneshot(ckpt)
        if split is not None:
            return f"results/{model}/pruned/{self.ONESHOT}/{split[1]}/{split[0]}"
        split = split_posttrain(ckpt)
        if split is not None:
            return self.posttrain_dir(model, *split)
        return f"results/{model}/pruned/{ckpt}"

    @staticmethod
    def metrics_path(model: str, ckpt: str) -> str:
        return f"results/{model}/eval/{ckpt}/metrics.json"

    def all_metrics(self) -> list[str]:
        return [self.metrics_path(m, c) for m in self.run_models for c in self.checkpoints_of(m)]

    # ------------------------------------------------------------------ post-processing: oneshot (rules/oneshot.smk)
    ONESHOT = "oneshot"

    @staticmethod
    def oneshot_id(source: str, scheme: str) -> str:
        """The id of checkpoint ``source`` (``dense`` or any checkpoint id) compressed by ``scheme``:
        ``{source}/oneshot/{scheme}``; it lives at :meth:`checkpoint_dir` and is evaluated at
        ``results/{model}/eval/{id}/metrics.json``."""
        return f"{source}/{Plan.ONESHOT}/{scheme}"

    @staticmethod
    def split_oneshot(ckpt: str) -> tuple[str, str] | None:
        """``(source, scheme)`` of a checkpoint id whose last stage is oneshot, else None."""
        source, sep, scheme = ckpt.rpartition(f"/{Plan.ONESHOT}/")
        if not sep or not source or not scheme or "/" in scheme:
            return None
        return source, scheme

    @staticmethod
    def root_checkpoint(ckpt: str) -> str:
        """The checkpoint a chain of post-processing stages starts from (``dense`` or a method's id)."""
        parts = ckpt.split("/")
        while len(parts) >= 3 and parts[-2] in POST_STAGES:
            parts = parts[:-2]
        return "/".join(parts)

    def oneshot_calibration(self) -> CalibrationSpec:
        """The calibration set every oneshot job reads (``oneshot.calibration``)."""
        return CalibrationSpec(**self.config["oneshot"]["calibration"])

    def oneshot_calib_path(self, model: str) -> str:
        return self.calib_path(model, self.oneshot_calibration())

    def check_oneshot_source(self, model: str, source: str) -> None:
        """Raise ValueError unless ``source`` is a checkpoint some method/target/variant produces on ``model``
        (``dense``, or a registered method's ``<key>/<target label>/<path component>``, the component valid
        for that method) and oneshot can read it (not an uneven-width or compressed checkpoint)."""
        if self.split_oneshot(source) is not None:
            raise ValueError(f"source {source!r} is itself a oneshot checkpoint; allowed sources: dense or "
                             f"<method>/<target>/<variant> (e.g. mka/n8/default)")
        if source == "dense":
            return
        parts = source.split("/")
        if len(parts) != 3:
            raise ValueError(f"source {source!r} is not a checkpoint id; allowed: dense or "
                             f"<method>/<target>/<variant> (e.g. mka/n8/default)")
        key, label, slug = parts
        if key not in registry.REGISTRY:
            raise ValueError(f"source {source!r}: {key!r} is not a method; allowed: {', '.join(registry.keys())}")
        if not re.fullmatch(TARGET_RE, label):
            raise ValueError(f"source {source!r}: {label!r} is not a target label; allowed: sp<percent> (sp30) "
                             f"or n<k> (n8)")
        if registry.entry(key).checkpoint == "uneven width":
            raise ValueError(f"source {source!r}: {registry.display_name(key)} writes uneven-width checkpoints "
                             f"(uneven_layers.json), which llm-compressor's oneshot cannot save and reload; "
                             f"allowed: dense or a checkpoint of a layer-removal, merging or post-training method")
        self.variant(key, slug, model)  # raises when the path component names no variant of the method

    def check_oneshot_scheme(self, model: str, scheme: str) -> None:
        """Raise ValueError for a scheme slug ``parse_scheme`` refuses, or a group size that does not divide the
        widths of ``model`` when the config fixes its shape (else the job checks before loading weights)."""
        from .methods.quantize import parse_scheme
        from .methods.quantize.schemes import check_widths

        parsed = parse_scheme(scheme)
        arch = known_architecture(self.config["models"].get(model) or {})
        if arch is not None:
            check_widths(parsed, {"hidden_size": arch.hidden_size, "intermediate_size": arch.intermediate_size,
                                  "num_attention_heads*head_dim": arch.num_attention_heads * arch.head_dim})

    def oneshot_builds(self, model: str) -> list[str]:
        """The ids ``oneshot.build`` asks for on ``model`` (every entry whose ``models`` list is empty or names
        it: each source × each scheme), checked; ValueError names the key, the value and what is allowed."""
        out: list[str] = []
        for i, entry in enumerate(self.config["oneshot"]["build"]):
            if entry.get("models") and model not in entry["models"]:
                continue
            try:
                self.check_oneshot_source(model, entry["source"])
            except ValueError as exc:
                raise ValueError(f"config key `oneshot.build[{i}].source` on model {model!r}: value "
                                 f"{entry['source']!r}: {exc}") from None
            for j, scheme in enumerate(entry["schemes"]):
                try:
                    self.check_oneshot_scheme(model, scheme)
                except ValueError as exc:
                    raise ValueError(f"config key `oneshot.build[{i}].schemes[{j}]` on model {model!r}: value "
                                     f"{scheme!r}: {exc}") from None
                out.append(self.oneshot_id(entry["source"], scheme))
        return out

    def oneshot_checkpoint_dirs(self) -> list[str]:
        return [self.checkpoint_dir(m, c) for m in self.run_models for c in self.oneshot_builds(m)]

    def oneshot_metrics(self) -> list[str]:
        """What target ``oneshot_all`` builds: every configured oneshot checkpoint, evaluated."""
        return [self.metrics_path(m, c) for m in self.run_models for c in self.oneshot_builds(m)]

    # ------------------------------------------------------------------ evaluation task lists
    EVAL_RULE = "evaluate_checkpoint"

    def eval_tasks(self, ckpt: str) -> list[str]:
        """The tasks checkpoint ``ckpt`` is evaluated on: the keys of evaluation.tasks, or, when
        evaluation.tasks_by_target names its target label, those of them it lists (in evaluation.tasks'
        order). The dense model gets every task."""
        tasks = list(self.config["evaluation"]["tasks"])
        ckpt = self.root_checkpoint(ckpt)  # a post-processed checkpoint is evaluated as its source
        if ckpt == "dense":
            return tasks
        only = self._tasks_by_target().get(ckpt.split("/")[1])
        return tasks if only is None else [t for t in tasks if t in only]

    def _tasks_by_target(self) -> dict[str, list[str]]:
        return dict(self.config["evaluation"].get("tasks_by_target") or {})

    def eval_task_groups(self) -> list[dict[str, Any]]:
        """One evaluation rule per restricted task list (the rule's outputs name its tasks, so a list needs
        its own rule): ``{"rule", "tasks", "labels"}``, the labels whose checkpoints it evaluates. A list
        equal to all of evaluation.tasks is no restriction. Empty for the embedded default."""
        everything = list(self.config["evaluation"]["tasks"])
        groups: dict[tuple[str, ...], list[str]] = {}
        for label in self._tasks_by_target():
            tasks = tuple(self.eval_tasks(f"x/{label}/x"))
            if list(tasks) != everything:
                groups.setdefault(tasks, []).append(label)
        out, names = [], set()
        for i, (tasks, labels) in enumerate(groups.items()):
            name = f"{self.EVAL_RULE}_{'_'.join(tasks)}"
            if name in names or len(name) > 100:
                name = f"{self.EVAL_RULE}_tasks{i + 1}"
            names.add(name)
            out.append({"rule": name, "tasks": list(tasks), "labels": sorted(labels)})
        return out

    def eval_ckpt_re(self, labels: list[str] | None = None) -> str:
        """The ``{ckpt}`` constraint of an evaluation rule: the checkpoints at ``labels`` (a restricted task
        list's rule), or, for ``None``, every checkpoint the restricted rules leave (the main rule; exactly
        :data:`CKPT_RE` when nothing is restricted)."""
        if labels is not None:
            return rf"[A-Za-z0-9_+.-]+/(?:{'|'.join(map(re.escape, labels))})/{SLUG_RE}{POST_RE}"
        taken = [label for g in self.eval_task_groups() for label in g["labels"]]
        if not taken:
            return CKPT_RE
        return (rf"(?:dense|[A-Za-z0-9_+.-]+/(?!(?:{'|'.join(map(re.escape, taken))})/)(?:{TARGET_RE})/{SLUG_RE})"
                rf"{POST_RE}")

    # ------------------------------------------------------------------ direct layer removal (orders)
    DLP_RULE_FILE = "rules/dlp_baselines.smk"

    def dlp_keys(self) -> list[str]:
        """The methods that remove layers along a removal order (rules/dlp_baselines.smk)."""
        return registry.keys(rule_file=self.DLP_RULE_FILE)

    def dlp_settings(self, key: str) -> dict[str, Any]:
        """Method-level settings of ``key`` (everything but enabled, variants, calibration, published_orders)."""
        return {k: v for k, v in self.method_cfg(key).items()
                if k not in ("enabled", "variants", "calibration", "published_orders")}

    def dlp_calib(self, key: str) -> str:
        """The calibration id of method ``key``, or ``data-free``."""
        if registry.entry(key).data_free:
            return "data-free"
        return CalibrationSpec(**self.config["methods"][key]["calibration"]).id

    def dlp_order_path(self, model: str, key: str, slug: str, name: str = "order.parquet") -> str:
        return f"results/{model}/orders/{key}/{self.dlp_calib(key)}/{slug}/{name}"

    def dlp_fractions(self, key: str, slug: str, model: str) -> list[float | dict[str, int]]:
        """Targets the order must serve: the variant's (or run.targets) and Table 4's levels, as the job
        receives them: the fractions, sorted, then ``{"layers": k}`` for each layer-count target, by k."""
        from .config import target_param

        v = self.variant(key, slug, model)
        targets = self.variant_targets(v)
        fractions = sorted({float(t) for t in targets if not isinstance(t, str)}
                           | {float(t) for t in self.config["run"]["table3_targets"]})
        counts = sorted({int(t[1:]) for t in targets if isinstance(t, str)})
        return [*fractions, *(target_param(f"n{k}") for k in counts)]

    def table4_entries(self) -> list[dict[str, Any]]:
        """Table 4's rows: every enabled removal order, then FuseGPT-MI's (the order of its greedy loop)."""
        out = []
        for model in self.run_models:
            for key in self.dlp_keys():
                for v in self.variants(key, model):
                    name = registry.display_name(key)
                    out.append({"model": model, "method": f"{name} ({v.label})" if v.label else name,
                                "base_method": name, "order": self.dlp_order_path(model, key, v.slug), "note": ""})
            out += [{"model": model, **e} for e in self.fusegpt_mi_order_entries(model)]
        return out

    def fusegpt_mi_order_entries(self, model: str) -> list[dict[str, Any]]:
        """Per FuseGPT-MI variant, the order of its checkpoint at its highest target (the loop is greedy: its
        first k removals are the k-layer run's); Table 4 shows the levels that order reaches."""
        out = []
        name = registry.display_name("fusegpt_mi")
        for v in self.variants("fusegpt_mi", model):
            top = self.largest_target(self.variant_targets(v), model)
            out.append({"method": f"{name} ({v.label})" if v.label else name, "base_method": name,
                        "note": "MI order of the iterative loop",
                        "order": f"results/{model}/orders/fusegpt_mi/{target_label(top)}/{v.slug}/order.parquet"})
        return out

    def table4_outputs(self) -> list[str]:
        stems = ("table04_layer_order", "table04_vs_paper")
        return [p for stem in stems for p in self.table_files(stem)] if self.table4_entries() else []

    # ------------------------------------------------------------------ weight merging
    def laco_search(self, model: str, target: str) -> dict[str, Any]:
        """LaCo's C, L, H, I, T and target rule: ``search``, then the per-model, per-target overrides."""
        cfg = self.method_cfg("laco")
        return {**cfg["search"], **((cfg["per_model_target"].get(model) or {}).get(target) or {})}

    # ------------------------------------------------------------------ LaCo's sweeps, ablations and analyses
    def laco_sentences(self, model: str, slug: str) -> list[str]:
        """The calibration sentences D of a LaCo variant: methods.laco.sentences, or the sentences it draws
        (sentence_source/count/seed; read from the data mirror when the DAG is built)."""
        from .data.text_sources import resolve_mirror
        from .methods.laco.pipeline import variant_sentences

        settings = self.variant("laco", slug, model).settings
        sentences = list(self.method_cfg("laco")["sentences"])
        if settings.get("sentence_source", "notebook") == "notebook":
            return sentences
        return variant_sentences(settings, sentences, resolve_mirror(self.config["data"]["mirror"]))

    def laco_ablation_models(self) -> list[str]:
        return list(self.method_cfg("laco")["ablations"]["models"] or self.run_models)

    def laco_layers(self, model: str) -> int | None:
        """The model's number of layers when the config fixes its shape (else None: known once prepared)."""
        arch = known_architecture(self.config["models"].get(model) or {})
        return None if arch is None else arch.num_hidden_layers

    def laco_grid_points(self, stem: str) -> list[tuple[str, str, str]]:
        """[(model, setting label, checkpoint id)] of one LaCo ablation table or of the ratio sweep."""
        from .methods.laco.grids import RATIO_STEM, grid_points, ratio_points

        abl = self.method_cfg("laco")["ablations"]
        out = []
        for m in self.laco_ablation_models():
            if stem == RATIO_STEM:
                for t, settings in ratio_points(abl):
                    out.append((m, f"{100 * t:g}", f"laco/{target_label(t)}/{self.variant_path('laco', settings, m)}"))
                continue
            by_model = abl.get("rule_plan_by_model") or {}
            cfg = {**abl, "rule_plan": by_model[m], "rule_plan_layers": None} if m in by_model else abl
            n = None if m in by_model else self.laco_layers(m)
            label = target_label(abl["target"])
            for name, settings in grid_points(stem, cfg, n):
                out.append((m, name, f"laco/{label}/{self.variant_path('laco', settings, m)}"))
        return out

    def laco_ablation_stems(self) -> list[str]:
        from .methods.laco.grids import GRID_TABLES

        return list(GRID_TABLES)

    def laco_distance_checkpoints(self, model: str) -> list[str]:
        """LaCo Table 14: the enabled LaCo variants at ``ablations.distance_targets``."""
        targets = self.method_cfg("laco")["ablations"]["distance_targets"]
        return [f"laco/{target_label(t)}/{v.slug}" for v in self.variants("laco", model) for t in targets]

    @staticmethod
    def laco_distance_path(model: str, ckpt: str) -> str:
        return f"results/{model}/analyses/laco_distances/{ckpt}.json"

    def laco_distance_inputs(self) -> list[str]:
        return [self.laco_distance_path(m, c) for m in self.laco_ablation_models()
                for c in self.laco_distance_checkpoints(m)]

    @staticmethod
    def laco_figure_files(model: str) -> dict[str, str]:
        d = f"{FIGURES}/{model}/laco"
        return {"fig4_png": f"{d}/fig4_weight_distances.png", "fig4_csv": f"{d}/fig4_weight_distances.csv",
                "fig5a_png": f"{d}/fig5a_adjacent_cosine.png", "fig5a_csv": f"{d}/fig5a_adjacent_cosine.csv",
                "fig5b_png": f"{d}/fig5b_merged_cosine.png", "fig5b_csv": f"{d}/fig5b_merged_cosine.csv"}

    def mka_kernels(self) -> list[str]:
        """The NPIB kernels of the enabled MKA variants (one similarity matrix each)."""
        return sorted({v["kernel"] for v in self.enabled_variants("mka")})

    @staticmethod
    def mka_similarity_path(model: str, kernel: str) -> str:
        return f"results/{model}/mka/npib-{kernel}.parquet"

    def method_calibration(self, key: str) -> CalibrationSpec:
        """The calibration set of method ``key`` (its ``calibration`` block)."""
        return CalibrationSpec(**self.config["methods"][key]["calibration"])

    def figure_pngs(self) -> list[str]:
        out = []
        for m in self.run_models:
            out.append(f"{FIGURES}/{m}/bi_sbi.png")
            out += [f"{FIGURES}/{m}/npib_{k}.png" for k in self.mka_kernels()]
        return out

    def figure_outputs(self) -> list[str]:
        return self.figure_pngs() + [f"{TABLES}/figures.md"]

    # ------------------------------------------------------------------ CoMe
    def come_calibration(self, key: str, slug: str, model: str) -> dict[str, Any]:
        """The calibration block of a CoMe / CoMe-P variant (its calib_rows / calib_dataset / calib_packing)."""
        from .methods.come.variants import resolve_calibration

        return resolve_calibration(self.config["methods"][key], self.variant(key, slug, model).settings)

    def come_settings(self, key: str, slug: str, model: str) -> dict[str, Any]:
        from .methods.come.variants import resolve_settings

        return resolve_settings(key, self.config["methods"][key], model, self.variant(key, slug, model).settings)

    def come_ablation_points(self, stem: str) -> list[tuple[str, Any, str]]:
        """[(model, grid value, checkpoint id)] of one CoMe ablation table (Tables 11-14)."""
        from .methods.come.variants import ablation_variant
        from .tables.come_ablations import ABLATIONS

        a = ABLATIONS[stem]
        cfg = self.config["methods"]["come"]
        abl = cfg["ablations"]
        label = target_label(abl["target"])
        out = []
        for m in abl["models"] or self.run_models:
            for value in abl[a.param]:
                slug = self.variant_path("come", ablation_variant("come", cfg, m, a.param, value), m)
                out.append((m, value, f"come/{label}/{slug}"))
        return out

    def come_ablation_outputs(self) -> list[str]:
        from .tables.come_ablations import ABLATIONS

        if not self.config["methods"]["come"]["ablations"]["in_all_tables"]:
            return []
        return [p for stem in ABLATIONS for p in self.table_files(stem)]

    # ------------------------------------------------------------------ post-training
    POSTTRAIN_FROM_COME = ("come_sp", "come_mp")

    def posttrain_enabled(self) -> list[str]:
        return [k for k in self.enabled_methods() if registry.entry(k).family == "post-training"]

    def come_source(self, key: str, model: str) -> str | None:
        """Path component (on ``model``) of the methods.come variant that ``key`` distils; None when CoMe has no
        enabled variant. ``from_variant`` names it by label, by its own keys' slug or by its full path component."""
        variants = self.enabled_variants("come")
        if not variants:
            return None
        want = self.method_cfg(key).get("from_variant")
        slugs = [self.variant_path("come", v, model) for v in variants]
        if want is None:
            return slugs[0]
        for v, slug in zip(variants, slugs):
            if want in (v.get("label"), slug, variant_slug(settings_of(v))):
                return slug
        raise ValueError(f"config key `methods.{key}.from_variant`: value {want!r} is neither the label nor the slug "
                         f"of a methods.come variant; allowed: {', '.join(slugs)}")

    def training_data(self, key: str) -> CalibrationSpec:
        """The training chunks of post-training method ``key`` (its ``data`` block, a calibration set)."""
        from .distill.data import training_data_spec

        cfg = self.method_cfg(key)
        spec = training_data_spec(cfg["data"])
        if cfg.get("data_sampling", "rows") != "rows":  # FuseGPT's released training data: random windows
            try:
                spec = dataclasses.replace(spec, sampling=cfg["data_sampling"])
            except ValueError as exc:
                raise ValueError(f"config key `methods.{key}.data_sampling`: value {cfg['data_sampling']!r} with "
                                 f"`methods.{key}.data` {cfg['data']}: {exc}") from None
        return spec

    def training_data_path(self, key: str, model: str) -> str:
        return self.calib_path(model, self.training_data(key))

    def teacher_path(self, key: str, model: str, target: str) -> str | None:
        """The stored teacher activations CoMe-sp / CoMe-mp read (None when ``key`` streams the teacher)."""
        if self.method_cfg(key).get("teacher_streaming", False):
            return None
        return (f"results/{model}/teacher/{self.training_data(key).id}/come/{target}/"
                f"{self.come_source(key, model)}/activations.safetensors")

    def posttrain_checkpoint_ids(self, model: str) -> list[str]:
        return [c for k in self.posttrain_enabled() for c in self.method_checkpoints(k, model)]

    def posttrain_come_ids(self, model: str) -> list[str]:
        """The CoMe checkpoints (no post-training) that CoMe-sp/-mp start from, at their targets."""
        ids = set()
        for key in self.posttrain_enabled():
            if key in self.POSTTRAIN_FROM_COME:
                for c in self.method_checkpoints(key, model):
                    ids.add(f"come/{c.split('/')[1]}/{self.come_source(key, model)}")
        return sorted(ids)

    def posttrain_checkpoint_dirs(self) -> list[str]:
        return [f"results/{m}/pruned/{c}" for m in self.run_models for c in self.posttrain_checkpoint_ids(m)]

    def posttrain_metrics(self) -> list[str]:
        return [self.metrics_path(m, c) for m in self.run_models
                for c in ["dense", *self.posttrain_come_ids(m), *self.posttrain_checkpoint_ids(m)]]

    def posttrain_outputs(self) -> list[str]:
        if not self.posttrain_enabled():
            return []
        return self.table_files("table07_posttrain") + self.table_files("table_posttrain")

    # ------------------------------------------------------------------ efficiency (rules/efficiency.smk)
    @staticmethod
    def efficiency_path(model: str, ckpt: str) -> str:
        """Peak memory and tokens/s of checkpoint ``ckpt`` (any checkpoint id) of ``model``."""
        return f"results/{model}/efficiency/{ckpt}/efficiency.json"

    # ------------------------------------------------------------------ the LaCo paper's tables
    LACO_TABLE_STEMS = ("laco_table01", "laco_table01_vs_paper", "laco_table02", "laco_table02_vs_paper",
                        "laco_table22", "laco_table22_vs_paper", "laco_table03_ppl", "laco_table03_ppl_vs_paper",
                        "laco_table04_time", "laco_table04_time_vs_paper", "laco_table05_20_efficiency",
                        "laco_table05_20_efficiency_vs_paper")

    def laco_table_models(self) -> list[str]:
        return list(self.config.get("laco_tables", {}).get("models") or self.run_models)

    def laco_target(self, model: str) -> float:
        """LaCo's target in the LaCo tables: ``laco_tables.targets[model]``, else ``laco_tables.target``."""
        cfg = self.config["laco_tables"]
        return float((cfg.get("targets") or {}).get(model, cfg["target"]))

    def laco_width_target(self, model: str) -> float:
        """LLM-Pruner's and SliceGPT's target in the LaCo tables: ``laco_tables.width_target``, else LaCo's
        achieved sparsity at :meth:`laco_target` rounded down to 0.1 % when the config fixes the model's shape,
        else :meth:`laco_target`."""
        cfg = self.config["laco_tables"]
        if cfg.get("width_target") is not None:
            return float(cfg["width_target"])
        arch = known_architecture(self.config["models"].get(model) or {})
        if arch is None:
            return self.laco_target(model)
        from .sparsity import removed_for, sparsity

        achieved = sparsity(arch, removed_for(arch, self.laco_target(model)))
        return math.floor(achieved * 1000 + 1e-9) / 1000

    def laco_table_checkpoints(self, model: str) -> dict[str, str]:
        """{row: checkpoint id} of the LaCo tables on ``model``: Dense, LLM-Pruner and SliceGPT (their first
        configured variants) at :meth:`laco_width_target`, LaCo (``laco_tables.laco_variant``) at ``target``."""
        cfg = self.config["laco_tables"]
        width = target_label(self.laco_width_target(model))
        laco_variants = self.configured_variants("laco")
        want = cfg.get("laco_variant")
        chosen = laco_variants[0] if want is None else next(
            (v for v in laco_variants if (v.get("label") or "") == want), None)
        if chosen is None:
            labels = [v.get("label") or "" for v in laco_variants]
            raise ValueError(f"config key `laco_tables.laco_variant`: value {want!r} is not the label of a methods.laco "
                             f"variant; allowed: {', '.join(map(repr, labels))}")
        out = {"Dense": "dense"}
        for key in ("llm_pruner", "slicegpt"):
            v = self.configured_variants(key)[0] if self.configured_variants(key) else {}
            out[registry.display_name(key)] = f"{key}/{width}/{self.variant_path(key, v, model)}"
        out[registry.display_name("laco")] = f"laco/{target_label(self.laco_target(model))}/" \
                                             f"{self.variant_path('laco', chosen, model)}"
        return out

    def laco_table_metrics(self) -> list[str]:
        return [self.metrics_path(m, c) for m in self.laco_table_models() for c in self.laco_table_checkpoints(m).values()]

    def laco_table_efficiency(self) -> list[str]:
        return [self.efficiency_path(m, c) for m in self.laco_table_models()
                for c in self.laco_table_checkpoints(m).values()]

    def laco_table_pruning(self) -> list[str]:
        """The checkpoint directories whose pruning.json Table 4 reads (every row but Dense)."""
        return [self.checkpoint_dir(m, c) for m in self.laco_table_models()
                for c in self.laco_table_checkpoints(m).values() if c != "dense"]

    def laco_table_outputs(self) -> list[str]:
        return [p for stem in self.LACO_TABLE_STEMS for p in self.table_files(stem)]


    # ================================================================== post-processing stage `posttrain`
    # (LM post-training of any checkpoint, docs/methods/lm_posttrain.md; rules/lm_posttrain.smk).
    # A checkpoint id ``{source}/posttrain/{slug}``: ``{source}`` = ``dense`` or ``{method}/{target}/{variant}``,
    # ``{slug}`` = the path component of a ``posttrain_lm`` variant. Its directory is
    # ``results/{model}/posttrain/lm/{source}/{slug}`` — NOT under ``results/{model}/pruned/{source}``, because
    # Snakemake refuses an output inside another job's directory output (ChildIOException).
    # Re-pruning a post-trained checkpoint: a *derived model* (``models.<name>: {source: derived, derived_from:
    # <model>, checkpoint: <id>}``) whose dense directory is a copy of that checkpoint (rule derive_model).
    def posttrain_cfg(self) -> dict[str, Any]:
        return self.config.get("posttrain_lm") or {}

    def posttrain_schema(self) -> dict[str, Any]:
        return self.schema["properties"]["posttrain_lm"]

    def posttrain_path_settings(self) -> dict[str, Any]:
        """posttrain_lm's block-level settings that differ from the schema default (they name every path)."""
        if not hasattr(self, "_pt_defaults"):  # the block as the schema alone gives it
            from .config import validate_config

            bare = {k: v for k, v in self.config.items() if k not in ("methods", "posttrain_lm")}
            self._pt_defaults = validate_config(copy.deepcopy(bare), self.schema)["posttrain_lm"]
        return method_path_settings(self.posttrain_cfg(), self._pt_defaults, self.posttrain_schema(), "")

    def posttrain_variants(self) -> list[dict[str, Any]]:
        return list(self.posttrain_cfg().get("variants") or [])

    def posttrain_variant_slug(self, variant: dict[str, Any]) -> str:
        return checkpoint_slug(self.posttrain_path_settings(), variant)

    def posttrain_slug(self, name: str | None) -> str:
        """The path component a posttrain_lm variant is named by: ``None`` = the first configured variant, a
        configured variant's label or path component, or any valid path component (:meth:`posttrain_variant`)."""
        variants = self.posttrain_variants()
        if name is None:
            if not variants:
                raise ValueError("config key `posttrain_lm.variants`: value [] has no variant; allowed: at least one")
            return self.posttrain_variant_slug(variants[0])
        for v in variants:
            if name in (v.get("label"), self.posttrain_variant_slug(v)):
                return self.posttrain_variant_slug(v)
        self.posttrain_variant(name)  # raises naming what is allowed
        return name

    def posttrain_variant(self, slug: str) -> dict[str, Any]:
        """The settings (with ``label``) of the posttrain_lm variant whose path component is ``slug``: a
        configured one, else the ``key=value`` settings the slug names (read with the schema's types and
        required to be the canonical path of those settings)."""
        for v in self.posttrain_variants():
            if self.posttrain_variant_slug(v) == slug:
                return dict(v)
        item = self.posttrain_schema()["properties"]["variants"]["items"]
        props = {k: sch for k, sch in item["properties"].items() if k not in NON_SETTING_KEYS}
        fixed = {n: slug_value(v) for n, v in self.posttrain_path_settings().items()}
        params: dict[str, Any] = {}
        configured = ", ".join(v.get("label") or self.posttrain_variant_slug(v) for v in self.posttrain_variants())
        for part in ([] if slug == "default" else slug.split(",")):
            name, sep, text = part.partition("=")
            if sep and name not in props and fixed.get(name) == text:
                continue
            if not sep or name not in props:
                raise ValueError(f"posttrain_lm path component {slug!r}: {part!r} is not <key>=<value> with key in "
                                 f"{', '.join(sorted(props))} (configured variants: {configured or 'none'})")
            if props[name].get("type") == "array":  # betas: numbers joined with "+" (config.slug_value)
                try:
                    params[name] = [float(x) for x in text.split("+")]
                except ValueError:
                    raise ValueError(f"posttrain_lm path component {slug!r}: `{part}` is not numbers joined with "
                                     f"'+'") from None
                continue
            params[name] = _slug_scalar("posttrain_lm", name, text, props[name])
        errors = list(defaults_validator(item).iter_errors(params))
        if errors:
            raise ValueError(f"posttrain_lm path component {slug!r}: "
                             + "; ".join(f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in errors))
        if self.posttrain_variant_slug(params) != slug:
            raise ValueError(f"posttrain_lm path component {slug!r}: with this config these settings are named "
                             f"{self.posttrain_variant_slug(params)!r}; use that path")
        return {**settings_of(params), "label": ""}

    def posttrain_id(self, source: str, variant: str | None = None) -> str:
        """``{source}/posttrain/{slug}`` of the posttrain_lm variant ``variant`` (label or path component;
        None = the first configured one)."""
        return f"{source}/{POSTTRAIN}/{self.posttrain_slug(variant)}"

    @staticmethod
    def posttrain_dir(model: str, source: str, slug: str) -> str:
        return f"results/{model}/posttrain/lm/{source}/{slug}"

    def check_source(self, model: str, ckpt: str, key: str) -> None:
        """Raise ValueError (naming config key ``key``) unless ``ckpt`` is a checkpoint id this config can build
        on ``model``: dense, or a registered method, a target label and a valid path component of it, each
        optionally followed by /posttrain/<valid posttrain_lm path component>."""
        if not re.fullmatch(CKPT_RE, ckpt):
            raise ValueError(f"config key `{key}`: value {ckpt!r} is not a checkpoint id; allowed: dense or "
                             f"<method>/<target label>/<variant path>, optionally + /{POSTTRAIN}/<posttrain_lm "
                             f"variant>")
        split = split_posttrain(ckpt)
        base = split[0] if split else ckpt
        if base != "dense":
            method, _target, slug = base.split("/")
            if method not in registry.REGISTRY:
                raise ValueError(f"config key `{key}`: value {ckpt!r} names method {method!r}, which is not "
                                 f"registered; allowed: {', '.join(registry.keys())}")
            try:
                self.variant(method, slug, model)
            except ValueError as exc:
                raise ValueError(f"config key `{key}`: value {ckpt!r}: {exc}") from None
        if split:
            try:
                self.posttrain_slug(split[1])  # a label or a path component
            except ValueError as exc:
                raise ValueError(f"config key `{key}`: value {ckpt!r}: {exc}") from None


    def posttrain_data(self) -> CalibrationSpec:
        """The training chunks of LM post-training (``posttrain_lm.data``, a calibration set)."""
        from .distill.data import training_data_spec

        return training_data_spec(self.posttrain_cfg()["data"])

    def posttrain_data_path(self, model: str) -> str:
        return self.calib_path(model, self.posttrain_data())

    # ------------------------------------------------------------------ LaCo Tables 6/24 and 21 (extra targets)
    def laco_table06_rows(self) -> list[dict[str, str]]:
        """[{row, model, checkpoint}] of LaCo Tables 6/24: Dense, LaCo, LaCo+post-train, LaCo+post-train+re-prune
        (``posttrain_lm.tables.table06_reprune``); [] when not configured."""
        t = (self.posttrain_cfg().get("tables") or {}).get("table06_reprune")
        if not t:
            return []
        derived = t["model"]
        base, pt = self.derived_checkpoint(derived)
        source = split_posttrain(pt)[0]
        return [{"row": "Dense*", "model": base, "checkpoint": "dense"},
                {"row": "LaCo", "model": base, "checkpoint": source},
                {"row": "LaCo+post-train", "model": base, "checkpoint": pt},
                {"row": "LaCo+post-train+re-prune", "model": derived, "checkpoint": t["checkpoint"]}]

    def laco_table21_rows(self) -> list[dict[str, str]]:
        """[{row, model, checkpoint}] of LaCo Table 21: every configured checkpoint, and it post-trained."""
        t = (self.posttrain_cfg().get("tables") or {}).get("table21")
        if not t:
            return []
        model = t.get("model") or self.run_models[0]
        out = []
        for c in t["checkpoints"]:
            pt = self.posttrain_id(c, t.get("variant"))
            out += [{"row": c, "model": model, "checkpoint": c}, {"row": f"{c}+post-train", "model": model,
                                                                  "checkpoint": pt}]
        return out

    def laco_posttrain_rows(self, stem: str, required: bool = False) -> list[dict[str, str]]:
        """The rows of ``posttrain_lm.tables.<stem>`` (table06_reprune or table21); with ``required`` an
        unconfigured table raises, naming the key."""
        rows = self.laco_table06_rows() if stem == "table06_reprune" else self.laco_table21_rows()
        if required and not rows:
            allowed = ("{model: <a derived model whose checkpoint is <LaCo checkpoint>/posttrain/<variant>>, "
                       "checkpoint: <its re-pruned checkpoint, e.g. laco/n6/default>}" if stem == "table06_reprune"
                       else "{checkpoints: [laco/sp45/default, llm_pruner/sp45/default], variant: null}")
            raise ValueError(f"config key `posttrain_lm.tables.{stem}`: value null; allowed: {allowed} "
                             f"(config/config.yaml and config/paper.yaml set it)")
        return rows

    def check_posttrain_tables(self) -> None:
        """Reject table settings that name an unknown or non-derived model or a checkpoint this config cannot build."""
        tables = self.posttrain_cfg().get("tables") or {}
        t6 = tables.get("table06_reprune")
        if t6:
            derived = self.derived_models()
            if t6["model"] not in derived:
                raise ValueError(f"config key `posttrain_lm.tables.table06_reprune.model`: value {t6['model']!r} is "
                                 f"not a derived model (models.<name>.source: derived); allowed: "
                                 f"{', '.join(derived) or '(none configured)'}")
            if split_posttrain(self.derived_checkpoint(t6["model"])[1]) is None:
                raise ValueError(f"config key `models.{t6['model']}.checkpoint`: value "
                                 f"{derived[t6['model']]['checkpoint']!r} is not post-trained; allowed for "
                                 f"posttrain_lm.tables.table06_reprune: <checkpoint>/posttrain/<variant>")
            self.check_source(t6["model"], t6["checkpoint"], "posttrain_lm.tables.table06_reprune.checkpoint")
        t21 = tables.get("table21")
        if t21:
            model = t21.get("model") or self.run_models[0]
            if model not in self.config["models"]:
                raise ValueError(f"config key `posttrain_lm.tables.table21.model`: value {model!r} is not a model; "
                                 f"allowed: {', '.join(self.config['models'])}")
            for i, c in enumerate(t21["checkpoints"]):
                self.check_source(model, c, f"posttrain_lm.tables.table21.checkpoints[{i}]")
            self.posttrain_slug(t21.get("variant"))

    def laco_posttrain_inputs(self, rows: list[dict[str, str]]) -> dict[str, list[str]]:
        """metrics.json and checkpoint directory of every row."""
        return {"metrics": [self.metrics_path(r["model"], r["checkpoint"]) for r in rows],
                "ckpts": [self.checkpoint_dir(r["model"], r["checkpoint"]) for r in rows]}

    # ------------------------------------------------------------------ derived models (re-pruning)
    def derived_models(self) -> dict[str, dict[str, Any]]:
        """{name: entry} of the models whose dense directory is a checkpoint of another model."""
        return {m: e for m, e in self.config["models"].items() if (e or {}).get("source") == "derived"}

    def derived_checkpoint(self, model: str) -> tuple[str, str]:
        """(base model, checkpoint id with its posttrain variant resolved to a path component) of derived
        ``model``; the config's ``checkpoint`` may name the posttrain variant by its label."""
        e = self.config["models"][model]
        ckpt = e["checkpoint"]
        split = split_posttrain(ckpt)
        if split:
            ckpt = f"{split[0]}/{POSTTRAIN}/{self.posttrain_slug(split[1])}"
        return e["derived_from"], ckpt

    def derived_source_dir(self, model: str) -> str:
        base, ckpt = self.derived_checkpoint(model)
        return self.checkpoint_dir(base, ckpt)

    def derived_chain(self, model: str) -> list[dict[str, str]]:
        """[{model, checkpoint}] from the original model to ``model`` (what its provenance names)."""
        chain: list[dict[str, str]] = []
        while model in self.derived_models():
            base, ckpt = self.derived_checkpoint(model)
            chain.insert(0, {"model": base, "checkpoint": ckpt, "as": model})
            model = base
        return chain

    def check_derived(self) -> None:
        """Reject a derived model whose base is unknown, that derives from itself (a cycle) or whose checkpoint
        this config cannot build, naming the key, the value and what is allowed."""
        models = self.config["models"]
        for name, e in self.derived_models().items():
            base = e["derived_from"]
            if base not in models or base == name:
                allowed = ", ".join(m for m in models if m != name)
                raise ValueError(f"config key `models.{name}.derived_from`: value {base!r} is not a model; "
                                 f"allowed: {allowed}")
            seen, m = {name}, base
            while m in self.derived_models():
                if m in seen:
                    raise ValueError(f"config key `models.{name}.derived_from`: value {base!r} leads back to "
                                     f"{name!r} (a cycle); allowed: a chain that ends at a non-derived model")
                seen.add(m)
                m = models[m]["derived_from"]
            self.check_source(base, e["checkpoint"], f"models.{name}.checkpoint")

    # ------------------------------------------------------------------ tables
    @staticmethod
    def table_files(stem: str) -> list[str]:
        """results/tables/<stem>.{csv,md,tex}"""
        return [f"{TABLES}/{stem}.{ext}" for ext in ("csv", "md", "tex")]

    def table3_paper_models(self, paper_config: str | Path) -> dict[str, dict[str, Any]]:
        """The paper's models (their ``architecture`` blocks in ``paper_config``) not already in run.table3_models.

        Configs only, no weights: with run.table3_paper_models (default true) every run, the embedded default
        too, shows the paper's seven models in Table 3 beside its own and compares them with the paper.
        """
        if not self.config["run"].get("table3_paper_models", True):
            return {}
        paper_models = yaml.safe_load(Path(paper_config).read_text())["models"]
        return {
            m: {"architecture": e["architecture"], "paper_name": e.get("paper_name"), "config_json": None}
            for m, e in paper_models.items()
            if m not in self.config["run"]["table3_models"] and e.get("architecture")
        }

    def all_table_outputs(self) -> list[str]:
        """Everything ``all_tables`` builds."""
        out = self.table_files("table03_sparsity") + self.table_files("results")
        for m in self.run_models:
            out += self.scores_outputs(m)
        wanted = (self.config.get("laco_tables") or {}).get("in_all_tables") and self.method_cfg("laco").get("enabled")
        laco = self.laco_table_outputs() if wanted else []
        return (out + self.come_ablation_outputs() + self.table4_outputs() + self.figure_outputs()
                + self.posttrain_outputs() + self.mka_tables().all_tables_outputs() + laco)

    def mka_tables(self):
        """MKA's tables and figures (config tables.mka): :class:`layerpuzzle.plan_mka.MkaTables`."""
        from .plan_mka import MkaTables

        return MkaTables(self)


def split_posttrain(ckpt: str) -> tuple[str, str] | None:
    """``(source, slug)`` of a post-trained checkpoint id ``{source}/posttrain/{slug}``, else None."""
    source, sep, slug = ckpt.rpartition(f"/{POSTTRAIN}/")
    return (source, slug) if sep and source and "/" not in slug else None


def _target(t: float | int | str) -> float | str:
    """A configured target as the plan keeps it: a float fraction, or an ``n<k>`` label."""
    return t if isinstance(t, str) else float(t)


def _slug_scalar(key: str, name: str, text: str, schema: dict[str, Any]) -> Any:
    """One slug value read with the type its schema gives (``inf`` for numbers, ``true``/``false``)."""
    types = schema.get("type", [])
    types = [types] if isinstance(types, str) else list(types)
    if "enum" in schema:
        for v in schema["enum"]:
            if slug_value(v) == text:
                return copy.deepcopy(v)
        raise ValueError(f"`{name}={text}` is not allowed; allowed: "
                         f"{', '.join(slug_value(v) for v in schema['enum'])}")
    if "boolean" in types and text in ("true", "false"):
        return text == "true"
    if "integer" in types:
        try:
            return int(text)
        except ValueError:
            pass
    if "number" in types:
        try:
            value = float(text)
            return int(value) if value.is_integer() and "integer" in types else value
        except ValueError:
            pass
    if "null" in types and text == "None":
        return None
    if "string" in types:
        return text
    allowed = "/".join(types) or "a value"
    raise ValueError(f"`{name}={text}` cannot be read as {allowed} (lists and mappings cannot be "
                     f"given by path; configure such a variant under methods.{key}.variants)")

