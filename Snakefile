# layerpuzzle: CoMe ("Layer as Puzzle Pieces") and its baselines as one DAG.
# This file holds the config, the includes and the target rules only; the stages
# live in rules/*.smk and their logic in the layerpuzzle package (src/).

configfile: "config/config.yaml"


include: "rules/common.smk"
include: "rules/models.smk"
include: "rules/calibration.smk"
include: "rules/scores.smk"
include: "rules/evaluate.smk"
include: "rules/come.smk"
include: "rules/dlp_baselines.smk"
include: "rules/merge_baselines.smk"
include: "rules/posttrain.smk"
include: "rules/tables.smk"
include: "rules/audit.smk"


rule all_tables:
    default_target: True
    input:
        all_table_outputs(),


rule all_scores:
    input:
        [scores_outputs(m) for m in config["run"]["models"]],


rule all_evaluations:
    input:
        [metrics_path(m, c) for m in config["run"]["models"] for c in checkpoints_of(m)],
