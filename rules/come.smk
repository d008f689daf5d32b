# Stage 3 (CoMe): progressive concatenation merging (Alg. 1) and CoMe-P (Alg. 2) as cached
# checkpoints, and the ablation tables 11-14. Logic: layerpuzzle.methods.come.
#   results/{model}/pruned/come/{target}/{variant}     (rule come)
#   results/{model}/pruned/come_p/{target}/{variant}   (rule come_p)
# {variant} is `default` or the variant's explicit keys (`p=inf`, `calib_rows=16`, ...):
# a configured variant, or any slug of the keys in config/methods/come*.schema.yaml
# (the ablation grid points), so one checkpoint can be rebuilt by its path.
from layerpuzzle.config import settings_digest, variant_slug
from layerpuzzle.tables.come_ablations import ABLATIONS
from layerpuzzle.methods.come.variants import (
    EXECUTION_KEYS,
    ablation_variant,
    model_note,
    parse_slug,
    resolve_calibration,
    resolve_settings,
)


def come_variant(key, slug, model):
    """(explicit params, label) of a variant slug on `model`: a configured variant, else parsed from the slug
    (its method-level parts, which the method's settings already apply, are checked and skipped)."""
    for v in (config["methods"].get(key) or {}).get("variants", []):
        if variant_path(key, v, model) == slug:
            return slug_params(v), v.get("label", "")
    base = path_settings(key, model)
    label = "" if slug == variant_path(key, {}, model) else slug
    fixed = {**base, "settings": settings_digest(base)}  # the method-level parts a slug may carry (or their digest)
    params = parse_slug(key, slug, fixed)
    canonical_slug = variant_path(key, params, model)
    if canonical_slug != slug:  # one path per set of settings: the method-level parts must be named too
        raise ValueError(f"{key} path component {slug!r} on model {model!r}: with this config's method-level "
                         f"settings these settings are named {canonical_slug!r}; use that path")
    return params, label


def come_calibration(key, wc):
    return resolve_calibration(config["methods"][key], come_variant(key, wc.variant, wc.model)[0])


def come_calib_path(key):
    return lambda wc: f"results/{wc.model}/calib/{CalibrationSpec(**come_calibration(key, wc)).id}.safetensors"


def come_rule_params(key):
    cfg = config["methods"][key]
    return dict(
        model=lambda wc: wc.model,
        settings=lambda wc: resolve_settings(key, cfg, wc.model, come_variant(key, wc.variant, wc.model)[0]),
        calibration=lambda wc: come_calibration(key, wc),
        execution={k: cfg[k] for k in EXECUTION_KEYS},
        target_fraction=lambda wc: target_fraction(wc.target),
        label=lambda wc: come_variant(key, wc.variant, wc.model)[1],
        note=lambda wc: model_note(cfg, wc.model) or "",
        seed=config["seed"],
        dtype=lambda wc: model_param(wc.model, "dtype", "auto"),
        device=model_device(),
    )


rule come:
    input:
        model=get_model_dir,
        calib=come_calib_path("come"),
    output:
        ckpt=directory("results/{model}/pruned/come/{target}/{variant}"),
    wildcard_constraints:
        target=TARGET_RE,
        variant=r"[A-Za-z0-9_.=,+-]+",
    params:
        key="come",
        **come_rule_params("come"),
    log:
        "logs/{model}/pruned/come/{target}/{variant}.log",
    benchmark:
        "benchmarks/{model}/pruned/come/{target}/{variant}.tsv"
    threads: RES["threads"]
    resources:
        **heavy_resources(),
    conda:
        ENV_MODEL
    script:
        "../workflow/scripts/come.py"


rule come_p:
    input:
        model=get_model_dir,
        calib=come_calib_path("come_p"),
    output:
        ckpt=directory("results/{model}/pruned/come_p/{target}/{variant}"),
    wildcard_constraints:
        target=TARGET_RE,
        variant=r"[A-Za-z0-9_.=,+-]+",
    params:
        key="come_p",
        **come_rule_params("come_p"),
    log:
        "logs/{model}/pruned/come_p/{target}/{variant}.log",
    benchmark:
        "benchmarks/{model}/pruned/come_p/{target}/{variant}.tsv"
    threads: RES["threads"]
    resources:
        **heavy_resources(),
    conda:
        ENV_MODEL
    script:
        "../workflow/scripts/come.py"


register_method("come")
register_method("come_p")


# ------------------------------------------------------------------ ablations (Tables 11-14)
COME_ABL = config["methods"]["come"]["ablations"]
COME_TABLES = "results/tables"  # = TABLES of tables.smk (included after this file)


def come_table_files(stem):
    return [f"{COME_TABLES}/{stem}.{ext}" for ext in ("csv", "md", "tex")]


def come_ablation_points(stem):
    """[(model, grid value, checkpoint id)] of one ablation table."""
    a = ABLATIONS[stem]
    cfg = config["methods"]["come"]
    label = target_label(COME_ABL["target"])
    out = []
    for m in COME_ABL["models"] or config["run"]["models"]:
        for value in COME_ABL[a.param]:
            slug = variant_path("come", ablation_variant("come", cfg, m, a.param, value), m)
            out.append((m, value, f"come/{label}/{slug}"))
    return out


rule come_ablation_table:
    input:
        metrics=lambda wc: [metrics_path(m, c) for m, _, c in come_ablation_points(wc.stem)],
        dense=lambda wc: sorted({metrics_path(m, "dense") for m, _, _ in come_ablation_points(wc.stem)}),
    output:
        table=reported([f"{COME_TABLES}/{{stem}}.{ext}" for ext in ("csv", "md", "tex")],
                       "come_ablations.rst", "Tables 11-14: CoMe ablations", "{stem}"),
        prov=f"{COME_TABLES}/{{stem}}.prov.json",
    wildcard_constraints:
        stem="|".join(ABLATIONS),
    params:
        stem=lambda wc: wc.stem,
        points=lambda wc: [[m, v] for m, v, _ in come_ablation_points(wc.stem)],
    log:
        "logs/tables/{stem}.log",
    conda:
        ENV_TABLES
    script:
        "../workflow/scripts/come_ablation_table.py"


rule table11_p:
    input:
        come_table_files("table11_p"),


rule table12_calib_scale:
    input:
        come_table_files("table12_calib_scale"),


rule table13_merge_granularity:
    input:
        come_table_files("table13_merge_granularity"),


rule table14_calib_dataset:
    input:
        come_table_files("table14_calib_dataset"),


if COME_ABL["in_all_tables"]:
    TABLE_PROVIDERS.append(lambda: [p for stem in ABLATIONS for p in come_table_files(stem)])
