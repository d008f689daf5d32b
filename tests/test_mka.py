"""MKA: prompts, layer inputs, the diffusion kernels, NPIB, fusion ratios and both fusions."""
import copy
import math

import numpy as np
import pytest
import torch

from layerpuzzle.methods.mka import fusion_ratio, knn_entropy, merge_last_layers, npib_matrix, rank_normalise
from layerpuzzle.methods.mka.activations import layer_inputs, tokenize_prompts
from layerpuzzle.methods.mka.manifold import (adaptive_chunk_size, diffusion_embedding, diffusion_kernel,
                                              layer_embedding, released_token_distances, sample_distances)
from layerpuzzle.methods.mka.npib import mutual_information, npib_frame, npib_from_frame
from layerpuzzle.methods.mka.prompts import mmlu_test_rows, select_prompts
from layerpuzzle.models.random_models import build_random_model
from layerpuzzle.methods.laco import PROJECTIONS


def sigmoid(x):
    return math.exp(x) / (1 + math.exp(x))


def test_fusion_ratio_is_the_sigmoid_of_the_row_mean_share():
    S = np.array([[1.0, 0.5], [0.5, 1.0]])
    assert fusion_ratio(S, 0, 1) == pytest.approx(sigmoid(0.5)) == pytest.approx(0.6224593312)
    S = np.array([[0.8, 0.4, 0.6], [0.4, 0.2, 0.0], [0.6, 0.0, 1.0]])  # row means 0.6, 0.2, 0.5333
    assert fusion_ratio(S, 0, 1) == pytest.approx(sigmoid(0.75))      # r = 0.6 / 0.8
    assert fusion_ratio(S, 1, 2) == pytest.approx(sigmoid(0.2 / (0.2 + 1.6 / 3)))
    assert fusion_ratio(S, 0, 1, beta=2.0) == pytest.approx(sigmoid(1.5))
    S[0, 2] = np.nan  # NaNs are skipped in the row mean
    assert fusion_ratio(S, 0, 1) == pytest.approx(sigmoid(0.6 / 0.8))


def test_knn_entropy_hand_computed():
    x = np.array([[0.0, 0.0], [1.0, 0.0], [3.0, 0.0]])
    # nearest-neighbour distances 1, 1, 2; H = mean(log(N r^d / k)) with N = 3, d = 2, k = 1
    assert knn_entropy(x, k=1) == pytest.approx((2 * math.log(3) + math.log(12)) / 3)


def test_npib_matrix_is_symmetric_and_its_entries_follow_the_formula():
    rng = np.random.default_rng(0)
    base = rng.random((40, 2))
    E = [rank_normalise(base + 0.05 * k * rng.random((40, 2))) for k in range(4)]
    S = npib_matrix(E, n_neighbors=5, k_entropy=10, seed=3)
    assert np.array_equal(S, S.T)
    H1, H2 = knn_entropy(E[1], 10), knn_entropy(E[2], 10)
    assert H1 < 0 and H2 < 0  # rank-normalised data in [0, 1)^2
    assert S[1, 2] == pytest.approx(mutual_information(E[1], E[2], 5, 3) / math.sqrt(H1 * H2))
    assert np.array_equal(npib_from_frame(npib_frame(S)), S)


def test_rank_normalisation_gives_ranks_over_n():
    E = np.array([[0.3, -1.0], [0.1, 5.0], [0.2, np.nan]])
    assert np.array_equal(rank_normalise(E), np.array([[2, 0], [0, 2], [1, 1]]) / 3)  # NaN -> 0


def test_adaptive_chunk_size_is_the_largest_divisor_up_to_100():
    assert [adaptive_chunk_size(n) for n in (250, 57, 104, 101, 100)] == [50, 57, 52, 1, 100]


def _states(n, lengths, hidden=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(lengths[s % len(lengths)], hidden, generator=g) for s in range(n)]


def test_described_distances_are_between_zero_padded_flattened_samples():
    states = _states(5, [3, 6, 4])
    D = sample_distances(states, max_tokens=5, token_chunk=2)
    padded = torch.zeros(5, 5, 3, dtype=torch.float64)
    for s, h in enumerate(states):
        padded[s, : min(5, h.shape[0])] = h[:5].double()
    expected = torch.cdist(padded.reshape(5, -1), padded.reshape(5, -1))
    np.testing.assert_allclose(D, expected.numpy(), atol=1e-10)


def test_released_distances_reproduce_the_chunk_bug():
    """N = 104 → chunk 52: only tokens 0..51 of samples 0 and 52 enter, block diagonals forced to 0."""
    states = _states(104, [60, 30], seed=1)
    D = released_token_distances(states, max_tokens=512)
    tok = lambda s, t: states[s][t].double() if t < states[s].shape[0] else torch.zeros(3, dtype=torch.float64)
    assert D[3, 52 + 7] == pytest.approx(float((tok(0, 3) - tok(52, 7)).norm()))
    assert D[52 + 40, 52 + 2] == pytest.approx(float((tok(52, 40) - tok(52, 2)).norm()))  # token 40 of a 30-token sample = 0
    assert D[10, 52 + 10] == 0.0 and D[52 + 5, 5] == 0.0  # diagonal of every block
    assert D[1, 2] == pytest.approx(float((tok(0, 1) - tok(0, 2)).norm()))
    assert np.allclose(D, D.T)


def test_diffusion_embedding_normalisations():
    D = np.array([[0.0, 1.0, 4.0], [1.0, 0.0, 2.0], [4.0, 2.0, 0.0]])
    K = diffusion_kernel(D, sigma=8.0)
    assert K[0, 2] == pytest.approx(math.exp(-math.sqrt(0.5)))
    Y = diffusion_embedding(K, alpha=0.5, dim=1)
    p = K.sum(0)
    K1 = K / np.sqrt(np.outer(p, p))
    v = np.sqrt(K1.sum(0))
    U = np.linalg.svd(K1 / np.outer(v, v))[0]
    np.testing.assert_allclose(Y[:, 0], U[:, 1] / U[:, 0], rtol=1e-10)


def test_layer_inputs_are_hf_hidden_states_cut_to_max_tokens():
    model, tok = build_random_model("qwen2", seed=0)
    texts = ["What is 2+2?\nA. 3\nB. 4\nAnswer:", "Short one\nAnswer:"]
    ids = tokenize_prompts(tok, texts, max_tokens=20)
    assert ids[0].shape[1] == 20 and ids[1].shape[1] == len("Short one\nAnswer:")  # byte tokenizer, no BOS
    seen = {}
    forwards = layer_inputs(model, ids, lambda l, states: seen.setdefault(l, states))
    assert sorted(seen) == list(range(8)) and forwards == 7  # one batch of 2 prompts
    assert seen[4][1].shape == (ids[1].shape[1], 64)
    full = tok(texts[0], add_special_tokens=False, return_tensors="pt").input_ids
    with torch.no_grad():
        hs = model(full, output_hidden_states=True).hidden_states
    short = tok(texts[1], add_special_tokens=False, return_tensors="pt").input_ids
    with torch.no_grad():
        hs_short = model(short, output_hidden_states=True).hidden_states
    for l in (0, 3, 7):
        torch.testing.assert_close(seen[l][0], hs[l][0, :20], rtol=0, atol=1e-5)
        torch.testing.assert_close(seen[l][1], hs_short[l][0], rtol=0, atol=1e-5)  # right padding is invisible


def test_prompts_take_the_first_subjects_alphabetically(mirror):
    rows = mmlu_test_rows(mirror)
    prompts = select_prompts(rows, num_tasks=3, num_samples=2, seed=10)
    assert [p.subject for p in prompts] == ["abstract_algebra"] * 2 + ["anatomy"] * 2 + ["astronomy"] * 2
    assert prompts[0].text.endswith("\nAnswer:") and "\nA. " in prompts[0].text
    assert select_prompts(rows, 3, 2, 10) == prompts and select_prompts(rows, 3, 2, 11) != prompts


def _sym(n, seed=0):
    A = np.random.default_rng(seed).random((n, n))
    return (A + A.T) / 2


def test_released_fusion_equals_dropping_the_last_layers():
    model, _ = build_random_model("llama", seed=5)
    dropped = copy.deepcopy(model)
    res = merge_last_layers(model, _sym(8), 3, "released")
    dropped.model.layers = dropped.model.layers[:5]
    ids = torch.randint(0, 256, (2, 16), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.equal(model(ids).logits, dropped(ids).logits)
    assert res.groups == [[i] for i in range(5)] and model.config.num_hidden_layers == 5
    assert [s["layer_i"] for s in res.steps] == [6, 5, 4] and not any(s["applied"] for s in res.steps)


def test_described_fusion_merges_the_last_two_layers_repeatedly():
    model, _ = build_random_model("llama", seed=5)
    dense = copy.deepcopy(model)
    S = _sym(8, seed=1)
    res = merge_last_layers(model, S, 2, "described")
    l1, l2 = fusion_ratio(S, 6, 7), fusion_ratio(S, 5, 6)
    assert [s["lambda_i"] for s in res.steps] == [l1, l2]
    assert res.groups == [[0], [1], [2], [3], [4], [5, 6, 7]]
    d = dense.model.layers
    for name in PROJECTIONS:
        w = lambda i: d[i].get_submodule(name).weight.detach()
        expected = l2 * w(5) + (1 - l2) * (l1 * w(6) + (1 - l1) * w(7))
        torch.testing.assert_close(model.model.layers[5].get_submodule(name).weight, expected, rtol=0, atol=1e-6)
    assert torch.equal(model.model.layers[5].input_layernorm.weight, d[5].input_layernorm.weight)

    normed = copy.deepcopy(dense)
    merge_last_layers(normed, S, 1, "described", fuse_norms=True)
    torch.testing.assert_close(normed.model.layers[6].post_attention_layernorm.weight,
                               l1 * d[6].post_attention_layernorm.weight + (1 - l1) * d[7].post_attention_layernorm.weight)


def test_layer_embedding_end_to_end_shapes_and_ranks():
    states = _states(12, [7, 9, 5], hidden=4, seed=2)
    for kernel in ("described", "released"):
        E = layer_embedding(states, kernel, max_tokens=8)
        assert E.shape == (12, 2)
        assert sorted(E[:, 0] * 12) == list(range(12))


# ---------------------------------------------------------------- heat maps (NPIB and BI/SBI)
def test_window_matrix_places_bi_on_the_diagonal_and_sbi_above(tmp_path):
    import pandas as pd

    from layerpuzzle.figures import figures_markdown, npib_figure, score_figure, window_matrix

    bi = pd.DataFrame({"layer": [0, 1, 2], "span": 0, "estimator": "cosine_mean", "value": [0.9, 0.2, 0.3]})
    sbi = pd.DataFrame({"layer": [0, 1], "span": 1, "estimator": "cosine_mean", "value": [0.95, 0.4]})
    M = window_matrix(pd.concat([bi, sbi]), "cosine_mean")
    assert M.shape == (3, 3) and M[0, 0] == 0.9 and M[1, 2] == 0.4 and M[0, 1] == 0.95
    assert np.isnan(M[0, 2]) and np.isnan(M[2, 0])
    score_figure(bi, sbi, tmp_path / "figs" / "m" / "bi_sbi.png", "t")
    npib_figure(_sym(4), tmp_path / "figs" / "m" / "npib.png", "t")
    assert (tmp_path / "figs" / "m" / "bi_sbi.png").read_bytes()[:4] == b"\x89PNG"
    md = figures_markdown([("m", "BI", tmp_path / "figs" / "m" / "bi_sbi.png")], tmp_path / "tables" / "figures.md")
    assert "![BI](../figs/m/bi_sbi.png)" in md and "## m" in md
