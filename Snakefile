# layerpuzzle: CoMe ("Layer as Puzzle Pieces") and its baselines as one DAG.
# This file holds the config, the includes and the target rules only; the stages
# live in rules/*.smk, their paths in layerpuzzle.plan and their logic in the layerpuzzle package (src/).

import os
import sys
from pathlib import Path

# Every job (and this process) imports the layerpuzzle package of this checkout: its src/ goes
# first on sys.path and PYTHONPATH, so the per-rule conda environments (envs/) need not install it.
_SRC = str(Path(workflow.basedir) / "src")
sys.path.insert(0, _SRC)
os.environ.update(PYTHONPATH=os.pathsep.join([_SRC] + [p for p in [os.environ.get("PYTHONPATH")] if p]))


configfile: "config/config.yaml"


include: "rules/common.smk"
include: "rules/models.smk"
include: "rules/calibration.smk"
include: "rules/scores.smk"
include: "rules/evaluate.smk"
include: "rules/oneshot.smk"


# The methods' rule files, from the method registry (layerpuzzle.methods.registry). They depend only on
# rules/common.smk (and PLAN), never on each other, so their order does not matter.
for _rule_file in METHOD_RULE_FILES:

    include: _rule_file


include: "rules/efficiency.smk"
include: "rules/lm_posttrain.smk"
include: "rules/tables.smk"
include: "rules/laco_analyses.smk"
include: "rules/mka_tables.smk"
include: "rules/laco_tables.smk"
include: "rules/audit.smk"


rule all_tables:
    default_target: True
    input:
        PLAN.all_table_outputs(),


rule all_scores:
    input:
        [PLAN.scores_outputs(m) for m in PLAN.run_models],


# MKA's tables and figures (rules/mka_tables.smk), each a named target; all of them at once (Fig. 6 only when
# evaluation.tasks.mmlu.log_samples is true: it reads MMLU's per-document log):
rule all_mka:
    input:
        MKA.buildable_outputs(),


rule all_evaluations:
    input:
        PLAN.all_metrics(),


# Not in all_tables: the checkpoints of oneshot.build (llm-compressor's GPTQ / AWQ / SmoothQuant /
# SparseGPT on any checkpoint, docs/quantization.md), built and evaluated.
rule oneshot_all:
    input:
        PLAN.oneshot_metrics(),
