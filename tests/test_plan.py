"""layerpuzzle.plan: the checkpoint lists, variants, labels and paths the workflow wires (no Snakemake)."""
import copy

import pytest

from layerpuzzle.config import load_schema
from layerpuzzle.data.calibration import CalibrationSpec
from layerpuzzle.plan import Plan

from conftest import REPO, default_plan, load_validated_config

MODEL = "smollm2-135m"


def plan_with(methods: dict) -> Plan:
    """The embedded default with ``methods`` merged into its methods block (before validation)."""
    import yaml

    raw = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    for key, value in methods.items():
        raw.setdefault("methods", {}).setdefault(key, {}).update(value)
    from layerpuzzle.config import canonical, validate_config

    cfg = canonical(validate_config(raw, REPO / "config" / "schema.yaml"))
    return Plan(cfg, load_schema(REPO / "config" / "schema.yaml"))


def test_the_default_checkpoints_in_registry_order():
    ids = default_plan().checkpoints_of(MODEL)
    assert ids == [
        "dense",
        "mag_plus/sp30/plus_heuristic=true",
        "taylor_plus/sp30/accumulate=signed_sum,plus_heuristic=true",
        "shortgpt/sp30/last_layer_output=raw",
        "sleb/sp30/early_barrier=1,latter_barrier=1",
        "fusegpt_mi/sp30/default",
        "fusegpt_mif/sp30/coef_init=kaiming,init_seed=10,variant=described",
        "fusegpt_mif/sp30/variant=released",
        "mka/sp30/fusion=described,kernel=described",
        "mka/sp30/fusion=released,kernel=released",
        "laco/sp30/variant=described",
        "laco/sp30/variant=released",
        "come/sp30/default",
        "come_p/sp30/default",
        "come_mp/sp30/" + default_plan().variants("come_mp", MODEL)[0].slug,
        *[f"come_sp/sp30/{v.slug}" for v in default_plan().variants("come_sp", MODEL)],
        "fusegpt_train/sp30/" + default_plan().variants("fusegpt_train", MODEL)[0].slug,
        "streamline/sp30/" + default_plan().variants("streamline", MODEL)[0].slug,
        "reverse/sp30/keep_last=0",
    ]
    assert len(ids) == 20  # dense + the 19 checkpoints all_tables evaluates


def test_labels_are_derived_from_the_variant():
    plan = default_plan()
    come_sp = plan.variants("come_sp", MODEL)
    assert [v.label for v in come_sp] == ["", "tau=100"]  # first unlabelled: no label; then its own label
    mif = plan.variants("fusegpt_mif", MODEL)
    assert [v.label for v in mif] == ["", "released"]
    # a variant without a label that is not the first is shown by its path component
    plan = plan_with({"sleb": {"variants": [{}, {"early_barrier": 2}]}})
    assert [v.label for v in plan.variants("sleb", MODEL)] == ["", "early_barrier=2,latter_barrier=1"]


def test_any_valid_slug_names_a_variant_by_path():
    plan = default_plan()
    v = plan.variant("sleb", "early_barrier=3,latter_barrier=2", MODEL)
    assert not v.configured and v.settings == {"early_barrier": 3, "latter_barrier": 2}
    assert v.label == "early_barrier=3,latter_barrier=2"
    assert plan.variant_params("sleb", "early_barrier=3,latter_barrier=2", MODEL) == {
        "early_barrier": 3, "latter_barrier": 2, "label": "early_barrier=3,latter_barrier=2"}
    # booleans, enums and numbers are read with their schema types
    assert plan.variant("mag_plus", "plus_heuristic=false", MODEL).settings == {"plus_heuristic": False}
    assert plan.variant("come", "p=inf", MODEL).settings == {"p": float("inf")}
    assert plan.variant("come", "layers_per_merge=3", MODEL).settings == {"layers_per_merge": 3}
    # a configured one is found whatever `enabled` says
    assert plan.variant("laco", "variant=released", MODEL).label == "released"


@pytest.mark.parametrize("key, slug, message", [
    ("sleb", "early_barrier=2", "named 'early_barrier=2,latter_barrier=1'"),  # not canonical: defaults are named
    ("sleb", "barrier=2", "'barrier=2' is not <key>=<value> with key in early_barrier, latter_barrier, nll"),
    ("come", "sbi_estimator=median", "`sbi_estimator=median` is not allowed; allowed: cosine_mean, released"),
    ("come", "layers_per_merge=two", "`layers_per_merge=two` cannot be read as integer"),
    ("come", "layers_per_merge=0", "0 is less than the minimum of 2"),
    ("reverse", "default", "named 'keep_last=0'"),
])
def test_bad_slugs_are_rejected_naming_what_is_allowed(key, slug, message):
    with pytest.raises(ValueError) as err:
        default_plan().variant(key, slug, MODEL)
    assert message in str(err.value) and repr(slug) in str(err.value)


def test_method_level_settings_are_in_the_path():
    """methods.come.p: 2 must not write to come/sp30/default (the issue's example)."""
    plan = plan_with({"come": {"p": 2}})
    assert plan.method_checkpoints("come", MODEL) == ["come/sp30/p=2"]
    v = plan.variant("come", "p=2", MODEL)
    assert v.configured and v.settings == {}  # the configured variant, with the method-level p
    assert plan.come_settings("come", "p=2", MODEL)["p"] == 2.0


def test_every_method_names_its_calibration_set_the_same_way():
    plan = default_plan()
    fusegpt = plan.method_calibration("fusegpt_mi")
    assert fusegpt.sampling == "random_windows" and fusegpt.id.endswith("-rw")
    assert plan.calib_path(MODEL, fusegpt) == f"results/{MODEL}/calib/{fusegpt.id}.safetensors"
    assert CalibrationSpec.parse(fusegpt.id) == fusegpt
    sleb = plan.dlp_calib("sleb")
    assert CalibrationSpec.parse(sleb).sampling == "rows"
    assert plan.dlp_calib("mag_plus") == "data-free"
    come = plan.come_calibration("come", "default", MODEL)
    assert plan.calib_path(MODEL, come) == f"results/{MODEL}/calib/wikitext2-n64-s10-len512.safetensors"


def test_random_window_training_data_is_a_calibration_set():
    plan = plan_with({"fusegpt_train": {"data_sampling": "random_windows"}})
    spec = plan.training_data("fusegpt_train")
    assert spec.sampling == "random_windows"
    assert plan.training_data_path("fusegpt_train", MODEL) == f"results/{MODEL}/calib/{spec.id}.safetensors"
    bad = plan_with({"fusegpt_train": {"data_sampling": "random_windows",
                                       "data": {"dataset": "mmlu", "n": 8, "seed": 1, "seq_len": 64,
                                                "selection": "per_subject"}}})
    with pytest.raises(ValueError, match=r"methods.fusegpt_train.data_sampling.*selection 'global'"):
        bad.training_data("fusegpt_train")


def test_a_method_without_what_it_starts_from_is_skipped(capsys):
    plan = plan_with({"come": {"enabled": False}})
    assert "come_sp" not in plan.enabled_methods() and "come_mp" not in plan.enabled_methods()
    assert "streamline" in plan.enabled_methods()
    assert "no enabled methods.come variant" in capsys.readouterr().err
    assert not any(c.startswith(("come/", "come_sp/", "come_mp/")) for c in plan.checkpoints_of(MODEL))


def test_schema_fragments_of_unregistered_methods_are_rejected():
    schema = load_schema(REPO / "config" / "schema.yaml")
    schema = copy.deepcopy(schema)
    schema["properties"]["methods"]["properties"]["toy"] = {"type": "object"}
    with pytest.raises(ValueError, match="unregistered methods: toy"):
        Plan(load_validated_config(), schema)


def test_all_table_outputs_of_the_default():
    outs = default_plan().all_table_outputs()
    assert len(outs) == len(set(outs))
    assert "results/tables/results.csv" in outs and "results/tables/table04_layer_order.csv" in outs
    assert "results/tables/table_posttrain.csv" in outs and f"results/figures/{MODEL}/bi_sbi.png" in outs
    assert not any("table11_p" in o for o in outs)  # the ablations are extra targets by default
