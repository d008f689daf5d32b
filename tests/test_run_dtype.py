"""Per-variant dtype (`dtype` in a method variant) and the model dtype `checkpoint` (the released CoMe code's
`torch_dtype="auto"`); the default variants' paths do not move."""

import json
from pathlib import Path

import pytest
import torch
import yaml

from layerpuzzle.config import validate_config, variant_slug
from layerpuzzle.models.random_models import build_random_model
from layerpuzzle.models.sources import load_model, run_dtype, torch_dtype

ROOT = Path(__file__).resolve().parents[1]

# the slugs of the embedded default's variants before the fidelity switches were added (their paths)
DEFAULT_SLUGS = {
    "streamline": ["accumulation=16,batch_size=4,epochs=1,eval_every=8,grad_clip=5,loss=mse,lr=0.0002,min_lr=5e-05,"
                   "sbi_chunks=8,schedule=per_step,seed=10,steps=24,teacher=stored,val_chunks=4,warmup_ratio=0.01,"
                   "weight_decay=0.001"],
    "come_sp": ["batch_size=2,epochs=1,lr=0.0001,min_lr_ratio=0,seed=10,steps=24,temperature=1,warmup_steps=0,"
                "weight_decay=0.01",
                "batch_size=2,epochs=1,lr=0.0001,min_lr_ratio=0,seed=10,steps=24,temperature=100,warmup_steps=0,"
                "weight_decay=0.01"],
    "come_mp": ["batch_size=2,epochs=1,lrs=0.0005+0.00025+0.0001+7.5e-05+5e-05+2.5e-05+1e-05,min_lr_ratio=0,seed=10,"
                "steps=6,temperature=1,warmup_steps=0,weight_decay=0.01"],
}


def validated(path="config/config.yaml"):
    config = yaml.safe_load((ROOT / path).read_text())
    return validate_config(config, ROOT / "config" / "schema.yaml")


def slugs(config, key):
    return [variant_slug({k: v for k, v in var.items() if k not in ("label", "targets")})
            for var in config["methods"][key]["variants"]]


def test_default_variant_paths_do_not_move():
    config = validated()
    for key, want in DEFAULT_SLUGS.items():
        assert slugs(config, key) == want, key


def test_streamline_released_switches_validate_and_name_their_path():
    config = yaml.safe_load((ROOT / "config/config.yaml").read_text())
    config["methods"].setdefault("streamline", {})["variants"] = [
        {"targets": [0.3], "attention": "released", "keep": "last", "dtype": "float32", "betas": [0.9, 0.95]}]
    config = validate_config(config, ROOT / "config" / "schema.yaml")
    slug = slugs(config, "streamline")[0]
    assert "attention=released" in slug and "dtype=float32" in slug and "keep=last" in slug and "betas=0.9+0.95" in slug


def test_bad_variant_dtype_names_key_value_and_allowed():
    config = yaml.safe_load((ROOT / "config/config.yaml").read_text())
    config["methods"].setdefault("streamline", {})["variants"] = [{"dtype": "fp8"}]
    with pytest.raises(Exception, match=r"streamline.*dtype.*'fp8'.*(auto|float32)"):
        validate_config(config, ROOT / "config" / "schema.yaml")


def test_run_dtype_prefers_the_variant():
    assert run_dtype({"dtype": "float32", "lr": 1}, "auto") == "float32"
    assert run_dtype({"lr": 1}, "bfloat16") == "bfloat16"
    assert run_dtype(None, "auto") == "auto"


@pytest.mark.parametrize("declared, key, want", [
    ("float16", "torch_dtype", torch.float16),   # LLaMA-2's config.json
    ("bfloat16", "dtype", torch.bfloat16),       # transformers >= 4.56 writes `dtype`
    (None, None, torch.float32),                 # nothing declared: from_pretrained's fp32
])
def test_checkpoint_dtype_is_the_declared_one(tmp_path, declared, key, want):
    cfg = {"model_type": "llama"}
    if declared:
        cfg[key] = declared
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    assert torch_dtype("checkpoint", "cpu", tmp_path) == want


def test_checkpoint_dtype_errors():
    with pytest.raises(ValueError, match="dtype 'checkpoint' needs the checkpoint's path"):
        torch_dtype("checkpoint", "cpu")
    with pytest.raises(ValueError, match="dtype 'fp8' not allowed; allowed: auto, checkpoint, float32"):
        torch_dtype("fp8", "cpu")


def test_load_model_in_the_checkpoint_dtype(tmp_path):
    model, tok = build_random_model("llama", seed=0)
    model.to(torch.float16).save_pretrained(tmp_path, safe_serialization=True)
    tok.save_pretrained(tmp_path)
    loaded, _ = load_model(tmp_path, dtype="checkpoint")
    assert next(loaded.parameters()).dtype == torch.float16
    loaded32, _ = load_model(tmp_path, dtype="float32")
    assert next(loaded32.parameters()).dtype == torch.float32
