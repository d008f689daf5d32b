# Shared wiring: config validation, wildcard constraints, PLAN (every path, variant and label:
# layerpuzzle.plan), per-rule environments and resources. Logic lives in the package, not here.
import re
from pathlib import Path

from layerpuzzle.config import (ConfigError, canonical, check_references, is_layer_label, load_schema,
                               target_fraction, target_param, validate_config)
from layerpuzzle.data.calibration import CALIB_ID_RE
from layerpuzzle.data.text_sources import MIRROR_FILES, PERPLEXITY_DATASETS, resolve_mirror
from layerpuzzle.evaluation.local_tasks import benchmark_mirror_files
from layerpuzzle.methods.come.variants import EXECUTION_KEYS, model_note
from layerpuzzle.methods.registry import rule_files
from layerpuzzle.models.sources import run_dtype  # a variant's own `dtype`, else the model entry's
from layerpuzzle.plan import BASE_CKPT_RE, CKPT_RE, SCHEME_RE, FIGURES, SLUG_RE, TABLES, TARGET_RE, Plan
from layerpuzzle.plan_mka import MkaTables


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
try:  # derived models and the post-training tables' checkpoints: before any job runs
    PLAN.check_derived()
    PLAN.check_posttrain_tables()
except ValueError as _exc:
    raise ConfigError(f"invalid config:\n  - {_exc}") from None
METHOD_RULE_FILES = rule_files()  # included by the Snakefile

MIRROR = resolve_mirror(config["data"]["mirror"])
MIRROR_PARAM = str(MIRROR) if MIRROR else ""
RES = config["resources"]
# Threads of an evaluation job (resources.eval_threads; null = resources.threads).
EVAL_THREADS = RES.get("eval_threads") or RES["threads"]
# Scheduling order only (results do not depend on it): the model jobs that take resources.threads start
# before ready evaluations. Otherwise a 1-thread evaluation takes the one free core and a 2-thread job
# waits behind it with the other core idle (451 s of the 47.1-min embedded run; with this, about 41.6 min:
# README "Measured run time").
MODEL_JOB_PRIORITY = 1
_NEVER = r"(?!x)x"
DERIVED_MODEL_RE = "|".join(re.escape(m) for m in PLAN.derived_models()) or _NEVER
ORIGINAL_MODEL_RE = "|".join(re.escape(m) for m in config["models"] if m not in PLAN.derived_models()) or _NEVER


wildcard_constraints:
    model="|".join(re.escape(m) for m in config["models"]),
    calib=CALIB_ID_RE,
    scoring=r"(raw|final_norm)-span\d+",
    dataset="|".join(PERPLEXITY_DATASETS),
    task="|".join(config["evaluation"]["tasks"]),
    ckpt=CKPT_RE,
    variant=SLUG_RE,  # a method's path component never holds a `/` (post-processing stages extend ids with one)


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


# ------------------------------------------------------------------ per-stage wiring (rule params and inputs)
# evaluation (rules/evaluate.smk)
EVAL = config["evaluation"]
PPL_KEYS = {"wikitext2": ["wikitext2/test", "wikitext2/test_skeleton"], "c4": ["c4/validation"]}


def eval_mirror_inputs_of(tasks):
    """Input function: the mirror files an evaluation of `tasks` reads (perplexity corpora and benchmark
    data), tracked and hashed."""

    def inputs(wildcards):
        files = mirror_inputs(*[k for d in EVAL["perplexity"]["datasets"] for k in PPL_KEYS[d]])
        if MIRROR:
            files += benchmark_mirror_files(MIRROR, list(tasks))
        return files

    return inputs


# direct layer removal (rules/dlp_baselines.smk)
def dlp_common_params(key):
    return dict(
        method=key,
        model=lambda wc: wc.model,
        variant=lambda wc: PLAN.variant(key, wc.variant, wc.model).settings,
        settings=PLAN.dlp_settings(key),
        dtype=model_dtype,
        device=model_device(),
        seed=config["seed"],
    )


# weight merging (rules/merge_baselines.smk)
def merge_cfg(key):
    return config["methods"][key]


def fusegpt_params(key, fuse):
    cfg = merge_cfg(key)
    out = dict(
        key=key,
        fuse=fuse,
        model=lambda wc: wc.model,
        target=lambda wc: target_param(wc.target),
        variant=variant_params(key),
        calibration=cfg["calibration"],
        batch_size=cfg["batch_size"],
        offload_states=cfg["offload_states"],
        dtype=model_dtype,
        device=model_device(),
        seed=config["seed"],
    )
    if fuse:
        out.update(group_size=cfg["group_size"], coef_rank=cfg["coef_rank"], lora_rank=cfg["lora_rank"])
    return out


# CoMe (rules/come.smk)
def come_rule_params(key):
    cfg = config["methods"][key]
    return dict(
        model=lambda wc: wc.model,
        settings=lambda wc: PLAN.come_settings(key, wc.variant, wc.model),
        calibration=lambda wc: PLAN.come_calibration(key, wc.variant, wc.model),
        execution={k: cfg[k] for k in EXECUTION_KEYS},
        target_fraction=lambda wc: target_param(wc.target),
        label=lambda wc: PLAN.variant_label(key, wc.variant, wc.model),
        note=lambda wc: model_note(cfg, wc.model) or "",
        seed=config["seed"],
        dtype=model_dtype,
        device=model_device(),
    )


def come_calib_path(key):
    return lambda wc: PLAN.calib_path(wc.model, PLAN.come_calibration(key, wc.variant, wc.model))


# post-training (rules/posttrain.smk)
def pt_settings(key):
    return config["methods"].get(key) or {}


def pt_data(key):
    """The training chunks: a calibration set (FuseGPT's random windows with data_sampling random_windows)."""
    return lambda wc: PLAN.training_data_path(key, wc.model)


def pt_come_dir(key):
    return lambda wc: f"results/{wc.model}/pruned/come/{wc.target}/{PLAN.come_source(key, wc.model)}"


def pt_teacher(key):
    """The stored teacher activations `key` reads ([] when it streams the teacher)."""
    return lambda wc: PLAN.teacher_path(key, wc.model, wc.target) or []


def pt_params(key):
    return dict(
        method=key,
        model=lambda wc: wc.model,
        variant=lambda wc: PLAN.variant_params(key, wc.slug, wc.model),
        target=lambda wc: target_param(wc.target),
        data=pt_settings(key).get("data"),
        checkpoint_every=pt_settings(key).get("checkpoint_every", 8),
        state_dir=lambda wc: f"results/{wc.model}/train_state/{key}/{wc.target}/{wc.slug}",
        dtype=lambda wc: run_dtype(PLAN.variant_params(key, wc.slug, wc.model), model_param(wc.model, "dtype", "auto")),
        device=model_device(),
        seed=config["seed"],
    )


# tables (rules/tables.smk)
PAPER_CONFIG = Path(workflow.basedir) / "config" / "paper.yaml"


def table3_config_inputs(wildcards=None):
    """Prepared model directories of the Table 3 models that carry no `architecture:` block."""
    return [
        get_model_dir(m)
        for m in config["run"]["table3_models"]
        if not config["models"][m].get("architecture")
    ]


def table3_paper_models():
    """The paper's models (configs only, no weights) that Table 3 shows beside ours: PLAN.table3_paper_models."""
    return PLAN.table3_paper_models(PAPER_CONFIG)


# width pruning (rules/width_pruning.smk)
def width_target(label):
    """The sparsity fraction LLM-Pruner / SliceGPT prune to; they prune widths, so a layer count is refused."""
    if is_layer_label(label):
        raise ValueError(f"target {label!r}: LLM-Pruner and SliceGPT prune widths, not layers; allowed: sparsity "
                         f"targets (fractions, labels sp<percent>)")
    return target_fraction(label)


# MKA's tables and figures (rules/mka_tables.smk): layerpuzzle.plan_mka
MKA = MkaTables(PLAN)
MKA_OUT = MKA.outputs()


def mka_metrics(points_of):
    return lambda wc: [p["metrics"] for p in points_of()]


def mka_dense_dirs(wildcards=None):
    """The prepared dense models: their config.json gives L and the parameter counts."""
    return [get_model_dir(m) for m in MKA.models]


def mka_outputs(name):
    return MKA_OUT.get(name, [])


def mka_reported(name, label):
    files = [p for p in mka_outputs(name) if not p.endswith(".png")]
    return reported(files, "mka.rst", "MKA (Liu et al. 2024)", label) if files else []


def mka_figure(name, label):
    return [report(p, caption="../report/captions/mka.rst", category="MKA (Liu et al. 2024)",
                   subcategory="all models", labels={"figure": label}) for p in mka_outputs(name)
            if p.endswith(".png")]


def mka_similarity_inputs(wildcards=None):
    """{"<model>|<ckpt>": {"measures": layer_similarity parquet, "npib": NPIB parquet}} of Figs. 3 and 5."""
    out = {}
    for m in MKA.models:
        for c in MKA.similarity_ckpts(m):
            out[f"{m}|{c}"] = {"measures": MKA.similarity_path(m, c),
                               "npib": MKA.npib_ckpt_path(m, c, MKA.npib_kernel())}
    return out


# ------------------------------------------------------------------ helpers of the post-processing and LaCo table rules
# rules/oneshot.smk
def oneshot_checked(wc):
    """The scheme, after PLAN has refused a bad scheme or source (raised while the DAG is built)."""
    PLAN.check_oneshot_source(wc.model, wc.source)
    PLAN.check_oneshot_scheme(wc.model, wc.scheme)
    return wc.scheme


# rules/lm_posttrain.smk
def laco_table_inputs(stem):
    """Input functions of a LaCo post-training table: the rows' metrics and checkpoints, and the dense
    directories of derived models (their pruning.json holds the earlier pruning step). A target whose
    checkpoints are not configured fails at DAG time, naming the config key."""

    def rows(wc):
        return PLAN.laco_posttrain_rows(stem, required=True)

    return dict(metrics=lambda wc: PLAN.laco_posttrain_inputs(rows(wc))["metrics"],
                ckpts=lambda wc: PLAN.laco_posttrain_inputs(rows(wc))["ckpts"],
                bases=lambda wc: list(dict.fromkeys(get_model_dir(r["model"]) for r in rows(wc)
                                                    if r["model"] in PLAN.derived_models())))


# rules/laco_tables.smk
def laco_table_entries():
    return [
        {"model": m, "pruner": row, "ckpt": c, "ckpt_dir": PLAN.checkpoint_dir(m, c),
         "metrics": PLAN.metrics_path(m, c), "efficiency": PLAN.efficiency_path(m, c)}
        for m in PLAN.laco_table_models()
        for row, c in PLAN.laco_table_checkpoints(m).items()
    ]
