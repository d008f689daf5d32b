# Shared helpers: config validation, wildcard constraints, path builders (get_*).
import re
from pathlib import Path

from layerpuzzle.config import (
    canonical,
    check_references,
    checkpoint_slug,
    load_schema,
    method_defaults,
    method_path_settings,
    target_label,
    validate_config,
)
from layerpuzzle.data.calibration import CalibrationSpec
from layerpuzzle.data.text_sources import MIRROR_FILES, PERPLEXITY_DATASETS, resolve_mirror
from layerpuzzle.evaluation.local_tasks import benchmark_mirror_files


SCHEMA_FILE = Path(workflow.basedir) / "config" / "schema.yaml"


def validate(config):
    """Schema (with defaults) + cross-references, before any job is scheduled."""
    validate_config(config, SCHEMA_FILE)
    check_references(config)
    ordered = canonical(config)  # key order of the config files must not change any params
    config.clear()
    config.update(ordered)


validate(config)

MIRROR = resolve_mirror(config["data"]["mirror"])
MIRROR_PARAM = str(MIRROR) if MIRROR else ""
RES = config["resources"]
# {target}: sp + the sparsity target in percent (sp30; sp29.9 for a target that is not a whole percent)
TARGET_RE = r"sp\d+(?:\.\d+)?"


wildcard_constraints:
    model="|".join(re.escape(m) for m in config["models"]),
    calib=r"[a-z0-9]+-n\d+-s\d+-len\d+(?:-pex)?",
    scoring=r"(raw|final_norm)-span\d+",
    dataset="|".join(PERPLEXITY_DATASETS),
    task="|".join(config["evaluation"]["tasks"]),
    ckpt=rf"dense|[A-Za-z0-9_+.-]+/{TARGET_RE}/[A-Za-z0-9_.=,+-]+",


# ------------------------------------------------------------------ models
def get_model_dir(wildcards_or_name):
    name = getattr(wildcards_or_name, "model", wildcards_or_name)
    return f"results/{name}/dense"


def model_param(name, key, default=None):
    return config["models"][name].get(key, default)


from layerpuzzle.models.sources import run_dtype  # a variant's own `dtype`, else the model entry's


# ------------------------------------------------------------------ data
def mirror_inputs(*keys):
    """The mirror files a job reads, as inputs (tracked and hashed); none when reading the hub."""
    return [str(MIRROR / MIRROR_FILES[k]) for k in keys] if MIRROR else []


def calib_id(name):
    """The id of the named calibration set (config `calibration.<name>`)."""
    return CalibrationSpec(**config["calibration"][name]).id


def get_calibration(wildcards):
    return f"results/{wildcards.model}/calib/{wildcards.calib}.safetensors"


# ------------------------------------------------------------------ scores
def scoring_id():
    return f"{config['scores']['last_layer_output']}-span{config['scores']['max_span']}"


def scores_dir(model, calib=None, scoring=None):
    calib = calib or calib_id(config["scores"]["calibration"])
    return f"results/{model}/scores/{calib}/{scoring or scoring_id()}"


def scores_outputs(model):
    d = scores_dir(model)
    return [f"{d}/bi.parquet", f"{d}/sbi.parquet", f"{d}/channel_sensitivity.safetensors"]


# ------------------------------------------------------------------ checkpoints
# Method rule files register a function model -> list of checkpoint ids
# ("<method>/<target label>/<variant>") that all_tables evaluates.
CHECKPOINT_PROVIDERS = []


def checkpoints_of(model):
    ids = ["dense"]
    for provider in CHECKPOINT_PROVIDERS:
        ids += provider(model)
    return ids


def get_checkpoint_dir(wildcards):
    if wildcards.ckpt == "dense":
        return get_model_dir(wildcards)
    return f"results/{wildcards.model}/pruned/{wildcards.ckpt}"


def metrics_path(model, ckpt):
    return f"results/{model}/eval/{ckpt}/metrics.json"


def targets():
    """[(fraction, label)] of the configured sparsity targets."""
    return [(t, target_label(t)) for t in config["run"]["targets"]]


# ------------------------------------------------------------------ tables
TABLES = "results/tables"


def table_files(stem):
    """results/tables/<stem>.{csv,md,tex}"""
    return [f"{TABLES}/{stem}.{ext}" for ext in ("csv", "md", "tex")]


def reported(paths, caption, category, label, subcategory="all models"):
    """Table files with the CSV and Markdown marked for `snakemake --report` (LaTeX left out)."""
    return [
        p if p.endswith(".tex") else report(p, caption=f"../report/captions/{caption}", category=category,
                                            subcategory=subcategory, labels={"table": label, "file": Path(p).name})
        for p in paths
    ]


# Method rule files append functions returning extra table/figure paths for all_tables.
TABLE_PROVIDERS = []


# ------------------------------------------------------------------ software environments
# Per-rule conda environments (`--sdm conda`); paths relative to rules/. The jobs import the
# package from this checkout's src/ (see the Snakefile), so the envs hold only its dependencies.
ENV_MODEL = "../envs/model.yaml"
ENV_TABLES = "../envs/tables.yaml"


# ------------------------------------------------------------------ resources
def heavy_resources():
    """Resources of model-heavy rules; `attempt` scales memory and time under --retries."""
    return dict(
        gpu=RES["gpu"],
        mem_mb=lambda wc, attempt: RES["mem_mb"] * attempt,
        runtime=lambda wc, attempt: RES["runtime"] * attempt,
    )


def model_device():
    return config["device"]


# ------------------------------------------------------------------ methods
# A method's settings live under `methods.<key>` (schema: config/methods/<key>.schema.yaml):
#   enabled: bool; variants: list of parameter dicts. A variant's path component is
#   variant_slug(params) (keys `label` and `targets` excluded); `targets` (fractions)
#   overrides run.targets for that variant; `label` is shown in the tables.
from layerpuzzle.config import variant_slug


def method_variants(key):
    m = config["methods"].get(key) or {}
    return m.get("variants", []) if m.get("enabled", False) else []


def slug_params(variant):
    return {k: v for k, v in variant.items() if k not in ("label", "targets")}


# Method-level settings enter the paths too (only where they differ from the schema default, so the
# embedded default's paths are the variants' own slugs): layerpuzzle.config.method_path_settings.
METHOD_SCHEMAS = load_schema(SCHEMA_FILE)["properties"]["methods"]["properties"]
METHOD_DEFAULTS = method_defaults(config, SCHEMA_FILE)


def path_settings(key, model):
    """{name: value} of method `key`'s method-level settings that differ from the schema default, for `model`."""
    return method_path_settings(config["methods"].get(key) or {}, METHOD_DEFAULTS.get(key) or {},
                                METHOD_SCHEMAS.get(key) or {}, model)


def variant_path(key, variant, model):
    """The path component of a variant of method `key` on `model`: its own keys over the method-level
    settings that differ from the defaults (`default` when there are none)."""
    return checkpoint_slug(path_settings(key, model), variant)


def variant_of(key, slug, model):
    """The variant dict of method `key` whose path component on `model` is `slug` (error lists the configured ones)."""
    variants = (config["methods"].get(key) or {}).get("variants", [])
    for v in variants:
        if variant_path(key, v, model) == slug:
            return v
    known = [variant_path(key, v, model) for v in variants]
    raise ValueError(f"method {key!r} has no configured variant {slug!r} on model {model!r}; configured: {known}")


def method_runs_on(key, model):
    """False when method `key` has a `models` list (post-training methods) that leaves `model` out."""
    allowed = (config["methods"].get(key) or {}).get("models")
    return allowed is None or model in allowed


def method_checkpoints(key, model):
    """Checkpoint ids '<key>/<target label>/<slug>' of every enabled variant and target (none for a model
    the method's `models` list leaves out)."""
    out = []
    if not method_runs_on(key, model):
        return out
    for v in method_variants(key):
        fractions = v.get("targets") or config["run"]["targets"]
        for t in fractions:
            out.append(f"{key}/{target_label(t)}/{variant_path(key, v, model)}")
    return out


def register_method(key):
    CHECKPOINT_PROVIDERS.append(lambda model: method_checkpoints(key, model))


from layerpuzzle.config import target_fraction  # 'sp30' -> 0.3, 'sp29.9' -> 0.299
