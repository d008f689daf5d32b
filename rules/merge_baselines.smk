# Weight-merging baselines (docs/methods/laco.md, docs/methods/mka.md, docs/methods/fusegpt_mi.md): LaCo, MKA, FuseGPT-MI and FuseGPT-MI+F,
# each as described in its paper and as its released code behaves, plus the
# similarity heat maps (BI/SBI from the scores stage, NPIB from MKA).
# Logic: layerpuzzle.methods.{laco,mka,fusegpt}, layerpuzzle.figures.

MERGE_METHODS = ("laco", "mka", "fusegpt_mi", "fusegpt_mif")


def merge_cfg(key):
    return config["methods"][key]


def pruned_dir(key):
    return f"results/{{model}}/pruned/{key}/{{target}}/{{variant}}"


def method_log(key):
    return f"logs/{{model}}/pruned/{key}/{{target}}/{{variant}}.log"


def method_benchmark(key):
    return f"benchmarks/{{model}}/pruned/{key}/{{target}}/{{variant}}.tsv"


# ------------------------------------------------------------------ LaCo (§5)
def laco_search(wc):
    """C, L, H, I, T and the target rule: `search`, then Table 6 overrides for this model and target."""
    cfg = merge_cfg("laco")
    return {**cfg["search"], **((cfg["per_model_target"].get(wc.model) or {}).get(wc.target) or {})}


rule laco:
    input:
        model=get_model_dir,
    output:
        ckpt=directory(pruned_dir("laco")),
    wildcard_constraints:
        target=TARGET_RE,
    params:
        model=lambda wc: wc.model,
        target=lambda wc: target_fraction(wc.target),
        variant=lambda wc: variant_of("laco", wc.variant, wc.model),
        search=laco_search,
        sentences=merge_cfg("laco")["sentences"],
        dtype=lambda wc: model_param(wc.model, "dtype", "auto"),
        device=model_device(),
        seed=config["seed"],
    log:
        method_log("laco"),
    benchmark:
        method_benchmark("laco")
    threads: 1  # 5 short sentences: one thread is faster than two (small matrices)
    resources:
        **heavy_resources(),
    conda:
        ENV_MODEL
    script:
        "../workflow/scripts/laco.py"


# ------------------------------------------------------------------ MKA (§6)
def mka_similarity_path(model, kernel):
    return f"results/{model}/mka/npib-{kernel}.parquet"


def mka_kernels():
    return sorted({v["kernel"] for v in method_variants("mka")})


# One job per model computes the NPIB matrix of every configured kernel from one forward pass.
rule mka_similarity:
    input:
        model=get_model_dir,
        data=mirror_inputs("mmlu/test"),
    output:
        npib=[f"results/{{model}}/mka/npib-{k}.parquet" for k in mka_kernels()],
        embeddings=[f"results/{{model}}/mka/embeddings-{k}.parquet" for k in mka_kernels()],
        prov="results/{model}/mka/npib.prov.json",
    params:
        model=lambda wc: wc.model,
        kernels=mka_kernels(),
        data=merge_cfg("mka")["data"],
        manifold=merge_cfg("mka")["manifold"],
        npib=merge_cfg("mka")["npib"],
        mirror=MIRROR_PARAM,
        dtype=lambda wc: model_param(wc.model, "dtype", "auto"),
        device=model_device(),
        seed=config["seed"],
    log:
        "logs/{model}/mka/npib.log",
    benchmark:
        "benchmarks/{model}/mka/npib.tsv"
    threads: RES["threads"]
    resources:
        **heavy_resources(),
    conda:
        ENV_MODEL
    script:
        "../workflow/scripts/mka_similarity.py"


rule mka:
    input:
        model=get_model_dir,
        npib=lambda wc: mka_similarity_path(wc.model, variant_of("mka", wc.variant, wc.model)["kernel"]),
    output:
        ckpt=directory(pruned_dir("mka")),
    wildcard_constraints:
        target=TARGET_RE,
    params:
        model=lambda wc: wc.model,
        target=lambda wc: target_fraction(wc.target),
        variant=lambda wc: variant_of("mka", wc.variant, wc.model),
        beta=merge_cfg("mka")["beta"],
        dtype=lambda wc: model_param(wc.model, "dtype", "auto"),
        device=model_device(),
        seed=config["seed"],
    log:
        method_log("mka"),
    benchmark:
        method_benchmark("mka")
    threads: RES["threads"]
    resources:
        **heavy_resources(),
    conda:
        ENV_MODEL
    script:
        "../workflow/scripts/mka.py"


# ------------------------------------------------------------------ FuseGPT (§7)
FUSEGPT_CORPUS_KEYS = {"wikitext2": "wikitext2/train", "c4": "c4/validation", "pg19": "pg19/train",
                       "alpaca": "alpaca/train"}


def fusegpt_calib_id(key):
    c = merge_cfg(key)["calibration"]
    return f"{c['sampling']}-{c['dataset']}-n{c['n']}-s{c['seed']}-len{c['seq_len']}"


def fusegpt_calib_path(model, key):
    return f"results/{model}/fusegpt/calib/{fusegpt_calib_id(key)}.safetensors"


rule fusegpt_calibration:
    input:
        model=get_model_dir,
        data=lambda wc: mirror_inputs(FUSEGPT_CORPUS_KEYS[wc.fcalib.split("-")[1]]),
    output:
        calib="results/{model}/fusegpt/calib/{fcalib}.safetensors",
        prov="results/{model}/fusegpt/calib/{fcalib}.prov.json",
    wildcard_constraints:
        fcalib=r"(random_windows|rows)-[a-z0-9]+-n\d+-s\d+-len\d+",
    params:
        fcalib=lambda wc: wc.fcalib,
        mirror=MIRROR_PARAM,
    log:
        "logs/{model}/fusegpt/calib/{fcalib}.log",
    threads: 1
    conda:
        ENV_TABLES
    script:
        "../workflow/scripts/fusegpt_calibration.py"


def fusegpt_params(key, fuse):
    cfg = merge_cfg(key)
    out = dict(
        key=key,
        fuse=fuse,
        model=lambda wc: wc.model,
        target=lambda wc: target_fraction(wc.target),
        variant=lambda wc: variant_of(key, wc.variant, wc.model),
        calibration=cfg["calibration"],
        batch_size=cfg["batch_size"],
        offload_states=cfg["offload_states"],
        dtype=lambda wc: model_param(wc.model, "dtype", "auto"),
        device=model_device(),
        seed=config["seed"],
    )
    if fuse:
        out.update(group_size=cfg["group_size"], coef_rank=cfg["coef_rank"], lora_rank=cfg["lora_rank"])
    return out


rule fusegpt_mi:
    input:
        model=get_model_dir,
        calib=lambda wc: fusegpt_calib_path(wc.model, "fusegpt_mi"),
    output:
        ckpt=directory(pruned_dir("fusegpt_mi")),
    wildcard_constraints:
        target=TARGET_RE,
    params:
        **fusegpt_params("fusegpt_mi", False),
    log:
        method_log("fusegpt_mi"),
    benchmark:
        method_benchmark("fusegpt_mi")
    threads: merge_cfg("fusegpt_mi")["threads"] or RES["threads"]
    resources:
        **heavy_resources(),
    conda:
        ENV_MODEL
    script:
        "../workflow/scripts/fusegpt.py"


# ------------------------------------------------------------------ FuseGPT-MI order (Table 4)
def fusegpt_mi_order_entries(model):
    """Table 4 rows: per FuseGPT-MI variant, the order of its checkpoint at its highest target (the loop is
    greedy: its first k removals are the k-layer run's); Table 4 shows the levels that order reaches."""
    out = []
    for v in method_variants("fusegpt_mi"):
        top = max(v.get("targets") or config["run"]["targets"])
        slug = variant_path("fusegpt_mi", v, model)
        name = "FuseGPT-MI" + (f" ({v['label']})" if v.get("label") else "")
        out.append({"method": name, "base_method": "FuseGPT-MI", "note": "MI order of the iterative loop",
                    "order": f"results/{model}/orders/fusegpt_mi/{target_label(top)}/{slug}/order.parquet"})
    return out


rule fusegpt_mi_order:
    input:
        ckpt="results/{model}/pruned/fusegpt_mi/{target}/{variant}",
    output:
        order="results/{model}/orders/fusegpt_mi/{target}/{variant}/order.parquet",
        prov="results/{model}/orders/fusegpt_mi/{target}/{variant}/order.prov.json",
    log:
        "logs/{model}/orders/fusegpt_mi/{target}/{variant}.log",
    conda:
        ENV_TABLES
    script:
        "../workflow/scripts/fusegpt_order.py"


TABLE4_ORDER_PROVIDERS.append(fusegpt_mi_order_entries)


rule fusegpt_mif:
    input:
        model=get_model_dir,
        calib=lambda wc: fusegpt_calib_path(wc.model, "fusegpt_mif"),
    output:
        ckpt=directory(pruned_dir("fusegpt_mif")),
    wildcard_constraints:
        target=TARGET_RE,
    params:
        **fusegpt_params("fusegpt_mif", True),
    log:
        method_log("fusegpt_mif"),
    benchmark:
        method_benchmark("fusegpt_mif")
    threads: merge_cfg("fusegpt_mif")["threads"] or RES["threads"]
    resources:
        **heavy_resources(),
    conda:
        ENV_MODEL
    script:
        "../workflow/scripts/fusegpt.py"


for _key in MERGE_METHODS:
    register_method(_key)


# ------------------------------------------------------------------ heat maps
FIGURES = "results/figures"


def merge_figure_pngs():
    out = []
    for m in config["run"]["models"]:
        out.append(f"{FIGURES}/{m}/bi_sbi.png")
        out += [f"{FIGURES}/{m}/npib_{k}.png" for k in mka_kernels()]
    return out


def merge_figure_outputs():
    return merge_figure_pngs() + ["results/tables/figures.md"]


rule similarity_heatmaps:
    input:
        scores=[f"{scores_dir(m)}/{f}" for m in config["run"]["models"] for f in ("bi.parquet", "sbi.parquet")],
        npib=[mka_similarity_path(m, k) for m in config["run"]["models"] for k in mka_kernels()],
    output:
        pngs=[report(p, caption="../report/captions/similarity_heatmaps.rst", category="Figures: layer similarity",
                     subcategory="all models", labels={"figure": Path(p).stem}) for p in merge_figure_pngs()],
        index="results/tables/figures.md",
        prov="results/figures/figures.prov.json",
    params:
        models=config["run"]["models"],
        scores_dirs={m: scores_dir(m) for m in config["run"]["models"]},
        npib_paths={m: {k: mka_similarity_path(m, k) for k in mka_kernels()} for m in config["run"]["models"]},
        figures_dir=FIGURES,
    log:
        "logs/figures/similarity_heatmaps.log",
    conda:
        ENV_TABLES
    script:
        "../workflow/scripts/similarity_heatmap.py"


TABLE_PROVIDERS.append(merge_figure_outputs)
