"""Calibration sets follow the CoMe code convention (docs/calibration.md)."""
import datasets
import pytest

from layerpuzzle.data.calibration import CalibrationSpec, build_calibration, select_rows, tokenize_windows
from layerpuzzle.data.text_sources import calibration_rows, perplexity_text
from layerpuzzle.models.byte_tokenizer import build_byte_tokenizer


def test_row_selection_equals_hf_dataset_shuffle():
    rows = [f"row {i}" for i in range(50)]
    ours = select_rows(rows, 7, seed=10)
    theirs = datasets.Dataset.from_dict({"text": rows}).shuffle(seed=10)["text"][:7]
    assert ours == list(theirs)


def test_windows_are_non_overlapping_and_drop_remainder():
    tok = build_byte_tokenizer()
    w = tokenize_windows("abcdefghij", tok, 4)  # BOS + 10 bytes = 11 tokens -> 2 windows
    assert w.shape == (2, 4)
    ids = tok("abcdefghij").input_ids
    assert w.flatten().tolist() == ids[:8]
    short = tokenize_windows("ab", tok, 4)
    assert short.shape == (1, 3)


def test_calibration_id_round_trip():
    spec = CalibrationSpec("wikitext2", 256, 10, 2048)
    assert spec.id == "wikitext2-n256-s10-len2048"
    assert CalibrationSpec.parse(spec.id) == spec
    with pytest.raises(ValueError, match="not of the form"):
        CalibrationSpec.parse("wikitext2-256")


def test_build_from_mirror(mirror):
    rows, info = calibration_rows("wikitext2", mirror)
    assert info["source"] == "mirror" and rows[0].startswith(" = Valkyria Chronicles III")
    windows, meta = build_calibration(rows, build_byte_tokenizer(), CalibrationSpec("wikitext2", 4, 10, 128))
    chosen = select_rows(rows, 4, 10)
    assert meta["rows_used"] == 4
    assert meta["tokens_total"] == len("\n\n".join(chosen).encode()) + 1  # bytes + BOS
    assert windows.shape == (meta["tokens_total"] // 128, 128)


def test_perplexity_text_from_mirror(mirror):
    text, _ = perplexity_text("wikitext2", mirror)
    # HF rows: "", " = Robert Boulter = \n", "", " Robert Boulter is ..." joined with "\n\n"
    assert text.startswith("\n\n = Robert Boulter = \n\n\n\n\n Robert Boulter is")
    assert text.count("\n\n") >= 4357
    assert "\r" not in text
    with pytest.raises(ValueError, match="allowed: wikitext2, c4"):
        perplexity_text("pg19", mirror)


def test_missing_mirror_file_names_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="wiki.train.raw"):
        calibration_rows("wikitext2", tmp_path)


def test_per_example_packing_pads_each_row_with_eos():
    """The released Alpaca/MMLU loaders: one window per row, truncated to seq_len, EOS-padded; id suffix -pex."""
    tok = build_byte_tokenizer()
    spec = CalibrationSpec("alpaca", 3, 0, 6, packing="per_example")
    assert spec.id == "alpaca-n3-s0-len6-pex" and CalibrationSpec.parse(spec.id) == spec
    assert CalibrationSpec.parse("alpaca-n3-s0-len6").packing == "joined"
    rows = ["ab", "abcdefgh", "xyz"]
    windows, info = build_calibration(rows, tok, spec)
    order = select_rows(rows, 3, 0)
    eos = tok.eos_token_id
    for w, row in zip(windows.tolist(), order):
        ids = tok(row).input_ids[:6]
        assert w == ids + [eos] * (6 - len(ids))
    assert windows.shape == (3, 6) and info["eos_padding_tokens"] == 18 - info["tokens_total"]
    assert info["packing"] == "per_example"
    _, joined = build_calibration(rows, tok, CalibrationSpec("alpaca", 3, 0, 6))
    assert "packing" not in joined  # joined sets are recorded (and so stored) exactly as before packing existed
    with pytest.raises(ValueError, match="packing 'packed' is not allowed"):
        CalibrationSpec("alpaca", 3, 0, 6, packing="packed")


def _released_mmlu_selection(rows_by_subject, n, seed):
    """The released MMLU loader written out: global random seeded, counts [q+1]*e + [q]*(S-e) shuffled,
    each subject a datasets.Dataset shuffled with the seed, its first `count` rows, subjects in list order."""
    import random

    subjects = sorted(rows_by_subject)
    random.seed(seed)
    num_list = [n // len(subjects) + 1] * (n % len(subjects)) + [n // len(subjects)] * (len(subjects) - n % len(subjects))
    random.shuffle(num_list)
    out = []
    for num, subject in zip(num_list, subjects):
        out += datasets.Dataset.from_dict({"text": rows_by_subject[subject]}).shuffle(seed=seed)["text"][:num]
    return out


@pytest.mark.parametrize("n,seed", [(12, 10), (5, 3), (23, 0)])
def test_per_subject_selection_equals_the_released_mmlu_loader(n, seed):
    # subjects given out of order and with unequal sizes; 5 subjects
    rows = {s: [f"{s} q{i}" for i in range(k)] for s, k in
            [("virology", 9), ("anatomy", 7), ("marketing", 12), ("astronomy", 8), ("nutrition", 10)]}
    spec = CalibrationSpec("mmlu", n, seed, 8, packing="per_example", selection="per_subject")
    assert spec.id == f"mmlu-n{n}-s{seed}-len8-subj-pex" and CalibrationSpec.parse(spec.id) == spec
    tok = build_byte_tokenizer()
    windows, info = build_calibration(rows, tok, spec)
    expected = _released_mmlu_selection(rows, n, seed)
    assert len(expected) == n and info["rows_used"] == n and info["selection"] == "per_subject"
    eos = tok.eos_token_id
    assert windows.tolist() == [tok(r).input_ids[:8] + [eos] * (8 - len(tok(r).input_ids[:8])) for r in expected]
    # per subject: q or q+1 rows, subjects in alphabetical order, unlike one global permutation
    counts = {s: sum(r.startswith(s + " ") for r in expected) for s in rows}
    assert sorted(counts.values()) == sorted([n // 5 + 1] * (n % 5) + [n // 5] * (5 - n % 5))
    flat = [r for s in sorted(rows) for r in rows[s]]
    assert expected != select_rows(flat, n, seed)


def test_per_subject_selection_is_mmlu_only_and_keeps_default_ids(mirror):
    assert CalibrationSpec("mmlu", 256, 10, 2048).id == "mmlu-n256-s10-len2048"
    assert CalibrationSpec.parse("mmlu-n256-s10-len2048-pex").selection == "global"
    with pytest.raises(ValueError, match="selection 'per_subject' needs dataset 'mmlu'.*'wikitext2'"):
        CalibrationSpec("wikitext2", 4, 10, 128, selection="per_subject")
    with pytest.raises(ValueError, match="selection 'random' is not allowed; allowed: global, per_subject"):
        CalibrationSpec("mmlu", 4, 10, 128, selection="random")
    with pytest.raises(ValueError, match="grouped by subject"):
        build_calibration(["a", "b"], build_byte_tokenizer(), CalibrationSpec("mmlu", 2, 0, 8, selection="per_subject"))
    from layerpuzzle.data.text_sources import mmlu_rows_by_subject

    grouped, info = mmlu_rows_by_subject(mirror)
    assert len(grouped) == 57 and all(len(v) == 20 for v in grouped.values())
    assert info["selection"] == "per_subject"
    _, meta = build_calibration(grouped, build_byte_tokenizer(), CalibrationSpec("mmlu", 60, 10, 64, selection="per_subject"))
    assert meta["rows_used"] == 60
    _, plain = build_calibration(["a", "b"], build_byte_tokenizer(), CalibrationSpec("mmlu", 2, 0, 8))
    assert "selection" not in plain  # global sets are recorded as before
