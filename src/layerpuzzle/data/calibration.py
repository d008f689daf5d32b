"""Calibration sets: N text rows, shuffled with a seed, joined and cut into windows.

This is the CoMe / SLEB code convention (docs/calibration.md): the corpus rows are
permuted with ``numpy.random.default_rng(seed).permutation`` (exactly what
``datasets.Dataset.shuffle(seed)`` does), the first N rows are joined with
``"\\n\\n"`` and tokenized as one sequence, and the sequence is cut into
consecutive non-overlapping windows of ``seq_len`` tokens (the remainder is
dropped; with fewer than ``seq_len`` tokens the whole sequence is one window).
So "N samples" means N *text rows*, not N windows.

``packing="per_example"`` is the released CoMe loaders of Alpaca and MMLU
(docs/calibration.md, Table 14): every row is its own window, truncated to ``seq_len``
and padded to it with EOS tokens (which the model sees as input, as there).
Its id ends in ``-pex``.

``selection="per_subject"`` (MMLU only) is the released CoMe MMLU loader's
even split over the subjects (the CoMe code's
``get_mmlu_trainenc``): with S subjects in alphabetical order, ``n = qS + e``,
the row counts ``[q+1]*e + [q]*(S-e)`` are shuffled with Python's
``random`` seeded by ``seed`` (the code's ``set_seed`` then
``random.shuffle``), and each subject gives the first ``count`` of its rows
after ``default_rng(seed).permutation`` (``Dataset.shuffle(seed)``); the
subjects' rows follow each other in subject order, with no global shuffle.
The default (``global``) permutes all rows together.  Its id ends in ``-subj``
(before ``-pex``).

``sampling="random_windows"`` is FuseGPT's (and GPTQ's ``get_wikitext2``)
convention: the corpus rows are joined with ``"\\n\\n"`` and tokenized once;
then, with ``random.seed(seed)``, ``n`` windows are drawn as
``i = random.randint(0, T - seq_len - 1); window = ids[i : i + seq_len]``
(overlaps allowed), kept in sampling order.  Here ``n`` counts windows, not rows.
Its id ends in ``-rw``.

Every method names its calibration set the same way: a ``calibration`` block
(config schema ``definitions.calibration_set``) whose :attr:`CalibrationSpec.id`
names the file ``results/<model>/calib/<id>.safetensors`` built by one rule.
"""

from __future__ import annotations

import json
import logging
import random
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from ..atomic import atomic_file

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CalibrationSpec:
    dataset: str
    n: int
    seed: int
    seq_len: int
    packing: str = "joined"  # joined (rows joined, cut into windows) | per_example (one EOS-padded window per row)
    selection: str = "global"  # global (one seeded permutation of all rows) | per_subject (released MMLU loader)
    sampling: str = "rows"  # rows (the conventions above) | random_windows (FuseGPT: n windows at random offsets)

    def __post_init__(self):
        if self.packing not in PACKINGS:
            raise ValueError(f"calibration packing {self.packing!r} is not allowed; allowed: {', '.join(PACKINGS)}")
        if self.selection not in SELECTIONS:
            raise ValueError(f"calibration selection {self.selection!r} is not allowed; "
                             f"allowed: {', '.join(SELECTIONS)}")
        if self.sampling not in SAMPLINGS:
            raise ValueError(f"calibration sampling {self.sampling!r} is not allowed; allowed: {', '.join(SAMPLINGS)}")
        if self.sampling == "random_windows" and (self.packing, self.selection) != ("joined", "global"):
            raise ValueError(f"calibration sampling 'random_windows' draws windows of the joined corpus: it needs "
                             f"packing 'joined' and selection 'global', got packing {self.packing!r}, selection "
                             f"{self.selection!r}")
        if self.selection == "per_subject" and self.dataset != "mmlu":
            raise ValueError(f"calibration selection 'per_subject' needs dataset 'mmlu' (rows with subjects), "
                             f"got dataset {self.dataset!r}")

    @property
    def id(self) -> str:
        return (f"{self.dataset}-n{self.n}-s{self.seed}-len{self.seq_len}"
                f"{SELECTIONS[self.selection]}{PACKINGS[self.packing]}{SAMPLINGS[self.sampling]}")

    @staticmethod
    def parse(calib_id: str) -> "CalibrationSpec":
        full, packing, selection, sampling = calib_id, "joined", "global", "rows"
        if calib_id.endswith(SAMPLINGS["random_windows"]):
            calib_id, sampling = calib_id[: -len(SAMPLINGS["random_windows"])], "random_windows"
        if calib_id.endswith(PACKINGS["per_example"]):
            calib_id, packing = calib_id[: -len(PACKINGS["per_example"])], "per_example"
        if calib_id.endswith(SELECTIONS["per_subject"]):
            calib_id, selection = calib_id[: -len(SELECTIONS["per_subject"])], "per_subject"
        try:
            dataset, n, s, length = calib_id.rsplit("-", 3)
            return CalibrationSpec(dataset, int(n[1:]), int(s[1:]), int(length[3:]), packing, selection, sampling)
        except ValueError as exc:
            raise ValueError(f"calibration id {full!r} is not of the form "
                             f"<dataset>-n<N>-s<seed>-len<L>[-subj][-pex][-rw]") from exc


PACKINGS = {"joined": "", "per_example": "-pex"}  # packing -> id suffix
SELECTIONS = {"global": "", "per_subject": "-subj"}  # selection -> id suffix
SAMPLINGS = {"rows": "", "random_windows": "-rw"}  # sampling -> id suffix
# every id CalibrationSpec.id can produce (the workflow's {calib} wildcard)
CALIB_ID_RE = r"[a-z0-9]+-n\d+-s\d+-len\d+(?:-subj)?(?:-pex)?(?:-rw)?"


def spec_record(spec: CalibrationSpec) -> dict[str, Any]:
    """The spec's fields as recorded in the artifact (``packing`` only when not the default, so that joined
    sets keep the bytes they had before packing existed)."""
    record = asdict(spec)
    if spec.packing == "joined":
        del record["packing"]
    if spec.selection == "global":
        del record["selection"]
    if spec.sampling == "rows":
        del record["sampling"]
    return record


def select_rows(rows: list[str], n: int, seed: int) -> list[str]:
    """The first ``n`` rows after a seeded permutation (HF ``Dataset.shuffle`` semantics)."""
    if n <= 0:
        raise ValueError(f"calibration n must be > 0, got {n}")
    order = np.random.default_rng(seed).permutation(len(rows))
    if n > len(rows):
        log.warning("asked for %d rows but the corpus has %d: using all of them", n, len(rows))
    return [rows[i] for i in order[:n]]


def select_rows_per_subject(rows_by_subject: dict[str, list[str]], n: int, seed: int) -> list[str]:
    """The released MMLU loader's rows: ``n`` split evenly over the subjects (alphabetical order), the
    counts shuffled with ``random.Random(seed)``, each subject's rows permuted with ``default_rng(seed)``."""
    if n <= 0:
        raise ValueError(f"calibration n must be > 0, got {n}")
    if not rows_by_subject:
        raise ValueError("per-subject calibration needs rows grouped by subject, got none")
    subjects = sorted(rows_by_subject)
    q, extra = divmod(int(n), len(subjects))
    counts = [q + 1] * extra + [q] * (len(subjects) - extra)
    random.Random(seed).shuffle(counts)
    chosen = []
    for subject, k in zip(subjects, counts):
        rows = rows_by_subject[subject]
        if k > len(rows):
            log.warning("subject %s: asked for %d rows but it has %d: using all of them", subject, k, len(rows))
        order = np.random.default_rng(seed).permutation(len(rows))
        chosen += [rows[i] for i in order[:k]]
    return chosen


def tokenize_windows(text: str, tokenizer, seq_len: int) -> torch.Tensor:
    """Token ids of ``text`` cut into (W, seq_len) non-overlapping windows."""
    ids = tokenizer(text, return_tensors="pt").input_ids[0]
    if ids.numel() < seq_len:
        log.warning("only %d tokens (< seq_len %d): one window of the full length", ids.numel(), seq_len)
        return ids.unsqueeze(0)
    n = ids.numel() // seq_len
    return ids[: n * seq_len].view(n, seq_len).clone()


def per_example_windows(rows: list[str], tokenizer, seq_len: int) -> tuple[torch.Tensor, int]:
    """(N, seq_len) windows, each row tokenized alone, truncated to ``seq_len`` and padded with EOS to it;
    and the number of real (non-padding) tokens."""
    eos = tokenizer.eos_token_id
    if eos is None:
        raise ValueError("per-example calibration windows need a tokenizer with an EOS token")
    out, real = [], 0
    for row in rows:
        ids = tokenizer(row).input_ids[:seq_len]
        real += len(ids)
        out.append(ids + [eos] * (seq_len - len(ids)))
    return torch.tensor(out, dtype=torch.long), real


def random_windows(rows: list[str], tokenizer, n: int, seq_len: int, seed: int) -> tuple[torch.Tensor, dict[str, Any]]:
    """(n, seq_len) token windows at random offsets of the joined corpus (``sampling="random_windows"``), and
    their starts: ``random.seed(seed)``, then ``i = randint(0, T - seq_len - 1)`` per window."""
    ids = tokenizer("\n\n".join(rows), return_tensors="pt").input_ids[0]
    if ids.numel() <= seq_len + 1:
        raise ValueError(f"corpus has {ids.numel()} tokens, need more than seq_len + 1 = {seq_len + 1}")
    rng = random.Random(seed)
    starts = [rng.randint(0, ids.numel() - seq_len - 1) for _ in range(n)]
    windows = torch.stack([ids[s : s + seq_len] for s in starts]).clone()
    return windows, {"sampling": "random_windows", "n": n, "seq_len": seq_len, "seed": seed,
                     "corpus_tokens": int(ids.numel()), "starts": starts}


def build_calibration(rows: list[str] | dict[str, list[str]], tokenizer,
                      spec: CalibrationSpec) -> tuple[torch.Tensor, dict[str, Any]]:
    """Windows and their record; ``rows`` grouped by subject (a dict) for ``selection="per_subject"``."""
    if spec.sampling == "random_windows":
        windows, info = random_windows(rows, tokenizer, spec.n, spec.seq_len, spec.seed)
        info = {**spec_record(spec), **{k: v for k, v in info.items() if k != "starts"}, "id": spec.id,
                "windows": int(windows.shape[0]), "tokens_in_windows": int(windows.numel())}
        log.info("calibration %s: %d windows of %d at random offsets of %d tokens", spec.id, windows.shape[0],
                 spec.seq_len, info["corpus_tokens"])
        return windows, info
    if spec.selection == "per_subject":
        if not isinstance(rows, dict):
            raise ValueError("calibration selection 'per_subject' needs the rows grouped by subject (a dict)")
        chosen = select_rows_per_subject(rows, spec.n, spec.seed)
    else:
        chosen = select_rows(rows, spec.n, spec.seed)
    if spec.packing == "per_example":
        windows, real = per_example_windows(chosen, tokenizer, spec.seq_len)
        info = {**spec_record(spec), "id": spec.id, "rows_used": len(chosen), "tokens_total": real,
                "windows": int(windows.shape[0]), "tokens_in_windows": int(windows.numel()),
                "eos_padding_tokens": int(windows.numel()) - real}
        log.info("calibration %s: %d rows -> %d EOS-padded windows of %d (%d real tokens)", spec.id, len(chosen),
                 windows.shape[0], spec.seq_len, real)
        return windows, info
    text = "\n\n".join(chosen)
    windows = tokenize_windows(text, tokenizer, spec.seq_len)
    n_tokens_total = len(tokenizer(text).input_ids)
    info = {**spec_record(spec), "id": spec.id, "rows_used": len(chosen), "tokens_total": n_tokens_total,
            "windows": int(windows.shape[0]), "tokens_in_windows": int(windows.numel())}
    log.info("calibration %s: %d rows -> %d tokens -> %d windows of %d", spec.id, len(chosen),
             n_tokens_total, windows.shape[0], windows.shape[1])
    return windows, info


def save_calibration(path: str | Path, windows: torch.Tensor, info: dict[str, Any]) -> None:
    # one key of sorted JSON: several metadata keys come out in a different order each run
    meta = {"calibration": json.dumps(info, sort_keys=True, default=str)}
    with atomic_file(path) as tmp:
        save_file({"input_ids": windows.contiguous(), "attention_mask": torch.ones_like(windows)}, str(tmp),
                  metadata=meta)


def load_calibration(path: str | Path) -> torch.Tensor:
    return load_file(str(path))["input_ids"]


def calibration_info(path: str | Path) -> dict[str, Any]:
    """What :func:`save_calibration` recorded about a calibration set (rows, tokens, source, notes)."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        meta = dict(f.metadata() or {})
    return json.loads(meta["calibration"]) if "calibration" in meta else meta
