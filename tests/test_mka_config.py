"""Config tables.mka (MKA's tables): bad grids rejected before any job runs; the points the plan builds."""
import copy

import pytest
import yaml

from conftest import REPO
from layerpuzzle.config import ConfigError, check_references, load_schema, validate_config
from layerpuzzle.plan import Plan
from layerpuzzle.plan_mka import oneshot_id

SCHEMA = REPO / "config" / "schema.yaml"


def merged(*overlays):
    c = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    for o in overlays:
        _merge(c, copy.deepcopy(o))
    return c


def _merge(base, new):
    for k, v in new.items():
        if isinstance(v, dict) and isinstance(base.get(k), dict):
            _merge(base[k], v)
        else:
            base[k] = v


def tiny(mka):
    """A random 8-layer LLaMA with the tables.mka grids ``mka``."""
    return merged({"models": {"tiny": {"source": "random", "arch": "llama"}},
                   "run": {"models": ["tiny"], "table3_models": ["tiny"]}, "tables": {"mka": mka}})


def check(c):
    c = validate_config(c, SCHEMA)
    check_references(c)
    return c


def test_overlays_are_valid():
    check(merged(yaml.safe_load((REPO / "config" / "mka.yaml").read_text())))
    check(merged(yaml.safe_load((REPO / "config" / "paper.yaml").read_text())))


@pytest.mark.parametrize("mka, message", [
    ({"sweep": {"layers": [1, 8]}},
     r"`tables\.mka\.sweep\.layers\[1\]`: value 'n8' removes 8 layers, but model 'tiny' has 8; allowed: n1\.\.n7"),
    ({"table1": {"targets": ["n9"]}},
     r"`tables\.mka\.table1\.targets\[0\]`: value 'n9' removes 9 layers, but model 'tiny' has 8"),
    ({"table1": {"per_model_targets": {"tiny": ["n8"]}}},
     r"`tables\.mka\.table1\.per_model_targets\.tiny\[0\]`: value 'n8' removes 8 layers"),
    ({"table1": {"per_model_targets": {"nope": ["n2"]}}},
     r"`tables\.mka\.table1\.per_model_targets`: key 'nope' is not a model; allowed: smollm2-135m, smollm2-135m-laco-pt, tiny"),
    ({"similarity": {"target": "n8"}}, r"`tables\.mka\.similarity\.target`: value 'n8' removes 8 layers"),
    ({"table2": {"targets": ["n2", "n3"], "sparsegpt": [0.3]}},
     r"`tables\.mka\.table2\.sparsegpt`: value \[0\.3\] has 1 sparsities for 2 levels .*allowed: one fraction in "
     r"\(0, 1\) per level"),
    ({"table2": {"targets": ["n2"], "sparsegpt": [1.0]}}, r"tables\.mka\.table2\.sparsegpt\[0\]"),
    ({"table1": {"schemes": ["gptq-w3a16-g64"]}},
     r"`tables\.mka\.table1\.schemes\[0\]`: value 'gptq-w3a16-g64': .*gptq does not offer w3a16"),
    ({"table1": {"schemes": ["gptq-w4a16-g100"]}}, r"group size g100 is not a power of two"),
    ({"table1": {"schemes": ["sparsegpt-50"]}}, r"tables\.mka\.table1\.schemes\[0\]"),
    ({"sweep": {"layers": [0]}}, r"tables\.mka\.sweep\.layers\[0\]"),
    ({"models": ["nope"]}, r"`tables\.mka\.models\[0\]`: value 'nope' is not a model"),
    ({"similarity": {"target": "n2", "calibration": "wiki"}},
     r"`tables\.mka\.similarity\.calibration`: value 'wiki' is not a calibration set; allowed: come"),
    ({"paper_model": "Llama3-70B"}, r"tables\.mka\.paper_model"),
    ({"sweep": {"subjects": ["college_medicine", "astrology"]}},
     r"`tables\.mka\.sweep\.subjects`: value 'astrology' is not an MMLU subject; allowed: abstract_algebra, anatomy"),
    ({"sweep": {"methods": ["mka"], "subject_methods": ["reverse"]}},
     r"`tables\.mka\.sweep\.subject_methods\[0\]`: value 'reverse' is not a method of the sweep; allowed: mka"),
])
def test_bad_grids_are_rejected(mka, message):
    with pytest.raises(ConfigError, match=message):
        check(tiny(mka))


def test_good_tiny_grid_passes_and_labels_serve_tasks_by_target():
    c = tiny({"sweep": {"layers": [1, 7]}, "table1": {"targets": ["n4"]}})
    c["evaluation"]["tasks_by_target"] = {"n1": ["mmlu"], "n7": ["mmlu"]}
    check(c)


def plan_of(c):
    return Plan(check(c), load_schema(SCHEMA))


def test_points_and_ids():
    plan = plan_of(tiny({"table1": {"targets": ["n3"], "schemes": ["gptq-w4a16-g32"]},
                         "table2": {"targets": ["n2", "n3"], "sparsegpt": [0.25, 0.375]},
                         "sweep": {"layers": [2, 1], "methods": ["mka", "reverse"]}, "similarity": {"target": "n3"}}))
    m = plan.mka_tables()
    mka = plan.variant_path("mka", plan.configured_variants("mka")[0], "tiny")
    sg = plan.variant_path("shortgpt", plan.configured_variants("shortgpt")[0], "tiny")
    assert oneshot_id("dense", "sparsegpt-50") == "dense/oneshot/sparsegpt-50"
    assert [p["ckpt"] for p in m.table1_points()] == [
        "dense", f"shortgpt/n3/{sg}", f"shortgpt/n3/{sg}/oneshot/gptq-w4a16-g32", f"mka/n3/{mka}",
        f"mka/n3/{mka}/oneshot/gptq-w4a16-g32"]
    t2 = m.table2_points()
    assert [(p["ckpt"], p["level"], p["paper_cr"]) for p in t2] == [
        ("dense", 0, 34.375), ("dense/oneshot/sparsegpt-25", 0, 34.375), (f"shortgpt/n2/{sg}", 0, 34.375),
        (f"mka/n2/{mka}", 0, 34.375), ("dense", 1, 37.5), ("dense/oneshot/sparsegpt-37.5", 1, 37.5),
        (f"shortgpt/n3/{sg}", 1, 37.5), (f"mka/n3/{mka}", 1, 37.5)]
    assert t2[1]["metrics"] == "results/tiny/eval/dense/oneshot/sparsegpt-25/metrics.json"
    rev = plan.variant_path("reverse", plan.configured_variants("reverse")[0], "tiny")
    assert [(p["method"], p["layers_removed"], p["ckpt"]) for p in m.sweep_points()] == [
        ("Vanilla", 0, "dense"), ("MKA", 1, f"mka/n1/{mka}"), ("MKA", 2, f"mka/n2/{mka}"),
        ("Reverse", 1, f"reverse/n1/{rev}"), ("Reverse", 2, f"reverse/n2/{rev}")]
    assert m.similarity_ckpts("tiny") == ["dense", f"mka/n3/{mka}"]
    assert m.all_tables_outputs() == []


def test_empty_grid_names_the_key():
    m = plan_of(tiny({})).mka_tables()
    with pytest.raises(ValueError, match=r"`tables\.mka\.sweep\.layers` is empty.*config/mka\.yaml"):
        m.sweep_points()
    with pytest.raises(ValueError, match=r"`tables\.mka\.similarity\.target` is empty"):
        m.similarity_ckpts("tiny")


def test_in_all_tables_adds_the_tables_with_a_grid():
    plan = plan_of(tiny({"in_all_tables": True, "sweep": {"layers": [1]}}))
    extra = plan.mka_tables().all_tables_outputs()
    assert extra == [*plan.table_files("mka_table3_4"), *plan.table_files("mka_curves"),
                     "results/figures/mka/fig2_mmlu_curves.png"]
    assert set(extra) <= set(plan.all_table_outputs())


def test_fig6_needs_the_mmlu_sample_log_before_any_job_runs():
    """Fig. 6 reads MMLU's per-document log: without evaluation.tasks.mmlu.log_samples its inputs raise (the DAG
    is not built), and all_mka leaves it out; with the log its inputs are every sweep point's raw MMLU file."""
    grid = {"sweep": {"layers": [1], "methods": ["mka"]}}
    m = plan_of(tiny(grid)).mka_tables()
    assert not m.mmlu_samples_logged
    with pytest.raises(ValueError, match=r"`evaluation\.tasks\.mmlu\.log_samples` is not true"):
        m.fig6_raw_inputs()
    assert set(m.buildable_outputs()) == {p for name, files in m.outputs().items() if name != "mka_fig6"
                                          for p in files}
    c = tiny(grid)
    c["evaluation"]["tasks"]["mmlu"]["log_samples"] = True
    m = plan_of(c).mka_tables()
    mka = m.slug("mka", "tiny")
    assert m.fig6_raw_inputs() == ["results/tiny/eval/dense/task-mmlu.raw.json",
                                   f"results/tiny/eval/mka/n1/{mka}/task-mmlu.raw.json"]
    assert set(m.buildable_outputs()) == {p for files in m.outputs().values() for p in files}


FIG6 = ["college_medicine", "college_biology", "high_school_psychology", "college_physics"]


def test_fig6_reads_the_subject_methods_and_needs_its_subjects_evaluated():
    """subject_methods limits Fig. 6's inputs (so the evaluations it needs) to the dense model and those methods;
    evaluation.tasks.mmlu.subjects must include Fig. 6's subjects, else mka_fig6 is refused and all_mka omits it."""
    c = tiny({"sweep": {"layers": [1, 2], "methods": ["mka", "reverse"], "subject_methods": ["reverse"]}})
    c["evaluation"]["tasks"]["mmlu"] = {"limit": None, "log_samples": True, "subjects": FIG6[:3]}
    m = plan_of(c).mka_tables()
    assert m.fig6_subjects_missing == ["college_physics"]
    with pytest.raises(ValueError, match=r"draws subjects \['college_physics'\] .* `evaluation\.tasks\.mmlu\.subjects`"):
        m.fig6_raw_inputs()
    assert not set(m.outputs()["mka_fig6"]) & set(m.buildable_outputs())
    c["evaluation"]["tasks"]["mmlu"]["subjects"] = ["abstract_algebra", *FIG6]
    m = plan_of(c).mka_tables()
    rev = m.slug("reverse", "tiny")
    assert m.fig6_raw_inputs() == ["results/tiny/eval/dense/task-mmlu.raw.json",
                                   f"results/tiny/eval/reverse/n1/{rev}/task-mmlu.raw.json",
                                   f"results/tiny/eval/reverse/n2/{rev}/task-mmlu.raw.json"]
    assert [p["method"] for p in m.subject_points()] == ["Vanilla", "Reverse", "Reverse"]
    assert len(m.sweep_points()) == 5  # Tables 3-4 keep both methods
    assert set(m.outputs()["mka_fig6"]) <= set(m.buildable_outputs())


@pytest.mark.parametrize("task, subjects, message", [
    ("mmlu", ["college_physics", "alchemy"],
     r"`evaluation\.tasks\.mmlu\.subjects`: value 'alchemy' is not an MMLU subject; allowed: abstract_algebra"),
    ("arc_easy", ["college_physics"],
     r"`evaluation\.tasks\.arc_easy\.subjects`: MMLU's subjects cannot select the questions of 'arc_easy'; "
     r"allowed: under `evaluation\.tasks\.mmlu` only"),
])
def test_bad_mmlu_subjects_are_rejected(task, subjects, message):
    c = tiny({})
    c["evaluation"]["tasks"][task] = {"subjects": subjects}
    with pytest.raises(ConfigError, match=message):
        check(c)


def test_the_fig6_overlay_evaluates_the_figure_subjects_with_their_log():
    c = check(merged(*(yaml.safe_load((REPO / "config" / f).read_text()) for f in ("mka.yaml", "mka_fig6.yaml"))))
    assert c["evaluation"]["tasks"]["mmlu"] == {"limit": None, "log_samples": True, "subjects": FIG6}
    assert c["tables"]["mka"]["sweep"]["subjects"] == FIG6
    assert set(c["evaluation"]["tasks"]) == {"arc_challenge", "arc_easy", "hellaswag", "openbookqa", "piqa",
                                             "winogrande", "mmlu", "boolq", "race_high"}
    m = Plan(c, load_schema(SCHEMA)).mka_tables()
    assert m.fig6_buildable and {p["key"] for p in m.subject_points()} == {"dense", "mka"}
    assert len(m.fig6_raw_inputs()) == 1 + 15


def test_the_paper_config_logs_mmlu_samples_for_fig6():
    paper = yaml.safe_load((REPO / "config" / "paper.yaml").read_text())
    assert paper["evaluation"]["tasks"]["mmlu"] == {"limit": None, "log_samples": True}
