# Post-training (docs/methods/come_sp.md, docs/methods/come_mp.md, docs/methods/fusegpt_train.md, docs/methods/streamline.md, docs/tables.md; paper Table 7 and the post-training comparison):
#   come_sp = CoMe-sp (Alg. 3), come_mp = CoMe-mp (Alg. 4), streamline = LLM-Streamline,
#   fusegpt_train = FuseGPT with its group-local training.
#
# 1. Training data: each method's `data` ({dataset, n rows, seed, seq_len}) is a calibration-format chunk
#    set built by the calibration_set rule: results/{model}/calib/<id>.safetensors.
# 2. posttrain_teacher: the dense model's outputs at the layers a_i of a CoMe checkpoint's layer map P for
#    every training chunk, computed once per (model, data, CoMe checkpoint) and shared by CoMe-sp and
#    CoMe-mp: results/{model}/teacher/<data id>/come/{target}/<come slug>/activations.safetensors
#    (skipped when methods.<key>.teacher_streaming recomputes the teacher on the fly).
# 3. come_sp / come_mp / streamline / fusegpt_train: the distilled checkpoint
#    results/{model}/pruned/<key>/{target}/{variant} (save_pruned: training.json, loss_curve.png, card).
#    RESUMABLE: the resume state lives in results/{model}/train_state/<key>/{target}/{variant}/ — NOT a
#    declared output, because Snakemake deletes the outputs of a failed job — and is removed after
#    success. A killed job rerun by Snakemake resumes from its last state (layerpuzzle.distill.trainer).
# 4. table07_posttrain (Table 7 from the budgets actually run, beside the paper's) and
#    table_posttrain (Dense, CoMe, CoMe-mp, CoMe-sp, LLM-Streamline, FuseGPT; 7 tasks, Avg, RPT, PPL, T_layer).
# CoMe-sp/-mp need a CoMe checkpoint (rules/come.smk); without an enabled methods.come variant they are
# skipped with a warning. FuseGPT with training needs layerpuzzle.methods.fusegpt.
import sys

from layerpuzzle.distill.data import training_data_spec

POSTTRAIN_KEYS = ("come_sp", "come_mp", "streamline", "fusegpt_train")
POSTTRAIN_COME = ("come_sp", "come_mp")
POSTTRAIN_TABLES = "results/tables"
SLUG = r"[A-Za-z0-9_.=,+-]+"


def pt_settings(key):
    return config["methods"].get(key) or {}


def come_source(key, model=None):
    """Path component (on `model`) of the methods.come variant that `key` distils; None when CoMe is not
    configured. `from_variant` names it by label, by its own keys' slug or by its full path component."""
    come = config["methods"].get("come") or {}
    variants = come.get("variants", []) if come.get("enabled", False) else []
    if not variants:
        return None
    want = pt_settings(key).get("from_variant")
    slugs = [variant_path("come", v, model) for v in variants]
    if want is None:
        return slugs[0]
    for v, slug in zip(variants, slugs):
        if want in (v.get("label"), slug, variant_slug(slug_params(v))):
            return slug
    raise ValueError(f"config key `methods.{key}.from_variant`: value {want!r} is neither the label nor the slug "
                     f"of a methods.come variant; allowed: {', '.join(slugs)}")


def fusegpt_available():
    try:
        import layerpuzzle.methods.fusegpt.fuse_linear  # noqa: F401
        import layerpuzzle.methods.fusegpt.macro_influence  # noqa: F401
    except ImportError:
        return False
    return True


def posttrain_enabled(key):
    if not pt_settings(key).get("enabled", False):
        return False
    if key in POSTTRAIN_COME and come_source(key) is None:
        print(f"[posttrain] methods.{key} skipped: no enabled methods.come variant to distil", file=sys.stderr)
        return False
    if key == "fusegpt_train" and not fusegpt_available():
        print("[posttrain] methods.fusegpt_train skipped: layerpuzzle.methods.fusegpt is not available",
              file=sys.stderr)
        return False
    return True


POSTTRAIN_ENABLED = [k for k in POSTTRAIN_KEYS if posttrain_enabled(k)]
for _key in POSTTRAIN_ENABLED:
    register_method(_key)


def pt_data_id(key):
    return training_data_spec(pt_settings(key)["data"]).id


def pt_data(key):
    """The training chunks: a calibration set, or (fusegpt_train, data_sampling random_windows) FuseGPT's
    random windows of the joined text in sampling order, built by rule fusegpt_calibration."""
    if key == "fusegpt_train" and pt_settings(key).get("data_sampling", "rows") == "random_windows":
        d = pt_settings(key)["data"]
        if d["dataset"] not in FUSEGPT_CORPUS_KEYS or d.get("packing"):
            raise ValueError(f"config key `methods.fusegpt_train.data`: dataset {d['dataset']!r} (packing "
                             f"{d.get('packing')!r}) cannot be sampled as random windows; allowed: datasets "
                             f"{', '.join(FUSEGPT_CORPUS_KEYS)} without packing")
        wid = f"random_windows-{d['dataset']}-n{d['n']}-s{d['seed']}-len{d['seq_len']}"
        return lambda wc: f"results/{wc.model}/fusegpt/calib/{wid}.safetensors"
    return lambda wc: f"results/{wc.model}/calib/{pt_data_id(key)}.safetensors"


def pt_come_dir(key):
    return lambda wc: f"results/{wc.model}/pruned/come/{wc.target}/{come_source(key, wc.model)}"


def pt_teacher(key):
    """The stored teacher activations `key` reads ([] when it streams the teacher)."""
    def teacher(wc):
        if pt_settings(key).get("teacher_streaming", False):
            return []
        return f"results/{wc.model}/teacher/{pt_data_id(key)}/come/{wc.target}/{come_source(key, wc.model)}/activations.safetensors"
    return teacher


def pt_label(key, slug, model):
    """Label shown in the tables: the variant's `label`, else '' for the first variant, else its slug."""
    for i, v in enumerate(pt_settings(key).get("variants", [])):
        if variant_path(key, v, model) == slug:
            return v.get("label") or ("" if i == 0 else slug)
    return slug


def pt_params(key):
    return dict(
        method=key,
        model=lambda wc: wc.model,
        variant=lambda wc: {**variant_of(key, wc.slug, wc.model), "label": pt_label(key, wc.slug, wc.model)},
        target=lambda wc: target_fraction(wc.target),
        data=pt_settings(key).get("data"),
        checkpoint_every=pt_settings(key).get("checkpoint_every", 8),
        state_dir=lambda wc: f"results/{wc.model}/train_state/{key}/{wc.target}/{wc.slug}",
        dtype=lambda wc: run_dtype(variant_of(key, wc.slug, wc.model), model_param(wc.model, "dtype", "auto")),
        device=model_device(),
        seed=config["seed"],
    )


# ------------------------------------------------------------------ teacher activations
rule posttrain_teacher:
    input:
        model=get_model_dir,
        data="results/{model}/calib/{tdata}.safetensors",
        student="results/{model}/pruned/come/{target}/{source}",
    output:
        acts="results/{model}/teacher/{tdata}/come/{target}/{source}/activations.safetensors",
        prov="results/{model}/teacher/{tdata}/come/{target}/{source}/activations.prov.json",
    wildcard_constraints:
        tdata=r"[a-z0-9]+-n\d+-s\d+-len\d+(?:-pex)?",
        target=TARGET_RE,
        source=SLUG,
    params:
        model=lambda wc: wc.model,
        batch_size=max(pt_settings(k).get("teacher_batch_size", 4) for k in POSTTRAIN_COME),
        dtype=lambda wc: model_param(wc.model, "dtype", "auto"),
        device=model_device(),
    log:
        "logs/{model}/teacher/{tdata}/come/{target}/{source}.log",
    benchmark:
        "benchmarks/{model}/teacher/{tdata}/come/{target}/{source}.tsv"
    threads: RES["threads"]
    resources:
        **heavy_resources(),
    conda:
        ENV_MODEL
    script:
        "../workflow/scripts/posttrain_teacher.py"


# ------------------------------------------------------------------ distilled checkpoints
rule come_sp:
    input:
        model=get_model_dir,
        student=pt_come_dir("come_sp"),
        data=pt_data("come_sp"),
        teacher=pt_teacher("come_sp"),
    output:
        ckpt=directory("results/{model}/pruned/come_sp/{target}/{slug}"),
    wildcard_constraints:
        target=TARGET_RE,
        slug=SLUG,
    params:
        **pt_params("come_sp"),
        lrs=None,
    log:
        "logs/{model}/posttrain/come_sp/{target}/{slug}.log",
    benchmark:
        "benchmarks/{model}/posttrain/come_sp/{target}/{slug}.tsv"
    threads: RES["threads"]
    resources:
        **heavy_resources(),
    conda:
        ENV_MODEL
    script:
        "../workflow/scripts/posttrain_come.py"


rule come_mp:
    input:
        model=get_model_dir,
        student=pt_come_dir("come_mp"),
        data=pt_data("come_mp"),
        teacher=pt_teacher("come_mp"),
    output:
        ckpt=directory("results/{model}/pruned/come_mp/{target}/{slug}"),
    wildcard_constraints:
        target=TARGET_RE,
        slug=SLUG,
    params:
        **pt_params("come_mp"),
        lrs=lambda wc: pt_settings("come_mp").get("lrs_by_model", {}).get(wc.model),
    log:
        "logs/{model}/posttrain/come_mp/{target}/{slug}.log",
    benchmark:
        "benchmarks/{model}/posttrain/come_mp/{target}/{slug}.tsv"
    threads: RES["threads"]
    resources:
        **heavy_resources(),
    conda:
        ENV_MODEL
    script:
        "../workflow/scripts/posttrain_come.py"


rule streamline:
    input:
        model=get_model_dir,
        data=pt_data("streamline"),
    output:
        ckpt=directory("results/{model}/pruned/streamline/{target}/{slug}"),
    wildcard_constraints:
        target=TARGET_RE,
        slug=SLUG,
    params:
        **pt_params("streamline"),
    log:
        "logs/{model}/posttrain/streamline/{target}/{slug}.log",
    benchmark:
        "benchmarks/{model}/posttrain/streamline/{target}/{slug}.tsv"
    threads: RES["threads"]
    resources:
        **heavy_resources(),
    conda:
        ENV_MODEL
    script:
        "../workflow/scripts/posttrain_from_dense.py"


rule fusegpt_train:
    input:
        model=get_model_dir,
        data=pt_data("fusegpt_train"),
    output:
        ckpt=directory("results/{model}/pruned/fusegpt_train/{target}/{slug}"),
    wildcard_constraints:
        target=TARGET_RE,
        slug=SLUG,
    params:
        **pt_params("fusegpt_train"),
    log:
        "logs/{model}/posttrain/fusegpt_train/{target}/{slug}.log",
    benchmark:
        "benchmarks/{model}/posttrain/fusegpt_train/{target}/{slug}.tsv"
    threads: RES["threads"]
    resources:
        **heavy_resources(),
    conda:
        ENV_MODEL
    script:
        "../workflow/scripts/posttrain_from_dense.py"


# ------------------------------------------------------------------ tables
def posttrain_checkpoint_ids(model):
    return [c for k in POSTTRAIN_ENABLED for c in method_checkpoints(k, model)]


def posttrain_come_ids(model):
    """The CoMe checkpoints (no post-training) that CoMe-sp/-mp start from, at their targets."""
    ids = set()
    for key in POSTTRAIN_ENABLED:
        if key in POSTTRAIN_COME:
            for c in method_checkpoints(key, model):
                ids.add(f"come/{c.split('/')[1]}/{come_source(key, model)}")
    return sorted(ids)


def posttrain_checkpoint_dirs(wildcards=None):
    return [f"results/{m}/pruned/{c}" for m in config["run"]["models"] for c in posttrain_checkpoint_ids(m)]


def posttrain_metrics(wildcards=None):
    return [metrics_path(m, c) for m in config["run"]["models"]
            for c in ["dense", *posttrain_come_ids(m), *posttrain_checkpoint_ids(m)]]


rule table07_posttrain:
    input:
        ckpts=posttrain_checkpoint_dirs,
        paper=str(Path(workflow.basedir) / "resources" / "paper" / "table07_posttrain.csv"),
    output:
        table=reported(table_files("table07_posttrain"), "table07_posttrain.rst", "Table 7: post-training budget",
                       "Table 7"),
        prov=f"{POSTTRAIN_TABLES}/table07_posttrain.prov.json",
    params:
        model_order=config["run"]["models"],
    log:
        "logs/tables/table07_posttrain.log",
    conda:
        ENV_TABLES
    script:
        "../workflow/scripts/posttrain_table07.py"


rule table_posttrain:
    input:
        metrics=posttrain_metrics,
        ckpts=posttrain_checkpoint_dirs,
    output:
        table=reported(table_files("table_posttrain"), "table_posttrain.rst", "Post-training results",
                       "Post-training"),
        prov=f"{POSTTRAIN_TABLES}/table_posttrain.prov.json",
    params:
        model_order=config["run"]["models"],
    log:
        "logs/tables/table_posttrain.log",
    conda:
        ENV_TABLES
    script:
        "../workflow/scripts/posttrain_results.py"


if POSTTRAIN_ENABLED:
    TABLE_PROVIDERS.append(lambda: table_files("table07_posttrain") + table_files("table_posttrain"))
