# Shared wiring: config validation, wildcard constraints, PLAN (every path, variant and label:
# layerpuzzle.plan), per-rule environments and resources. Logic lives in the package, not here.
import re
from pathlib import Path

from layerpuzzle.config import canonical, check_references, load_schema, target_param, validate_config
from layerpuzzle.data.calibration import CALIB_ID_RE
from layerpuzzle.data.text_sources import MIRROR_FILES, PERPLEXITY_DATASETS, resolve_mirror
from layerpuzzle.evaluation.local_tasks import benchmark_mirror_files
from layerpuzzle.methods.registry import rule_files
from layerpuzzle.models.sources import run_dtype  # a variant's own `dtype`, else the model entry's
from layerpuzzle.plan import CKPT_RE, FIGURES, SLUG_RE, TABLES, TARGET_RE, Plan


SCHEMA_FILE = Path(workflow.basedir) / "config" / "schema.yaml"


def validate(config):
    """Schema (with defaults) + cross-references, before any job is scheduled."""
    validate_config(config, SCHEMA_FILE)
    check_references(config)
    ordered = canonical(config)  # key order of the config files must not change any params
    config.clear()
    config.update(ordered)


validate(config)
PLAN = Plan(config, load_schema(SCHEMA_FILE))
METHOD_RULE_FILES = rule_files()  # included by the Snakefile

MIRROR = resolve_mirror(config["data"]["mirror"])
MIRROR_PARAM = str(MIRROR) if MIRROR else ""
RES = config["resources"]


wildcard_constraints:
    model="|".join(re.escape(m) for m in config["models"]),
    calib=CALIB_ID_RE,
    scoring=r"(raw|final_norm)-span\d+",
    dataset="|".join(PERPLEXITY_DATASETS),
    task="|".join(config["evaluation"]["tasks"]),
    ckpt=CKPT_RE,


# ------------------------------------------------------------------ wiring helpers
def get_model_dir(wildcards_or_name):
    return PLAN.model_dir(getattr(wildcards_or_name, "model", wildcards_or_name))


def model_param(name, key, default=None):
    return PLAN.model_param(name, key, default)


def mirror_inputs(*keys):
    """The mirror files a job reads, as inputs (tracked and hashed); none when reading the hub."""
    return [str(MIRROR / MIRROR_FILES[k]) for k in keys] if MIRROR else []


def get_calibration(wildcards):
    return f"results/{wildcards.model}/calib/{wildcards.calib}.safetensors"


def get_checkpoint_dir(wildcards):
    return PLAN.checkpoint_dir(wildcards.model, wildcards.ckpt)


def reported(paths, caption, category, label, subcategory="all models"):
    """Table files with the CSV and Markdown marked for `snakemake --report` (LaTeX left out)."""
    return [
        p if p.endswith(".tex") else report(p, caption=f"../report/captions/{caption}", category=category,
                                            subcategory=subcategory, labels={"table": label, "file": Path(p).name})
        for p in paths
    ]


def pruned_dir(key):
    return f"results/{{model}}/pruned/{key}/{{target}}/{{variant}}"


def method_log(key):
    return f"logs/{{model}}/pruned/{key}/{{target}}/{{variant}}.log"


def method_benchmark(key):
    return f"benchmarks/{{model}}/pruned/{key}/{{target}}/{{variant}}.tsv"


def variant_params(key):
    """Rule param: the variant (settings, `label` as the tables show it, `targets`) its path names."""
    return lambda wc: PLAN.variant_params(key, wc.variant, wc.model)


def model_dtype(wc):
    return model_param(wc.model, "dtype", "auto")


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
