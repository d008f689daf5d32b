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
POSTTRAIN_COME = PLAN.POSTTRAIN_FROM_COME


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
        tdata=CALIB_ID_RE,
        target=TARGET_RE,
        source=SLUG_RE,
    params:
        model=lambda wc: wc.model,
        batch_size=max(pt_settings(k).get("teacher_batch_size", 4) for k in POSTTRAIN_COME),
        dtype=model_dtype,
        device=model_device(),
    log:
        "logs/{model}/teacher/{tdata}/come/{target}/{source}.log",
    benchmark:
        "benchmarks/{model}/teacher/{tdata}/come/{target}/{source}.tsv"
    threads: RES["threads"]
    priority: MODEL_JOB_PRIORITY
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
        slug=SLUG_RE,
    params:
        **pt_params("come_sp"),
        lrs=None,
    log:
        "logs/{model}/posttrain/come_sp/{target}/{slug}.log",
    benchmark:
        "benchmarks/{model}/posttrain/come_sp/{target}/{slug}.tsv"
    threads: RES["threads"]
    priority: MODEL_JOB_PRIORITY
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
        slug=SLUG_RE,
    params:
        **pt_params("come_mp"),
        lrs=lambda wc: pt_settings("come_mp").get("lrs_by_model", {}).get(wc.model),
    log:
        "logs/{model}/posttrain/come_mp/{target}/{slug}.log",
    benchmark:
        "benchmarks/{model}/posttrain/come_mp/{target}/{slug}.tsv"
    threads: RES["threads"]
    priority: MODEL_JOB_PRIORITY
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
        slug=SLUG_RE,
    params:
        **pt_params("streamline"),
    log:
        "logs/{model}/posttrain/streamline/{target}/{slug}.log",
    benchmark:
        "benchmarks/{model}/posttrain/streamline/{target}/{slug}.tsv"
    threads: RES["threads"]
    priority: MODEL_JOB_PRIORITY
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
        slug=SLUG_RE,
    params:
        **pt_params("fusegpt_train"),
    log:
        "logs/{model}/posttrain/fusegpt_train/{target}/{slug}.log",
    benchmark:
        "benchmarks/{model}/posttrain/fusegpt_train/{target}/{slug}.tsv"
    threads: RES["threads"]
    priority: MODEL_JOB_PRIORITY
    resources:
        **heavy_resources(),
    conda:
        ENV_MODEL
    script:
        "../workflow/scripts/posttrain_from_dense.py"


# ------------------------------------------------------------------ tables (inputs: PLAN.posttrain_*)
rule table07_posttrain:
    input:
        ckpts=lambda wc: PLAN.posttrain_checkpoint_dirs(),
        paper=str(Path(workflow.basedir) / "resources" / "paper" / "table07_posttrain.csv"),
    output:
        table=reported(PLAN.table_files("table07_posttrain"), "table07_posttrain.rst", "Table 7: post-training budget",
                       "Table 7"),
        prov=f"{TABLES}/table07_posttrain.prov.json",
    params:
        model_order=PLAN.run_models,
    log:
        "logs/tables/table07_posttrain.log",
    conda:
        ENV_TABLES
    script:
        "../workflow/scripts/posttrain_table07.py"


rule table_posttrain:
    input:
        metrics=lambda wc: PLAN.posttrain_metrics(),
        ckpts=lambda wc: PLAN.posttrain_checkpoint_dirs(),
    output:
        table=reported(PLAN.table_files("table_posttrain"), "table_posttrain.rst", "Post-training results",
                       "Post-training"),
        prov=f"{TABLES}/table_posttrain.prov.json",
    params:
        model_order=PLAN.run_models,
    log:
        "logs/tables/table_posttrain.log",
    conda:
        ENV_TABLES
    script:
        "../workflow/scripts/posttrain_results.py"
