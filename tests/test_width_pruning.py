"""LLM-Pruner and SliceGPT as workflow methods: bad settings refused before any job (config checks) or before any
weight is loaded (the job), and their uneven checkpoints scored by stock lm-eval exactly as our evaluation does."""
from __future__ import annotations

import copy
import json

import pytest
import torch

from layerpuzzle.config import ConfigError, check_references, validate_config
from layerpuzzle.evaluation.harness import evaluate_task
from layerpuzzle.evaluation.local_tasks import local_task_manager
from layerpuzzle.evaluation.perplexity import perplexity
from layerpuzzle.methods.llm_pruner import prune_width
from layerpuzzle.methods.llm_pruner.pipeline import run_llm_pruner
from layerpuzzle.methods.slicegpt import SliceSettings, save_sliced, slice_model
from layerpuzzle.methods.slicegpt.pipeline import run_slicegpt
from layerpuzzle.models.random_models import build_random_model
from layerpuzzle.models.sources import load_model
from layerpuzzle.models.uneven import save_uneven

from conftest import REPO
from test_config import SCHEMA, default

TINY = {"source": "random", "arch": "llama", "seed": 0, "dtype": "float32"}  # 8 layers


def tiny(**methods):
    c = default()
    c["models"] = {"tiny": dict(TINY)}
    c["run"].update(models=["tiny"], targets=[0.25], table3_models=["tiny"])
    c["methods"] = {**{k: {"enabled": False} for k in c.get("methods") or {}}, **methods}
    c.setdefault("oneshot", {})["build"] = []  # the embedded list names smollm2-135m, not a model here
    return c


# ------------------------------------------------------------------ config: refused before any job runs
@pytest.mark.parametrize("methods, message", [
    ({"llm_pruner": {"enabled": True, "variants": [{"importance": "param_third"}]}},
     "`methods.llm_pruner.variants[0].importance`: value 'param_third' is not allowed; allowed: param_first, "
     "param_second, param_mix"),
    ({"llm_pruner": {"enabled": True, "variants": [{"ratio": 1.0}]}},
     "`methods.llm_pruner.variants[0].ratio`: value 1.0 is not allowed; it must be < 1"),
    ({"llm_pruner": {"enabled": True, "variants": [{"aggregation": "median"}]}},
     "`methods.llm_pruner.variants[0].aggregation`: value 'median' is not allowed; allowed: sum, mean, max, prod, first"),
    ({"slicegpt": {"enabled": True, "variants": [{"slicing": 0}]}},
     "`methods.slicegpt.variants[0].slicing`: value 0 is not allowed; it must be > 0"),
    ({"slicegpt": {"enabled": True, "variants": [{"target_rule": "closest"}]}},
     "allowed: at_most, at_least, nearest"),
    ({"slicegpt": {"enabled": True, "variants": [{"round_interval": 0}]}},
     "`methods.slicegpt.variants[0].round_interval`: value 0 is not allowed; it must be >= 1"),
])
def test_schema_rejects_bad_settings_naming_key_value_and_allowed(methods, message):
    with pytest.raises(ConfigError) as err:
        validate_config(tiny(**methods), SCHEMA)
    assert message in str(err.value)


@pytest.mark.parametrize("variant, message", [
    ({"layers": [4, 12]}, "`methods.llm_pruner.variants[0].layers`: value [4, 12] is outside model 'tiny' (8 layers); "
                          "allowed: [start, end] with 0 <= start < end <= 8"),
    ({"layers": [5, 3]}, "`methods.llm_pruner.variants[0].layers`: value [5, 3] is not a layer range; allowed: "
                         "[start, end] with start < end"),
    ({"layers": [1, 7], "mlp_layers": [0, 9]}, "`methods.llm_pruner.variants[0].mlp_layers`: value [0, 9] is outside"),
])
def test_layer_ranges_are_checked_against_the_known_model_depth(variant, message):
    c = validate_config(tiny(llm_pruner={"enabled": True, "variants": [variant]}), SCHEMA)
    with pytest.raises(ConfigError) as err:
        check_references(c)
    assert message in str(err.value)
    ok = validate_config(tiny(llm_pruner={"enabled": True, "variants": [{"layers": [1, 7]}, {}]}), SCHEMA)
    check_references(ok)  # [1, 7) and the default [4, 6) fit 8 layers
    shallow = copy.deepcopy(ok)
    shallow["models"]["tiny"]["overrides"] = {"num_hidden_layers": 4}
    with pytest.raises(ConfigError, match=r"variants\[1\].layers`: default \[4, 2\] is outside model 'tiny' \(4 layers\)"):
        check_references(shallow)


def test_width_methods_are_off_in_the_embedded_default():
    c = validate_config(default(), SCHEMA)
    assert c["methods"]["llm_pruner"]["enabled"] is False and c["methods"]["slicegpt"]["enabled"] is False


@pytest.fixture(scope="module")
def config_only(tmp_path_factory):
    """A model directory with config.json only: a job that tried to load weights would fail differently."""
    d = tmp_path_factory.mktemp("config_only")
    build_random_model("llama")[0].config.save_pretrained(d)
    return d


def test_jobs_refuse_bad_settings_before_loading_any_weight(config_only, tmp_path):
    common = dict(model_name="tiny", calibration={}, dtype="float32", device="cpu")
    with pytest.raises(ValueError, match=r"LLM-Pruner `layers`: value \(4, 12\) is not allowed for this model of 8 "
                                         r"layers; allowed: \(start, end\) with 0 <= start < end <= 8"):
        run_llm_pruner(str(config_only), "unused", str(tmp_path / "a"), target_fraction=0.25,
                       variant={"layers": [4, 12]}, **common)
    with pytest.raises(ValueError, match=r"`methods.llm_pruner variant key `importance``: value 'x' is not allowed"):
        run_llm_pruner(str(config_only), "unused", str(tmp_path / "a"), target_fraction=0.25,
                       variant={"importance": "x"}, **common)
    with pytest.raises(ValueError, match=r"SliceGPT 'slicing' = 1.5 is not allowed; allowed: a number in \(0, 1\)"):
        run_slicegpt(str(config_only), "unused", str(tmp_path / "b"), target_fraction=0.25,
                     variant={"slicing": 1.5}, **common)
    with pytest.raises(ValueError, match=r"SliceGPT 'target' = 0.99 cannot be met with rule 'at_least'"):
        run_slicegpt(str(config_only), "unused", str(tmp_path / "b"), target_fraction=0.99,
                     variant={"target_rule": "at_least"}, **common)
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


# ------------------------------------------------------------------ stock lm-eval on the uneven checkpoints
LIMIT = 3


def _pruned(tmp):
    model, tok = build_random_model("llama", seed=5)
    calib = torch.randint(0, 256, (4, 32), generator=torch.Generator().manual_seed(0))
    model, rec = prune_width(model, calib, ratio=0.5, layers=(2, 6))
    return model, save_uneven(model, tok, tmp / "llm_pruner", record=rec)


def _sliced(tmp):
    model, tok = build_random_model("llama", seed=6)
    calib = torch.randint(0, 256, (8, 32), generator=torch.Generator().manual_seed(1))
    result = slice_model(model, calib, SliceSettings(slicing=0.25, batch_size=4))
    return model, save_sliced(model, tok, tmp / "slicegpt", result.record)


def _stock(model, tok, task_manager, lm_task):
    """lm-eval's own entry point, given the model object (as its docs show for an in-memory model)."""
    import lm_eval
    from lm_eval.models.huggingface import HFLM

    lm = HFLM(pretrained=model, tokenizer=tok, batch_size=4, max_length=512, device="cpu")
    return lm_eval.simple_evaluate(model=lm, tasks=[lm_task], num_fewshot=0, limit=LIMIT, task_manager=task_manager,
                                   log_samples=True, random_seed=1234, numpy_random_seed=1234, torch_random_seed=1234,
                                   fewshot_random_seed=1234)


@pytest.mark.parametrize("build", [_pruned, _sliced], ids=["llm_pruner", "slicegpt"])
def test_stock_lm_eval_scores_the_uneven_checkpoint_as_our_evaluation(build, tmp_path, mirror, monkeypatch):
    for var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.setenv(var, "1")
    in_memory, out = build(tmp_path)
    loaded, tok = load_model(out)  # uneven_layers.json: config -> rebuilder -> strict load
    flat, raw = evaluate_task(loaded, tok, "arc_easy", mirror=mirror, limit=LIMIT, batch_size=4, max_length=512,
                              seed=1234, device="cpu", log_samples=True)
    with local_task_manager(mirror) as (tm, _):
        stock = _stock(in_memory, tok, tm, "mirror_arc_easy")  # the model as the method left it, never saved
    ours = raw["samples"]["mirror_arc_easy"]
    theirs = stock["samples"]["mirror_arc_easy"]
    assert [s["arguments"] for s in ours] == [[list(a) for a in s["arguments"]] for s in theirs]
    assert [[r[0][0] for r in s["resps"]] for s in ours] == [[r[0][0] for r in s["resps"]] for s in theirs]
    assert flat["value"] == stock["results"]["mirror_arc_easy"]["acc_norm,none"]
    assert flat["n_samples"] == LIMIT

    # perplexity: the reloaded checkpoint gives the in-memory model's exactly
    windows = torch.randint(0, 256, (2, 48), generator=torch.Generator().manual_seed(3))
    a = perplexity(in_memory, windows, progress=False)
    b = perplexity(loaded, windows, progress=False)
    assert a.ppl == b.ppl and torch.isfinite(torch.tensor(a.ppl))
    assert json.loads((out / "uneven_layers.json").read_text())["kind"] in ("width_pruned", "sliced")
