# MKA's experiments (docs/tables.md, "MKA"; config tables.mka): Table 1 (ShortGPT / MKA x SmoothQuant, GPTQ,
# AWQ on MMLU), Table 2 (SparseGPT, ShortGPT, MKA at four compression ratios), Tables 3-4 / Fig. 2 (MMLU vs
# layers removed), Figs. 3 and 5 (layer similarity before/after merging, other measures), Fig. 6 (per-subject
# MMLU). Named targets (mka_table1, mka_table2, mka_table3_4, mka_fig2, mka_fig3, mka_fig5, mka_fig6); in
# all_tables only with tables.mka.in_all_tables. Points, ids and paths: layerpuzzle.plan_mka; tables:
# layerpuzzle.tables.mka; figures: layerpuzzle.figures.mka. Quantized / sparsified checkpoints
# ({source}/oneshot/{scheme}) and every evaluation come from their own rules (rules/evaluate.smk).
# Wiring helpers (MKA, mka_*): rules/common.smk.


rule mka_table1:
    input:
        metrics=mka_metrics(MKA.table1_points),
        dense=mka_dense_dirs,
    output:
        table=mka_reported("mka_table1", "MKA Table 1"),
        prov=f"{TABLES}/mka_table1.prov.json",
    params:
        points=lambda wc: MKA.table1_points(),
        dense={m: get_model_dir(m) for m in MKA.models},
    log:
        "logs/tables/mka_table1.log",
    conda:
        ENV_TABLES
    script:
        "../workflow/scripts/mka_tables.py"


rule mka_table2:
    input:
        metrics=mka_metrics(MKA.table2_points),
        dense=mka_dense_dirs,
    output:
        table=mka_reported("mka_table2", "MKA Table 2"),
        prov=f"{TABLES}/mka_table2.prov.json",
    params:
        points=lambda wc: MKA.table2_points(),
        dense={m: get_model_dir(m) for m in MKA.models},
    log:
        "logs/tables/mka_table2.log",
    conda:
        ENV_TABLES
    script:
        "../workflow/scripts/mka_tables.py"


rule mka_curves:
    input:
        metrics=mka_metrics(MKA.sweep_points),
        dense=mka_dense_dirs,
    output:
        table=mka_reported("mka_table3_4", "MKA Tables 3-4"),
        figure=mka_figure("mka_fig2", "MKA Fig. 2"),
        prov=f"{TABLES}/mka_table3_4.prov.json",
    params:
        points=lambda wc: MKA.sweep_points(),
        dense={m: get_model_dir(m) for m in MKA.models},
    log:
        "logs/tables/mka_table3_4.log",
    conda:
        ENV_TABLES
    script:
        "../workflow/scripts/mka_tables.py"

rule mka_table3_4:
    input:
        mka_outputs("mka_table3_4"),

rule mka_fig2:
    input:
        mka_outputs("mka_fig2"),

rule mka_fig6:
    input:
        raw=lambda wc: MKA.fig6_raw_inputs(),
    output:
        table=mka_reported("mka_fig6", "MKA Fig. 6"),
        figure=mka_figure("mka_fig6", "MKA Fig. 6"),
        prov=f"{TABLES}/mka_fig6_subjects.prov.json",
    params:
        points=lambda wc: MKA.subject_points(),
        subjects=MKA.cfg["sweep"]["subjects"],
    log:
        "logs/tables/mka_fig6.log",
    conda:
        ENV_TABLES
    script:
        "../workflow/scripts/mka_tables.py"


# ------------------------------------------------------------------ Figs. 3 and 5
rule layer_similarity:
    input:
        ckpt=get_checkpoint_dir,
        calib=lambda wc: MKA.similarity_calib_path(wc.model),
    output:
        matrices="results/{model}/similarity/{ckpt}/layer_similarity.parquet",
        prov="results/{model}/similarity/{ckpt}/layer_similarity.prov.json",
    params:
        measures=MKA.cfg["similarity"]["measures"],
        batch_size=config["scores"]["batch_size"],
        dtype=model_dtype,
        device=model_device(),
        seed=config["seed"],
    log:
        "logs/{model}/similarity/{ckpt}.log",
    benchmark:
        "benchmarks/{model}/similarity/{ckpt}.tsv"
    threads: RES["threads"]
    priority: MODEL_JOB_PRIORITY
    resources:
        **heavy_resources(),
    conda:
        ENV_MODEL
    script:
        "../workflow/scripts/layer_similarity.py"


# MKA's NPIB matrix of a (merged) checkpoint: rule mka_similarity's job on the checkpoint instead of the dense model.
rule mka_similarity_checkpoint:
    input:
        model=get_checkpoint_dir,
        data=mirror_inputs("mmlu/test"),
    output:
        npib=["results/{model}/mka/ckpt/{ckpt}/npib-{kernel}.parquet"],
        embeddings=["results/{model}/mka/ckpt/{ckpt}/embeddings-{kernel}.parquet"],
        prov="results/{model}/mka/ckpt/{ckpt}/npib-{kernel}.prov.json",
    wildcard_constraints:
        kernel="described|released",
    params:
        model=lambda wc: wc.model,
        kernels=lambda wc: [wc.kernel],
        data=merge_cfg("mka")["data"],
        manifold=merge_cfg("mka")["manifold"],
        npib=merge_cfg("mka")["npib"],
        mirror=MIRROR_PARAM,
        dtype=model_dtype,
        device=model_device(),
        seed=config["seed"],
    log:
        "logs/{model}/mka/ckpt/{ckpt}/npib-{kernel}.log",
    benchmark:
        "benchmarks/{model}/mka/ckpt/{ckpt}/npib-{kernel}.tsv"
    threads: RES["threads"]
    priority: MODEL_JOB_PRIORITY
    resources:
        **heavy_resources(),
    conda:
        ENV_MODEL
    script:
        "../workflow/scripts/mka_similarity.py"


rule mka_fig3:
    input:
        lambda wc: [p for d in mka_similarity_inputs().values() for p in d.values()],
    output:
        figure=mka_figure("mka_fig3", "MKA Fig. 3"),
        prov=f"{FIGURES}/mka/fig3_merge_similarity.prov.json",
    params:
        matrices=lambda wc: mka_similarity_inputs(),
        kernel=MKA.npib_kernel(),
    log:
        "logs/figures/mka_fig3.log",
    conda:
        ENV_TABLES
    script:
        "../workflow/scripts/mka_figures.py"

rule mka_fig5:
    input:
        lambda wc: [p for k, d in mka_similarity_inputs().items() if k.endswith("|dense") for p in d.values()],
    output:
        figure=mka_figure("mka_fig5", "MKA Fig. 5"),
        prov=f"{FIGURES}/mka/fig5_similarity_measures.prov.json",
    params:
        matrices=lambda wc: {k: d for k, d in mka_similarity_inputs().items() if k.endswith("|dense")},
        kernel=MKA.npib_kernel(),
    log:
        "logs/figures/mka_fig5.log",
    conda:
        ENV_TABLES
    script:
        "../workflow/scripts/mka_figures.py"
