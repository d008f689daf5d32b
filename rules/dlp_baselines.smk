# Direct layer pruning baselines (docs/methods/mag_plus.md, docs/methods/taylor_plus.md, docs/methods/shortgpt.md, docs/methods/sleb.md, docs/tables.md; CoMe Tables 4, 5, 8-10):
#   mag_plus = Mag+, taylor_plus = Taylor+, shortgpt = ShortGPT, sleb = SLEB, reverse = Reverse.
#
# 1. dlp_order_<key>: the method's removal order, computed ONCE per model, calibration set
#    (or "data-free") and variant:
#      results/{model}/orders/<key>/<calib id | data-free>/{variant}/order.parquet
#    SLEB also logs the NLL of every candidate of every step (candidates.parquet). SLEB's
#    greedy order is computed up to the largest target it must serve (the variant's targets
#    and run.table3_targets); a smaller target's order is its prefix.
# 2. dlp_checkpoint: per target, the first n layers of the order removed (n by the Table 3
#    rule), saved with save_pruned under results/{model}/pruned/<key>/{target}/{variant}.
#    register_method puts every enabled variant x target into all_tables' results table.
# 3. table04_layer_order: the orders at run.table3_targets in the paper's Table 4 layout,
#    the paper's orders beside ours for models with a paper_name.

from layerpuzzle.methods.dlp.pipeline import DATA_FREE, DISPLAY_NAMES

DLP_KEYS = list(DISPLAY_NAMES)
DLP_TABLES = "results/tables"


def dlp_settings(key):
    """Method-level settings of `key` (everything but enabled, variants and calibration)."""
    m = config["methods"].get(key) or {}
    return {k: v for k, v in m.items() if k not in ("enabled", "variants", "calibration", "published_orders")}


def dlp_calib(key):
    """The calibration id of method `key`, or 'data-free'."""
    if key in DATA_FREE:
        return "data-free"
    return CalibrationSpec(**config["methods"][key]["calibration"]).id


def dlp_order_path(model, key, slug, name="order.parquet"):
    return f"results/{model}/orders/{key}/{dlp_calib(key)}/{slug}/{name}"


def dlp_variant(key):
    return lambda wc: slug_params(variant_of(key, wc.variant, wc.model))


def dlp_fractions(key):
    """Targets the order must serve: the variant's (or run.targets) and Table 4's levels."""
    def fractions(wc):
        v = variant_of(key, wc.variant, wc.model)
        return sorted({float(t) for t in (v.get("targets") or config["run"]["targets"])}
                      | {float(t) for t in config["run"]["table3_targets"]})
    return fractions


def dlp_label(key, slug, model):
    """The variant label shown in the tables: its `label`, else '' for the first variant, else its slug."""
    variants = method_variants(key) or (config["methods"].get(key) or {}).get("variants", [])
    for i, v in enumerate(variants):
        if variant_path(key, v, model) == slug:
            return v.get("label") or ("" if i == 0 else slug)
    return slug


def dlp_common_params(key):
    return dict(
        method=key,
        model=lambda wc: wc.model,
        variant=dlp_variant(key),
        settings=dlp_settings(key),
        dtype=lambda wc: model_param(wc.model, "dtype", "auto"),
        device=model_device(),
        seed=config["seed"],
    )


# ------------------------------------------------------------------ orders
rule dlp_order_mag_plus:
    input:
        model=get_model_dir,
    output:
        order="results/{model}/orders/mag_plus/data-free/{variant}/order.parquet",
        prov="results/{model}/orders/mag_plus/data-free/{variant}/order.prov.json",
    params:
        **dlp_common_params("mag_plus"),
    log:
        "logs/{model}/orders/mag_plus/data-free/{variant}.log",
    benchmark:
        "benchmarks/{model}/orders/mag_plus/data-free/{variant}.tsv"
    threads: RES["threads"]
    resources:
        **heavy_resources(),
    conda:
        ENV_MODEL
    script:
        "../workflow/scripts/dlp_order.py"


rule dlp_order_reverse:
    input:
        model=get_model_dir,
    output:
        order="results/{model}/orders/reverse/data-free/{variant}/order.parquet",
        prov="results/{model}/orders/reverse/data-free/{variant}/order.prov.json",
    params:
        **dlp_common_params("reverse"),
    log:
        "logs/{model}/orders/reverse/data-free/{variant}.log",
    threads: 1
    conda:
        ENV_TABLES
    script:
        "../workflow/scripts/dlp_order.py"


rule dlp_order_taylor_plus:
    input:
        model=get_model_dir,
        calib=get_calibration,
    output:
        order="results/{model}/orders/taylor_plus/{calib}/{variant}/order.parquet",
        prov="results/{model}/orders/taylor_plus/{calib}/{variant}/order.prov.json",
    params:
        **dlp_common_params("taylor_plus"),
    log:
        "logs/{model}/orders/taylor_plus/{calib}/{variant}.log",
    benchmark:
        "benchmarks/{model}/orders/taylor_plus/{calib}/{variant}.tsv"
    threads: RES["threads"]
    resources:
        **heavy_resources(),
    conda:
        ENV_MODEL
    script:
        "../workflow/scripts/dlp_order.py"


rule dlp_order_shortgpt:
    input:
        model=get_model_dir,
        calib=get_calibration,
    output:
        order="results/{model}/orders/shortgpt/{calib}/{variant}/order.parquet",
        prov="results/{model}/orders/shortgpt/{calib}/{variant}/order.prov.json",
    params:
        **dlp_common_params("shortgpt"),
        # CoMe App. B.1: the ShortGPT paper's order heads LLaMA-2-7B/13B's (config/paper.yaml)
        published=lambda wc: (config["methods"]["shortgpt"].get("published_orders") or {}).get(wc.model),
    log:
        "logs/{model}/orders/shortgpt/{calib}/{variant}.log",
    benchmark:
        "benchmarks/{model}/orders/shortgpt/{calib}/{variant}.tsv"
    threads: RES["threads"]
    resources:
        **heavy_resources(),
    conda:
        ENV_MODEL
    script:
        "../workflow/scripts/dlp_order.py"


rule dlp_order_sleb:
    input:
        model=get_model_dir,
        calib=get_calibration,
    output:
        order="results/{model}/orders/sleb/{calib}/{variant}/order.parquet",
        candidates="results/{model}/orders/sleb/{calib}/{variant}/candidates.parquet",
        prov="results/{model}/orders/sleb/{calib}/{variant}/order.prov.json",
    params:
        **dlp_common_params("sleb"),
        fractions=dlp_fractions("sleb"),
    log:
        "logs/{model}/orders/sleb/{calib}/{variant}.log",
    benchmark:
        "benchmarks/{model}/orders/sleb/{calib}/{variant}.tsv"
    threads: RES["threads"]
    resources:
        **heavy_resources(),
    conda:
        ENV_MODEL
    script:
        "../workflow/scripts/dlp_order.py"


# ------------------------------------------------------------------ checkpoints
rule dlp_checkpoint:
    input:
        model=get_model_dir,
        order=lambda wc: dlp_order_path(wc.model, wc.dlp, wc.variant),
    output:
        ckpt=directory("results/{model}/pruned/{dlp}/{target}/{variant}"),
    wildcard_constraints:
        dlp="|".join(DLP_KEYS),
        target=TARGET_RE,
    params:
        model=lambda wc: wc.model,
        method=lambda wc: wc.dlp,
        variant=lambda wc: slug_params(variant_of(wc.dlp, wc.variant, wc.model)),
        label=lambda wc: dlp_label(wc.dlp, wc.variant, wc.model),
        fraction=lambda wc: target_fraction(wc.target),
        dtype=lambda wc: model_param(wc.model, "dtype", "auto"),
        device=model_device(),
    log:
        "logs/{model}/pruned/{dlp}/{target}/{variant}.log",
    threads: RES["threads"]
    resources:
        **heavy_resources(),
    conda:
        ENV_MODEL
    script:
        "../workflow/scripts/dlp_checkpoint.py"


for _key in DLP_KEYS:
    register_method(_key)


# ------------------------------------------------------------------ Table 4
# Other rule files may add rows (e.g. FuseGPT-MI): functions model -> [{"method", "base_method", "order", "note"}]
# with "order" an order.parquet in the format of layerpuzzle.methods.dlp.order_io.
TABLE4_ORDER_PROVIDERS = []


def table4_entries():
    out = []
    for model in config["run"]["models"]:
        for key in DLP_KEYS:
            for v in method_variants(key):
                slug = variant_path(key, v, model)
                label = dlp_label(key, slug, model)
                name = DISPLAY_NAMES[key]
                out.append({"model": model, "method": f"{name} ({label})" if label else name, "base_method": name,
                            "order": dlp_order_path(model, key, slug), "note": ""})
        for provider in TABLE4_ORDER_PROVIDERS:
            out += [{"model": model, **e} for e in provider(model)]
    return out


def table4_outputs():
    return [f"{DLP_TABLES}/{stem}.{ext}" for stem in ("table04_layer_order", "table04_vs_paper")
            for ext in ("csv", "md", "tex")] if table4_entries() else []


rule table04_layer_order:
    input:
        orders=lambda wc: [e["order"] for e in table4_entries()],
        models=[get_model_dir(m) for m in config["run"]["models"]],
    output:
        table=reported([f"{DLP_TABLES}/table04_layer_order.{ext}" for ext in ("csv", "md", "tex")],
                       "table04_layer_order.rst", "Table 4: layer order", "Table 4"),
        vs_paper=reported([f"{DLP_TABLES}/table04_vs_paper.{ext}" for ext in ("csv", "md", "tex")],
                          "table04_layer_order.rst", "Table 4: layer order", "Table 4 vs paper"),
        prov=f"{DLP_TABLES}/table04_layer_order.prov.json",
    params:
        entries=lambda wc: table4_entries(),  # lazy: rule files included later add providers
        model_dirs={m: get_model_dir(m) for m in config["run"]["models"]},
        paper_names={m: config["models"][m].get("paper_name") for m in config["run"]["models"]},
        levels=config["run"]["table3_targets"],
    log:
        "logs/tables/table04_layer_order.log",
    conda:
        ENV_TABLES
    script:
        "../workflow/scripts/dlp_table4.py"


TABLE_PROVIDERS.append(table4_outputs)
