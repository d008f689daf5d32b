"""Post-training jobs: read the inputs, train resumably, write the distilled checkpoint.

One function per workflow rule (``rules/posttrain.smk``); the scripts in
``workflow/scripts/posttrain_*.py`` only call them.  Every checkpoint is a
standard HF directory written by :func:`layerpuzzle.models.checkpoint.save_pruned`
with, beside the weights: ``training.json`` (the Table 7 budget, per-phase
losses, resume events, the frozen-tensor check), ``loss_history.csv`` and
``loss_curve.png`` (paper Fig. 12), and a model card listing every assumption.
The resume state lives in ``state_dir`` (outside the declared output, see
:mod:`.trainer`) and is removed once the checkpoint is written.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
from safetensors.torch import load_file

from .data.calibration import load_calibration
from .figures.loss_curve import plot_loss_curve
from .models.checkpoint import check_target, layers_to_remove, save_pruned
from .models.sources import load_model
from .distill.come_mp import MPSettings, distill_mp
from .distill.come_sp import SPSettings, distill_sp
from .distill.data import describe_data_use
from .distill.hierarchical import DistillResult, distillation_pairs
from .distill.streamline import StreamlineSettings, streamline
from .distill.t_layer import PAPER_TABLE7
from .distill.teacher_activations import StreamingTeacher, load_teacher, save_teacher, teacher_bytes, teacher_states
from .distill.trainer import ResumeStore, StopHook, runtime_fingerprint
from .methods import registry
from .methods.switches import card_notes

log = logging.getLogger(__name__)

COME_ASSUMPTIONS = (
    "Eq. 6 as implemented: sigma = softmax over the hidden dimension of each token's residual-stream vector "
    "(`sigma_axis: hidden`, the default) or over the batch dimension as FuseGPT's KL does (`sigma_axis: batch`, "
    "scale sum / batch size), temperature tau as configured (default 1; `temperature` in the variant), forward "
    "KL(teacher || student), scale c = mean over tokens (batch x sequence) for the hidden axis; the paper leaves "
    "sigma and c open (docs/methods/come_sp.md).",
    "Fig. 12 plots the student-teacher cross-entropy = this KL + the teacher's entropy. With stored teacher "
    "activations, loss_history.csv has it per step (column cross_entropy) and loss_curve.png plots it; with a "
    "streaming teacher loss_curve.png plots the KL, labelled as such.",
    "H_T^{a_i} = output of original dense layer a_i = teacher_last of the merged group; H_S^{b_i} = output of "
    "merged student layer b_i; both raw residual streams (no final norm). Only merged layers (groups of more "
    "than one original layer) enter P and are trained.",
    "Only the merged layers are trainable; embeddings, unmerged layers, final norm and LM head are frozen and "
    "checked bit-identical to the CoMe checkpoint after training (training.json: frozen_tensors_identical).",
    "No logit / LM-head loss (none is mentioned in the paper).",
    "Optimiser AdamW (torch defaults betas (0.9, 0.999), eps 1e-8) with weight decay as configured; cosine decay "
    "per phase from the peak LR; warmup is unknown in the paper (default none).",
    "Distillation data: unknown in the paper; here the configured data set (see params.data), chunked into "
    "seq_len-token chunks; batch order = seeded permutations (layerpuzzle.distill.data.BatchOrder).",
)
MP_ASSUMPTIONS = (
    "CoMe-mp trains the merged layers shallow -> deep (P sorted by student index; inferred from the paper's "
    "shallow->deep LR lists), each with a fresh optimiser and cosine schedule; later layers see the "
    "already-trained earlier ones.",
    "Per-layer LRs: the configured list; when its length differs from |P| it is resampled log-linearly over the "
    "relative depth k/(|P|-1), first and last LR kept (layerpuzzle.distill.come_mp.fit_lrs).",
)


# ---------------------------------------------------------------------------- helpers
def settings_from(cls, variant: dict[str, Any], **overrides):
    """A settings dataclass from a config variant (unknown keys such as ``label``/``targets`` ignored)."""
    names = {f.name for f in fields(cls)}
    kw = {k: v for k, v in variant.items() if k in names}
    kw.update(overrides)
    return cls(**kw)


def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def source_fingerprint(ckpt_dir: str | Path) -> str:
    """Identifies one build of an input checkpoint (its provenance record, else its config and layer map)."""
    d = Path(ckpt_dir)
    files = [d / "provenance.json"] if (d / "provenance.json").exists() else [d / "config.json", d / "layer_map.json"]
    return hashlib.sha256(b"".join(file_sha256(f).encode() for f in files if f.exists())).hexdigest()


def changed_frozen_tensors(model, reference_dir: str | Path, trainable: Sequence[str]) -> list[str]:
    """Names of the tensors outside ``trainable`` that differ from the checkpoint in ``reference_dir``.

    The reference is cast to the model's dtype first (a model loaded in bf16 from an fp32 checkpoint holds the
    rounded tensors; identical dtypes compare bit for bit as before)."""
    reference: dict[str, torch.Tensor] = {}
    for f in sorted(Path(reference_dir).glob("*.safetensors")):
        reference.update(load_file(str(f)))
    state = model.state_dict()
    skip = set(trainable)
    return [n for n, t in reference.items()
            if n not in skip and not torch.equal(state[n].cpu(), t.to(state[n].dtype))]


def write_training_artifacts(tmp_dir: Path, result: DistillResult, title: str,
                             cross_entropy: list[float] | None = None) -> None:
    """``loss_history.csv`` (phase, step in phase, global step, loss[, cross_entropy]) and ``loss_curve.png``.

    With ``cross_entropy`` (one value per step, CoMe with stored teacher activations) the curve is the
    cross-entropy the paper's Fig. 12 plots; otherwise the training loss, labelled as what it is.
    """
    lines = ["phase,phase_step,global_step,loss" + (",cross_entropy" if cross_entropy is not None else "")]
    g = 0
    for p in result.phases:
        for s, loss in enumerate(p.losses, 1):
            g += 1
            extra = f",{cross_entropy[g - 1]:.9g}" if cross_entropy is not None else ""
            lines.append(f"{p.name},{s},{g},{loss:.9g}{extra}")
    (tmp_dir / "loss_history.csv").write_text("\n".join(lines) + "\n")
    if cross_entropy is not None:
        curve = [(name, ce) for (name, _), ce in zip(result.loss_curve(), cross_entropy)]
        plot_loss_curve(curve, tmp_dir / "loss_curve.png", title,
                        ylabel="cross-entropy = KL (Eq. 6) + teacher entropy (Fig. 12)")
    else:
        plot_loss_curve(result.loss_curve(), tmp_dir / "loss_curve.png", title, ylabel=curve_ylabel(result))


@torch.no_grad()
def come_cross_entropy(result: DistillResult, teacher, pairs: Sequence[tuple[int, int]], settings,
                       n_chunks: int) -> list[float]:
    """Per step, the training KL plus the entropy of σ(H_T) of that step's batch (the same batches, in the
    same order: ``BatchOrder(n_chunks, batch_size, seed)``), i.e. the student-teacher cross-entropy.

    CoMe-sp: Σ over the merged layers; CoMe-mp: phase k is the k-th pair (shallow → deep).
    """
    from .distill.data import BatchOrder
    from .distill.losses import sigma_entropy

    order = BatchOrder(n_chunks, settings.batch_size, settings.seed)
    per_phase = [sorted(pairs)] if result.method == "CoMe-sp" else [[p] for p in sorted(pairs)]
    out = []
    for phase, phase_pairs in zip(result.phases, per_phase):
        for s, kl in enumerate(phase.losses):
            states = teacher.batch(order.indices(s), [a for _, a in phase_pairs])
            out.append(kl + sum(float(sigma_entropy(states[a], settings.temperature, settings.sigma_axis))
                                for _, a in phase_pairs))
    return out


def curve_ylabel(result: DistillResult) -> str:
    """What the loss curve shows. CoMe's curves are the Eq. 6 KL that is optimised; the paper's Fig. 12 plots
    the student-teacher cross-entropy instead, which is this KL plus the teacher's entropy (a shift per batch)."""
    if result.method == "CoMe-sp":
        return "KL (Eq. 6), summed over merged layers; not the CE of Fig. 12"
    if result.method == "CoMe-mp":
        return "KL (Eq. 6) of the layer in training; not the CE of Fig. 12"
    if result.method == "LLM-Streamline":
        return "MSE" if result.details.get("loss") == "mse" else "next-token cross-entropy"
    return "training loss"


def training_record(result: DistillResult, *, seconds: float, extra: dict[str, Any]) -> dict[str, Any]:
    paper = PAPER_TABLE7.get(result.method)
    return {**result.summary(), "seconds": round(seconds, 2),
            "paper_budget": paper.as_dict() if paper else None, **extra}


def _card_budget(result: DistillResult) -> str:
    b = result.budget
    return (f"Table 7 budget of this run: {b.iterations} iteration(s) x {b.layers_per_iteration} layer(s) x "
            f"{b.epochs} epoch(s) x {b.steps} steps x batch {b.batch_size} x {b.token_length} tokens = "
            f"T_layer {b.t_layer:,}.")


# ---------------------------------------------------------------------------- teacher
def run_teacher_job(*, dense_dir: str, data_path: str, student_dir: str, out_path: str, batch_size: int,
                    dtype: str, device: str, meta: dict[str, Any]) -> dict[str, Any]:
    """Teacher activations at the layers a_i of P of a CoMe checkpoint, for every training chunk."""
    pairs = distillation_pairs(json.loads((Path(student_dir) / "layer_map.json").read_text()))
    layers = sorted({a for _, a in pairs})
    dense, _ = load_model(dense_dir, dtype=dtype, device=device)
    chunks = load_calibration(data_path)
    size = teacher_bytes(chunks.numel(), dense.config.hidden_size, len(layers))
    log.info("teacher activations: %d chunks x %d tokens at layers %s = %.1f MB", chunks.shape[0],
             chunks.shape[1], layers, size / 1e6)
    states = teacher_states(dense, chunks, layers, batch_size=batch_size)
    save_teacher(out_path, states, chunks, {**meta, "bytes": size})
    return {"layers": layers, "bytes": size, "chunks": int(chunks.shape[0]), "seq_len": int(chunks.shape[1])}


# ---------------------------------------------------------------------------- CoMe-sp / CoMe-mp
def run_come_job(kind: str, *, student_dir: str, dense_dir: str, data_path: str, teacher_path: str | None,
                 out_dir: str, state_dir: str, variant: dict[str, Any], run_params: dict[str, Any],
                 target_fraction: float, base_model: str, dtype: str, device: str, checkpoint_every: int,
                 lrs: Sequence[float] | None = None, progress: bool = True) -> dict[str, Any]:
    """Distil the merged layers of the CoMe checkpoint ``student_dir`` (``kind`` = "sp" or "mp")."""
    if kind not in ("sp", "mp"):
        raise ValueError(f"kind must be 'sp' or 'mp', got {kind!r}")
    started = time.time()
    layer_map = json.loads((Path(student_dir) / "layer_map.json").read_text())
    pairs = distillation_pairs(layer_map)
    student, tok = load_model(student_dir, dtype=dtype, device=device)
    chunks = load_calibration(data_path)
    if teacher_path:
        teacher = load_teacher(teacher_path, chunks)
        teacher_mode = "stored"
    else:
        dense, _ = load_model(dense_dir, dtype=dtype, device=device)
        teacher, teacher_mode = StreamingTeacher(dense, chunks, [a for _, a in pairs]), "streaming"
    fingerprint = {"kind": kind, "variant": variant, "run": run_params, "source": source_fingerprint(student_dir),
                   "data": file_sha256(data_path), "dense": source_fingerprint(dense_dir),
                   "lrs": None if lrs is None else [float(x) for x in lrs], **runtime_fingerprint(student)}
    store = ResumeStore(state_dir, fingerprint)
    t0 = time.perf_counter()  # the distillation only (this process' part when resumed)
    if kind == "sp":
        settings = settings_from(SPSettings, variant, checkpoint_every=checkpoint_every)
        result = distill_sp(student, chunks, teacher, pairs, settings, store, stop=StopHook.from_env(),
                            progress=progress)
    else:
        overrides = {"checkpoint_every": checkpoint_every}
        overrides["lrs"] = tuple(float(x) for x in (lrs if lrs is not None else variant["lrs"]))
        settings = settings_from(MPSettings, variant, **overrides)
        result = distill_mp(student, chunks, teacher, pairs, settings, store, stop=StopHook.from_env(),
                            progress=progress)
    core_s = time.perf_counter() - t0
    trainable = [f"model.layers.{b}." for b in result.trained_layers]
    trainable_names = [n for n in student.state_dict() if any(n.startswith(p) for p in trainable)]
    changed = changed_frozen_tensors(student, student_dir, trainable_names)
    if changed:
        raise RuntimeError(f"frozen tensors changed during distillation: {changed[:5]}")
    method = "CoMe-sp" if kind == "sp" else "CoMe-mp"
    # Fig. 12's cross-entropy needs the teacher of every step again: cheap from stored activations only
    cross_entropy = (come_cross_entropy(result, teacher, pairs, settings, chunks.shape[0])
                     if teacher_mode == "stored" else None)
    record = training_record(result, seconds=time.time() - started, extra={
        "teacher": teacher_mode, "source_checkpoint": str(student_dir), "data": run_params.get("data"),
        "frozen_tensors_identical": True, "frozen_tensors_checked": len(student.state_dict()) - len(trainable_names)})
    dense_config = json.loads((Path(dense_dir) / "config.json").read_text())
    groups = [e["teacher_layers"] for e in sorted(layer_map, key=lambda e: e["student"])]
    title = f"{base_model} {method}: {', '.join(f'b={b}<-a={a}' for b, a in pairs)}"
    save_pruned(
        student, tok, out_dir, dense_config=dense_config, base_model=base_model, method=method,
        variant=variant.get("label") or "", params={**{k: v for k, v in variant.items() if k != "label"},
                                                    **run_params, "lrs_used": result.details.get("lrs")},
        target_fraction=target_fraction, layer_groups=groups,
        summary=(f"The CoMe checkpoint `{student_dir}` after {method} hierarchical distillation "
                 f"({'all merged layers at once' if kind == 'sp' else 'one merged layer at a time'}, "
                 f"paper Alg. {3 if kind == 'sp' else 4}). {_card_budget(result)}"),
        notes=[*COME_ASSUMPTIONS, *(MP_ASSUMPTIONS if kind == "mp" else ()),
               f"Teacher activations: {teacher_mode}.", "Loss per step: loss_history.csv, loss_curve.png.",
               describe_data_use(result.details["data_use"], "merged layer" if kind == "mp" else "phase"),
               *card_notes(registry.key_of(method), variant)],
        extra_json={"training.json": record},
        write_extra=lambda tmp: write_training_artifacts(tmp, result, title, cross_entropy),
        pruning_seconds=core_s)
    store.clear()
    return {"budget": result.budget.as_dict(), "seconds": record["seconds"],
            "resumed": [p.resumed_from for p in result.phases], "final_loss": [p.losses[-1] for p in result.phases]}


# ---------------------------------------------------------------------------- LLM-Streamline
STREAMLINE_ASSUMPTIONS = (
    "Window = the n+1 consecutive layers [j, j+n] with the lowest SBI_j = 1 - mean token cos(input of layer j, "
    "output of layer j+n), on the first sbi_chunks training chunks (raw last-layer output, no final norm); "
    "n = layers to remove for the target (Table 3 rule).",
    "The window is replaced by one layer initialised from its first layer j (the released 'llama_layer' init).",
    "MSE variant: standalone layer trained on (dense h[j], dense h[j+n+1]); AdamW, cosine schedule with linear "
    "warmup down to min_lr, gradient clipping; validation on the held-out last val_chunks chunks. "
    "No gradient accumulation (the released code accumulates 16 micro-batches).",
    "LM variant (loss: lm): the layer is trained inside the pruned model with next-token cross-entropy.",
    "Training data: the configured data set (the released code uses SlimPajama 2048-token blocks; CoMe does not "
    "name its data).",
)


def run_streamline_job(**kwargs: Any) -> dict[str, Any]:
    """LLM-Streamline (rule streamline): the lowest-SBI window replaced by one trained layer."""

    def train(dense, chunks, n, settings, store, progress) -> _Trained:
        model, result = streamline(dense, chunks, n, settings, store, stop=StopHook.from_env(), progress=progress)
        j0, j1 = result.details["window"]
        return _Trained(
            model, result, result.details["layer_groups"],
            summary=(f"LLM-Streamline: layers {j0}..{j1} replaced by one layer initialised from layer {j0} and "
                     f"trained ({settings.loss} loss)."),
            notes=[*STREAMLINE_ASSUMPTIONS,
                   f"Attention of the standalone layer: {settings.attention} (released = no mask, as the released "
                   f"code's eager call without attention_mask); state kept: {settings.keep} (last = the released "
                   f"code's aliased 'best' state); AdamW betas {tuple(settings.betas)}; gradient clipping "
                   f"{settings.grad_clip or 'none'}; LR schedule {settings.schedule}.",
                   "Loss per step: loss_history.csv, loss_curve.png."],
            curve_title=f"LLM-Streamline ({settings.loss})",
            returns={"window": [j0, j1], "best_step": result.phases[0].best_step})

    return _run_training_from_dense(method=registry.display_name("streamline"), settings_cls=StreamlineSettings, train=train, **kwargs)


# ---------------------------------------------------------------------------- FuseGPT with training
FUSEGPT_ASSUMPTIONS = (
    "Iterative Macro Influence (MI_i = 1 - mean token cos of the last layer's output with/without layer i, on "
    "the first mi_chunks training chunks, current stack); the lowest-MI layer is fused into the other layers of "
    "its group_size-layer group and deleted (layerpuzzle.methods.fusegpt).",
    "Group-local training every iteration: LoRA factors and RMSNorm weights at lr, coefficient factors at "
    "coef_lr; Adam betas (0.9, 0.95), eps 1e-8, no weight decay; CosineAnnealingLR over the iteration's steps; "
    "loss kl_div(log_softmax(student, dim=0), softmax(teacher, dim=0), batchmean) - softmax over the batch "
    "dimension, the released code's quirk; teacher = the group's output before fusion.",
    "FuseLinears stay unfolded across iterations and are folded into plain Linears before saving; the layer map "
    "lists the original index of every kept layer (the fused-in layers are recorded in training.json).",
    "Training data: the configured chunk set (the released code: random 2048-token WikiText-2 windows; CoMe: "
    "1,024 of them for the post-trained FuseGPT).",
)


def run_fusegpt_job(**kwargs: Any) -> dict[str, Any]:
    """FuseGPT with group-local post-training (rule fusegpt_train)."""
    from .distill.fusegpt_train import FuseGPTTrainSettings, fusegpt_train

    def train(model, chunks, n, settings, store, progress) -> _Trained:
        result, groups = fusegpt_train(model, chunks, n, settings, store, stop=StopHook.from_env(), progress=progress)
        return _Trained(
            model, result, groups,
            summary=("FuseGPT with group-local post-training: removed (original indices, in order) "
                     f"{result.details['removed_original']}."),
            notes=[*FUSEGPT_ASSUMPTIONS,
                   "Loss per step: loss_history.csv, loss_curve.png (iterations concatenated)."],
            curve_title="FuseGPT (group-local KL, dim 0)",
            returns={"removed_original": result.details["removed_original"]})

    return _run_training_from_dense(method=registry.display_name("fusegpt_train"), settings_cls=FuseGPTTrainSettings, train=train, **kwargs)


@dataclass
class _Trained:
    """What a prune-and-train function hands back to be saved."""

    model: torch.nn.Module
    result: DistillResult
    layer_groups: list
    summary: str
    notes: list[str]
    curve_title: str
    returns: dict[str, Any]


def _run_training_from_dense(*, method: str, settings_cls: type, train: Callable[..., _Trained], dense_dir: str,
                             data_path: str, out_dir: str, state_dir: str, variant: dict[str, Any],
                             run_params: dict[str, Any], target_fraction: float, base_model: str, dtype: str,
                             device: str, checkpoint_every: int, progress: bool = True) -> dict[str, Any]:
    """Load the dense model, prune n layers for the target while training resumably, save the checkpoint."""
    started = time.time()
    check_target(dense_dir, target_fraction)  # before loading: a target the model cannot take fails at once
    model, tok = load_model(dense_dir, dtype=dtype, device=device)
    dense_config = model.config.to_dict()
    chunks = load_calibration(data_path)
    n = layers_to_remove(model.config, target_fraction)
    settings = settings_from(settings_cls, variant, checkpoint_every=checkpoint_every)
    store = ResumeStore(state_dir, {"variant": variant, "run": run_params, "n": n, "data": file_sha256(data_path),
                                    "dense": source_fingerprint(dense_dir), **runtime_fingerprint(model)})
    t0 = time.perf_counter()  # pruning and training only (this process' part when resumed)
    trained = train(model, chunks, n, settings, store, progress)
    core_s = time.perf_counter() - t0
    result = trained.result
    record = training_record(result, seconds=time.time() - started, extra={"data": run_params.get("data"),
                                                                           "removed_layers": n})
    save_pruned(
        trained.model, tok, out_dir, dense_config=dense_config, base_model=base_model, method=method,
        variant=variant.get("label") or "", params={**{k: v for k, v in variant.items() if k != "label"},
                                                    **run_params},
        target_fraction=target_fraction, layer_groups=trained.layer_groups,
        summary=f"{trained.summary} {_card_budget(result)}",
        notes=[*trained.notes, describe_data_use(result.details["data_use"],
                                                 "iteration" if method == "FuseGPT" else "phase"),
               *card_notes(registry.key_of(method), {**variant, **run_params})],
        extra_json={"training.json": record},
        write_extra=lambda tmp: write_training_artifacts(tmp, result, f"{base_model} {trained.curve_title}"),
        pruning_seconds=core_s)
    store.clear()
    return {**trained.returns, "budget": result.budget.as_dict(), "seconds": record["seconds"]}


# ---------------------------------------------------------------------------- LM post-training of any checkpoint
LM_POSTTRAIN_ASSUMPTIONS = (
    "Full-parameter causal-LM post-training (LaCo App. C): every parameter trainable, next-token cross-entropy, "
    "AdamW with the configured lr, betas, weight decay and eps, gradient-norm clipping, cosine schedule with "
    "linear warmup (LaCo states no warmup; default none).",
    "Training data: the configured chunk set (LaCo's ~1 B-token corpus is not released; the embedded default "
    "uses WikiText-2 train); batch order = seeded permutations (layerpuzzle.distill.data.BatchOrder). One "
    "optimiser step per batch, no gradient accumulation (the paper: global batch 32 = 8/GPU x 4 GPUs).",
    "A bf16/fp16 model trains on fp32 master weights (layerpuzzle.distill.precision) and is cast back once.",
    "The layer structure is the source checkpoint's: its layer_map.json, pruning.json (with a `posttrain` "
    "entry added) and, for uneven widths, uneven_layers.json are carried over unchanged.",
)
CARRIED_FILES = ("layer_map.json", "pruning.json")


def run_lm_posttrain_job(*, source_dir: str, data_path: str, out_dir: str, state_dir: str, variant: dict[str, Any],
                         run_params: dict[str, Any], base_model: str, source_id: str, slug: str, dtype: str, device: str,
                         checkpoint_every: int, progress: bool = True) -> dict[str, Any]:
    """Post-train checkpoint ``source_dir`` (id ``source_id`` of ``base_model``) and save it to ``out_dir``."""
    from .distill.lm_posttrain import LMPosttrainSettings, lm_posttrain
    from .models.checkpoint import model_card, save_checkpoint
    from .evaluation.metrics import pruning_info
    from .models.uneven import is_uneven, read_record, save_uneven

    started = time.time()
    src = Path(source_dir)
    model, tok = load_model(source_dir, dtype=dtype, device=device)
    chunks = load_calibration(data_path)
    settings = settings_from(LMPosttrainSettings, variant, checkpoint_every=checkpoint_every)
    store = ResumeStore(state_dir, {"variant": variant, "run": run_params, "data": file_sha256(data_path),
                                    "source": source_fingerprint(source_dir), **runtime_fingerprint(model)})
    result = lm_posttrain(model, chunks, settings, store, stop=StopHook.from_env(), progress=progress)
    record = training_record(result, seconds=time.time() - started, extra={
        "source_checkpoint": source_id, "source_dir": str(source_dir), "data": run_params.get("data"),
        "paper_tokens": 1.0e9, "tokens_fraction_of_paper": result.details["tokens_seen"] / 1.0e9})
    carried = {name: json.loads((src / name).read_text()) for name in CARRIED_FILES if (src / name).exists()}
    pruning = carried.get("pruning.json") or pruning_info(src)  # a dense source: Dense's record
    pt_name = variant.get("label") or slug
    pruning = {**pruning, "variant": "+".join(v for v in (pruning.get("variant") or "", f"post-train {pt_name}") if v),
               "posttrain": {"source": source_id, "variant": variant.get("label") or "",
                                        "settings": {k: v for k, v in variant.items() if k != "label"},
                                        "tokens_seen": result.details["tokens_seen"]}}
    label = f" ({variant['label']})" if variant.get("label") else ""
    title = f"{base_model} — {source_id} + LM post-training{label}"
    summary = (f"The checkpoint `{source_id}` of `{base_model}` after full-parameter causal-LM post-training: "
               f"{settings.steps} steps x batch {settings.batch_size} x {chunks.shape[1]} tokens = "
               f"{result.details['tokens_seen']:,} tokens seen (LaCo: ~1 B).")
    notes = [*LM_POSTTRAIN_ASSUMPTIONS, "Loss per step: loss_history.csv, loss_curve.png (LaCo Fig. 3).",
             describe_data_use(result.details["data_use"])]
    params = {**{k: v for k, v in variant.items() if k != "label"}, **run_params, "source": source_id}
    extra = {"training.json": record, "pruning.json": pruning}
    card = model_card(title=title, method=METHOD_LM, model=base_model, summary=summary, params=params,
                      layer_map=carried.get("layer_map.json"), notes=notes)

    def write_curve(tmp: Path) -> None:
        write_training_artifacts(tmp, result, f"{title} (LaCo Fig. 3)")

    if is_uneven(src):  # LLM-Pruner / SliceGPT: the same uneven record, so the same loader rebuilds it
        uneven = read_record(src)
        save_uneven(model, tok, out_dir, record={k: v for k, v in uneven.items() if k != "format"}, card=card,
                    layer_map=carried.get("layer_map.json"), extra_json=extra, write_extra=write_curve)
    else:
        save_checkpoint(model, tok, out_dir, card=card, layer_map=carried.get("layer_map.json"), extra_json=extra,
                        write_extra=write_curve)
    store.clear()
    return {"tokens_seen": result.details["tokens_seen"], "seconds": record["seconds"],
            "first_loss": result.phases[0].losses[0], "last_loss": result.phases[0].losses[-1],
            "resumed_from": result.phases[0].resumed_from}


METHOD_LM = "LM post-training"
