"""MKA's named targets seen through Snakemake on the tiny config (dry runs)."""
import re

import pytest
import yaml

from workflow_utils import scheduled_jobs, snakemake, tiny_config

pytestmark = pytest.mark.slow  # each test builds a DAG with Snakemake


def _config(tmp_path, mka, tasks_by_target=None):
    cfg = tiny_config(tmp_path, enable=("reverse", "mka", "shortgpt"))
    c = yaml.safe_load(cfg.read_text())
    c["tables"] = {"mka": mka}
    if tasks_by_target:
        c["evaluation"]["tasks_by_target"] = tasks_by_target
    cfg.write_text(yaml.safe_dump(c))
    return cfg


def test_mka_table3_4_schedules_the_sweep_on_mmlu_only(tmp_path):
    """Sweep k = 1, 2 of MKA, Reverse and ShortGPT: six checkpoints evaluated on MMLU alone (tasks_by_target),
    the dense model on every task, one mka_curves job."""
    cfg = _config(tmp_path, {"sweep": {"layers": [1, 2]}}, {"n1": ["mmlu"], "n2": ["mmlu"]})
    out = snakemake(tmp_path, cfg, "-n", "mka_table3_4").stdout
    assert scheduled_jobs(out) == {
        "prepare_model": 1, "calibration_set": 1, "dlp_order_reverse": 1, "dlp_order_shortgpt": 1,
        "dlp_checkpoint": 4, "mka_similarity": 1, "mka": 2, "evaluate_checkpoint": 1, "evaluate_checkpoint_mmlu": 6,
        "mka_curves": 1, "mka_table3_4": 1}
    evaluated = set(re.findall(r"results/random-llama/eval/(\S+?)/metrics\.json", out))
    assert {e.split("/")[0] + "/" + e.split("/")[1] for e in evaluated if e != "dense"} == {
        f"{m}/n{k}" for m in ("mka", "reverse", "shortgpt") for k in (1, 2)}
    assert "dense" in evaluated


def test_an_empty_grid_fails_naming_the_key(tmp_path):
    res = snakemake(tmp_path, _config(tmp_path, {}), "-n", "mka_table3_4", check=False)
    assert res.returncode != 0
    assert "`tables.mka.sweep.layers` is empty" in res.stdout + res.stderr


def test_fig3_and_fig5_schedule_the_similarity_jobs(tmp_path):
    cfg = _config(tmp_path, {"similarity": {"target": "n2"}})
    out = snakemake(tmp_path, cfg, "-n", "mka_fig3", "mka_fig5").stdout
    assert scheduled_jobs(out) == {
        "prepare_model": 1, "calibration_set": 1, "mka_similarity": 1, "mka": 1, "layer_similarity": 2,
        "mka_similarity_checkpoint": 1, "mka_fig3": 1, "mka_fig5": 1}


def test_fig6_without_the_mmlu_sample_log_fails_before_any_job(tmp_path):
    """The sweep's evaluations keep no per-document MMLU log by default: mka_fig6 is refused when the DAG is
    built (not after the sweep, where it once failed after 41 min), naming the key."""
    res = snakemake(tmp_path, _config(tmp_path, {"sweep": {"layers": [1]}}), "-n", "mka_fig6", check=False)
    assert res.returncode != 0
    out = res.stdout + res.stderr
    assert "`evaluation.tasks.mmlu.log_samples` is not true" in out
    assert "evaluate_checkpoint" not in out


FIG6 = ["college_medicine", "college_biology", "high_school_psychology", "college_physics"]


def _fig6_config(tmp_path):
    """config/mka_fig6.yaml's settings on the tiny model: Fig. 6's subjects (2 questions each) with MMLU's
    per-document log, MKA drawn alone, the sweep (k = 1) on MMLU only."""
    cfg = _config(tmp_path, {"sweep": {"layers": [1], "subject_methods": ["mka"]}}, {"n1": ["mmlu"]})
    c = yaml.safe_load(cfg.read_text())
    c["evaluation"]["tasks"]["mmlu"] = {"limit": 2, "log_samples": True, "subjects": FIG6}
    cfg.write_text(yaml.safe_dump(c))
    return cfg


def test_fig6_with_subject_methods_evaluates_only_the_dense_model_and_those_methods(tmp_path):
    out = snakemake(tmp_path, _fig6_config(tmp_path), "-n", "mka_fig6").stdout
    assert scheduled_jobs(out) == {"prepare_model": 1, "mka_similarity": 1, "mka": 1, "evaluate_checkpoint": 1,
                                   "evaluate_checkpoint_mmlu": 1, "mka_fig6": 1}


def test_fig6_builds_from_the_subjects_evaluated(tmp_path):
    """End to end on the tiny model: the sweep's MMLU is the 4 subjects' first 2 questions each, and Fig. 6's
    table has exactly those (2 documents per subject and point)."""
    import pandas as pd

    snakemake(tmp_path, _fig6_config(tmp_path), "--cores", "2", "mka_fig6")
    t = pd.read_csv(tmp_path / "results" / "tables" / "mka_fig6_subjects.csv")
    assert sorted(set(t["Subject"])) == sorted(FIG6)
    assert set(t["Method"]) == {"Vanilla", "MKA"} and set(t["Documents"]) == {2}
    assert set(t["Accuracy (%)"]) <= {0.0, 50.0, 100.0}
    raw = yaml.safe_load((next((tmp_path / "results" / "random-llama" / "eval" / "mka" / "n1").glob("*"))
                          / "task-mmlu.raw.json").read_text())
    assert sorted(s["doc"]["subject"] for s in raw["samples"]["mirror_mmlu"]) == sorted(FIG6 * 2)
    assert (tmp_path / "results" / "figures" / "mka" / "fig6_mmlu_subjects.png").stat().st_size > 0
