"""Seconds per optimiser step of each post-training method on a SmolLM2-135M-shaped random model.

    python tests/benchmarks/bench_posttrain.py [--device cpu|cuda] [--threads 2] [--batch 2] [--seq 128]

Prints one line per method (CoMe-sp with |P| = 7 merged layers as SmolLM2 at 30 % gets, one CoMe-mp
phase, the LLM-Streamline layer, one FuseGPT group step at rank 16) and the teacher pass per chunk.
Numbers depend on the machine and its load; nothing here is asserted.
"""
from __future__ import annotations

import argparse
import copy
import time

import torch
from transformers import AutoModelForCausalLM, LlamaConfig

from layerpuzzle.distill.come_mp import MPSettings, distill_mp
from layerpuzzle.distill.come_sp import SPSettings, distill_sp
from layerpuzzle.distill.streamline import StreamlineSettings, streamline
from layerpuzzle.distill.teacher_activations import StoredTeacher, teacher_states
from layerpuzzle.distill.trainer import ResumeStore
from layerpuzzle.models import architecture as arch

SMOLLM2 = dict(hidden_size=576, intermediate_size=1536, num_hidden_layers=30, num_attention_heads=9,
               num_key_value_heads=3, head_dim=64, vocab_size=49152, tie_word_embeddings=True,
               max_position_embeddings=8192, rope_theta=100000.0)
# the merged groups CoMe builds for SmolLM2 at 30 % (embedded default): 19 student layers, |P| = 7
GROUPS_REMOVED = [4, 5, 7, 10, 12, 14, 15, 17, 18, 26, 27]
PAIRS = [(3, 5), (4, 7), (6, 10), (7, 12), (8, 15), (9, 18), (16, 27)]


def timed(fn, steps):
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    t = time.perf_counter()
    fn()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return (time.perf_counter() - t) / steps


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--seq", type=int, default=128)
    ap.add_argument("--steps", type=int, default=3)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    cfg = LlamaConfig(**SMOLLM2)
    cfg._attn_implementation = "sdpa"
    torch.manual_seed(0)
    dense = AutoModelForCausalLM.from_config(cfg, dtype=torch.float32).to(a.device).eval()
    student = copy.deepcopy(dense)
    arch.drop_layers(student, GROUPS_REMOVED)
    n_chunks = a.batch * a.steps
    chunks = torch.randint(0, 49152, (n_chunks, a.seq), generator=torch.Generator().manual_seed(0))
    t0 = time.perf_counter()
    teacher = StoredTeacher(teacher_states(dense, chunks, [a_ for _, a_ in PAIRS], batch_size=a.batch, progress=False))
    print(f"device={a.device} threads={a.threads} batch={a.batch} seq={a.seq}")
    print(f"teacher pass: {(time.perf_counter() - t0) / n_chunks:.3f} s per chunk (layers 0..27)")
    sp = SPSettings(lr=1e-4, steps=a.steps, batch_size=a.batch)
    print(f"CoMe-sp: {timed(lambda: distill_sp(copy.deepcopy(student), chunks, teacher, PAIRS, sp, ResumeStore(None), progress=False), a.steps):.3f} s/step")
    mp = MPSettings(lrs=(1e-4,), steps=a.steps, batch_size=a.batch)
    print(f"CoMe-mp (phase b=9): {timed(lambda: distill_mp(copy.deepcopy(student), chunks, teacher, [PAIRS[5]], mp, ResumeStore(None), progress=False), a.steps):.3f} s/step")
    sl = StreamlineSettings(steps=a.steps, batch_size=a.batch, val_chunks=0, sbi_chunks=1)
    print(f"LLM-Streamline (incl. SBI + targets): {timed(lambda: streamline(dense, chunks, 11, sl, ResumeStore(None), progress=False), a.steps):.3f} s/step")
    try:
        from layerpuzzle.distill.fusegpt_train import FuseGPTTrainSettings, fusegpt_train
    except ImportError:
        return
    fs = FuseGPTTrainSettings(epochs=1, steps=a.steps, batch_size=a.batch, rank=16, lora_rank=16, mi_chunks=1)
    print(f"FuseGPT, 1 iteration (incl. MI): {timed(lambda: fusegpt_train(copy.deepcopy(dense), chunks, 1, fs, ResumeStore(None), progress=False), a.steps):.3f} s/step")


if __name__ == "__main__":
    main()
