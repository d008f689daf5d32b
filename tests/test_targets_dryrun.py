"""Layer-count targets and per-target task lists seen through Snakemake (dry runs; one small real run)."""
import json
import re

import pytest
import yaml

from conftest import REPO
from workflow_utils import scheduled_jobs, snakemake, tiny_config

pytestmark = pytest.mark.slow  # each test builds a DAG with Snakemake (15-60 s)

# `snakemake -n all_tables` of the embedded default (config/config.yaml), job counts per rule
DEFAULT_JOBS = {
    "all_tables": 1, "calibration_set": 8, "come": 1, "come_mp": 1, "come_p": 1, "come_sp": 2, "dlp_checkpoint": 5,
    "dlp_order_mag_plus": 1, "dlp_order_reverse": 1, "dlp_order_shortgpt": 1, "dlp_order_sleb": 1,
    "dlp_order_taylor_plus": 1, "evaluate_checkpoint": 20, "fusegpt_mi": 1, "fusegpt_mi_order": 1, "fusegpt_mif": 2,
    "fusegpt_train": 1, "laco": 2, "layer_scores": 1, "mka": 2, "mka_similarity": 1, "posttrain_teacher": 1,
    "prepare_model": 1, "results_table": 1, "similarity_heatmaps": 1, "streamline": 1, "table04_layer_order": 1,
    "table07_posttrain": 1, "table3_sparsity": 1, "table_posttrain": 1,
}


def _config(tmp_path, targets, tasks_by_target=None, enable=("reverse", "mka")):
    cfg = tiny_config(tmp_path, enable=enable)
    c = yaml.safe_load(cfg.read_text())
    c["run"]["targets"] = targets
    if tasks_by_target is not None:
        c["evaluation"]["tasks_by_target"] = tasks_by_target
    cfg.write_text(yaml.safe_dump(c))
    return cfg


def _outputs(out, rule):
    """{wildcard ckpt: [output paths]} of every job of ``rule`` in a dry run's listing."""
    jobs, current, outputs = {}, None, []
    for line in out.splitlines():
        m = re.match(r"^rule (\S+):$", line)
        if m:
            current, outputs = m.group(1), []
        elif current == rule and line.strip().startswith("output: "):
            outputs = line.strip()[len("output: "):].split(", ")
        elif current == rule and line.strip().startswith("wildcards: "):
            jobs[re.search(r"ckpt=(\S+)$", line).group(1)] = outputs  # the last wildcard (a slug holds commas)
    return jobs


def _job_field(out, field, default):
    """{rule: set of values of `field` over its jobs} of a dry run's listing. Snakemake prints `threads: N` only
    above 1 and `priority: N` only above 0, so a job without the line has `default`."""
    jobs, current = {}, None
    for line in out.splitlines():
        m = re.match(r"^(?:local)?rule (\S+):$", line)
        if m:
            current = m.group(1)
            jobs.setdefault(current, []).append(default)
        elif current and line.strip().startswith(f"{field}: "):
            jobs[current][-1] = int(line.split(":")[1])
        elif not line.startswith(" "):
            current = None
    return {rule: set(values) for rule, values in jobs.items()}


def test_the_embedded_default_schedules_the_same_jobs(tmp_path):
    # --cores 2 as the README's main command: a dry run caps every job's threads at its cores (default 1)
    res = snakemake(tmp_path, REPO / "config" / "config.yaml", "-n", "--cores", "2", "all_tables")
    out = res.stdout + res.stderr
    assert scheduled_jobs(out) == DEFAULT_JOBS
    # resources.eval_threads: 1 -> two evaluations share the 2 cores; the model-heavy jobs keep resources.threads
    threads = _job_field(out, "threads", 1)
    assert threads["evaluate_checkpoint"] == {1}
    assert threads["come"] == threads["come_p"] == threads["dlp_order_sleb"] == {2}
    # the jobs that take both cores start before ready evaluations (MODEL_JOB_PRIORITY): order only
    priority = _job_field(out, "priority", 0)
    assert {rule for rule, p in priority.items() if p == {1}} == {
        rule for rule, t in threads.items() if t == {2}} | {"fusegpt_mi", "fusegpt_mif"}
    assert priority["evaluate_checkpoint"] == priority["calibration_set"] == {0}
    targets = set(re.findall(r"results/smollm2-135m/pruned/[^/\s]+/([^/\s]+)/", out))
    assert targets == {"sp30"}


def test_the_embedded_laco_tables_prune_the_width_methods_to_lacos_achieved_ratio(tmp_path):
    """The extra target laco_tables on the embedded default: LLM-Pruner and SliceGPT at sp28.9 (LaCo's 11 of 30
    layers = 28.95 %), LaCo at sp30, and the four efficiency jobs; all_tables (above) builds none of the width
    methods."""
    res = snakemake(tmp_path, REPO / "config" / "config.yaml", "-n", "laco_tables")
    out = res.stdout + res.stderr
    jobs = scheduled_jobs(out)
    assert {k: jobs.get(k) for k in ("llm_pruner", "slicegpt", "efficiency", "laco_tables")} == {
        "llm_pruner": 1, "slicegpt": 1, "efficiency": 4, "laco_tables": 1}
    targets = set(re.findall(r"results/smollm2-135m/pruned/([^/\s]+)/(sp[^/\s]+)/", out))
    assert {(m, t) for m, t in targets if m in ("llm_pruner", "slicegpt")} == {("llm_pruner", "sp28.9"),
                                                                              ("slicegpt", "sp28.9")}
    assert {t for m, t in targets if m == "laco"} == {"sp30"}


def test_layer_count_target_and_restricted_task_list(tmp_path, mirror):
    """run.targets [0.25, "n3"] with evaluation.tasks_by_target {n3: [mmlu]}: the n3 checkpoints are built at
    their own paths with {"layers": 3} for the job, and evaluated on MMLU only; dense and sp25 on all seven."""
    cfg = _config(tmp_path, [0.25, "n3"], {"n3": ["mmlu"]})
    res = snakemake(tmp_path, cfg, "-n", "all_evaluations")
    out = res.stdout + res.stderr
    jobs = scheduled_jobs(out)
    assert jobs["dlp_checkpoint"] == 2 and jobs["mka"] == 4  # reverse, two MKA variants: at sp25 and n3 each
    for path in ("results/random-llama/pruned/reverse/n3/keep_last=0",
                 "results/random-llama/pruned/mka/n3/fusion=described,kernel=described",
                 "results/random-llama/pruned/mka/n3/fusion=released,kernel=released"):
        assert f"output: {path}\n" in out
    assert jobs["evaluate_checkpoint"] == 4 and jobs["evaluate_checkpoint_mmlu"] == 3
    full, mmlu = _outputs(out, "evaluate_checkpoint"), _outputs(out, "evaluate_checkpoint_mmlu")
    assert set(full) == {"dense", "reverse/sp25/keep_last=0", "mka/sp25/fusion=described,kernel=described",
                         "mka/sp25/fusion=released,kernel=released"}
    assert set(mmlu) == {"reverse/n3/keep_last=0", "mka/n3/fusion=described,kernel=described",
                         "mka/n3/fusion=released,kernel=released"}
    for ckpt, outputs in mmlu.items():
        tasks = sorted(m.group(1) for o in outputs if (m := re.search(r"/task-([a-z_]+)\.json$", o)))
        assert tasks == ["mmlu"], ckpt
        assert f"results/random-llama/eval/{ckpt}/metrics.json" in outputs
    for ckpt, outputs in full.items():
        assert len([o for o in outputs if re.search(r"/task-[a-z_]+\.json$", o)]) == 7, ckpt


def test_a_layer_count_the_model_cannot_take_stops_the_dry_run(tmp_path, mirror):
    res = snakemake(tmp_path, _config(tmp_path, [0.25, "n8"]), "-n", "all_evaluations", check=False)
    out = res.stdout + res.stderr
    assert res.returncode != 0
    assert ("config key `run.targets[1]`: value 'n8' removes 8 layers, but model 'random-llama' has 8; "
            "allowed: n1..n7 (at least one layer kept)") in out
    assert "Job stats" not in out


def test_a_checkpoint_at_n3_is_built_and_evaluated_on_mmlu_only(tmp_path, mirror):
    """The real jobs: rule dlp_checkpoint removes 3 layers for n3, the MMLU-only evaluation writes one task."""
    cfg = _config(tmp_path, ["n3"], {"n3": ["mmlu"]}, enable=("reverse",))
    c = yaml.safe_load(cfg.read_text())
    c["evaluation"]["perplexity"]["datasets"] = ["wikitext2"]
    cfg.write_text(yaml.safe_dump(c))
    metrics = "results/random-llama/eval/reverse/n3/keep_last=0/metrics.json"
    snakemake(tmp_path, cfg, "--cores", "1", metrics)
    rec = json.loads((tmp_path / metrics).read_text())
    assert list(rec["tasks"]) == ["mmlu"] and rec["tasks"]["mmlu"]["n_samples"] > 0
    assert rec["removed_layers"] == 3 and rec["target_layers"] == 3 and rec["dense_layers"] == 8
    assert rec["target_pct"] is None and rec["sparsity_pct"] == 33.7157
    ckpt = tmp_path / "results/random-llama/pruned/reverse/n3/keep_last=0"
    assert json.loads((ckpt / "config.json").read_text())["num_hidden_layers"] == 5
    prov = json.loads((ckpt / "provenance.json").read_text())
    assert prov["params"]["fraction"] == {"layers": 3}
    assert not list((tmp_path / "results/random-llama/eval/reverse/n3/keep_last=0").glob("task-arc*"))
