"""CoMe `sbi_span: released`: the released loop scores every start by a fixed 2-layer pair, whatever it merges."""

import copy
import math

import numpy as np
import pytest
import torch

from layerpuzzle.methods.come.progressive import ComeSettings, come, released_sbi
from layerpuzzle.methods.come.variants import resolve_settings
from layerpuzzle.models.random_models import build_random_model


class Scores:
    """A stand-in for ModelScores: SBI of the 2-layer pairs only."""

    def __init__(self, span1):
        self.span1 = span1

    def sbi(self, span, estimator):
        assert span == 1
        return np.array(self.span1)


def test_released_scores_truncated_and_blocked_by_hand():
    groups = [[0], [1, 2], [3], [4], [5], [6]]  # 6 current layers, layer 1 already merged
    scores = Scores([0.5, 0.4, 0.3, 0.2, 0.1])  # pairs h[l] vs h[l+2], l = 0..4
    # --merge-item 3: the first L - m + 1 = 4 starts are kept
    assert list(released_sbi(scores, groups, 3, "released", "allowed")) == [0.5, 0.4, 0.3, 0.2]
    # --wo-repeat: starts 1-(3-1) .. 1+3-2 = -1..2 of the merged layer 1 -> 0, 1, 2 blocked (2 does not touch it)
    assert list(released_sbi(scores, groups, 3, "released", "forbidden")) == [math.inf, math.inf, math.inf, 0.2]
    # --merge-item 2: starts 0..4; merged layer 1 blocks 0 and 1 (the windows touching it)
    assert list(released_sbi(scores, groups, 2, "released", "forbidden")) == [math.inf, math.inf, 0.3, 0.2, 0.1]


def last_token_angular(a, b):
    cos = torch.nn.functional.cosine_similarity(a[:, -1].double(), b[:, -1].double(), dim=-1)
    return float((torch.arccos(cos.clamp(0, 1)) / math.pi).sum())


def test_first_merge_of_three_layers_uses_the_two_layer_scores():
    """One iteration merging 3 layers: the window starts where the released 2-layer angular score is lowest.

    Reference: the released compute_bi on HF hidden states (final-normed last state, as the released code sees it),
    angular distance of the last token, pair h[l] vs h[l+2], starts l = 0..L-3.
    """
    dense, _ = build_random_model("llama", seed=0)
    ids = torch.randint(0, 256, (4, 16), generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        hs = dense(ids, output_hidden_states=True).hidden_states
    L = 8
    want = [last_token_angular(hs[l], hs[l + 2]) for l in range(L - 3 + 1)]
    settings = ComeSettings(layers_per_merge=3, sbi_estimator="released", last_layer_output="final_norm",
                            sbi_span="released")
    result = come(copy.deepcopy(dense), ids, 2, settings)
    it = result.iterations[0]
    got = np.array(it.sbi) * (L - 1)  # the released sums are divided by the number of scored starts
    np.testing.assert_allclose(got, want, rtol=1e-5)
    assert it.window_start == int(np.argmin(want)) and it.window_stop == it.window_start + 2
    merged = come(copy.deepcopy(dense), ids, 2, ComeSettings(layers_per_merge=3, sbi_estimator="released",
                                                             last_layer_output="final_norm"))
    assert len(merged.iterations[0].sbi) == L - 2 and merged.iterations[0].sbi != it.sbi  # the 3-layer span


def test_sbi_span_is_optional_and_checked():
    cfg = {"p": 1, "rho": 0, "rho_rule": "paper", "layers_per_merge": 2, "sbi_estimator": "cosine_mean",
           "bi_estimator": "cosine_mean", "remerge": "allowed", "last_layer_output": "raw", "query_mapping": "grouped",
           "qk_norm": "mean"}
    assert "sbi_span" not in resolve_settings("come", cfg, "m", {})  # existing runs keep their settings
    assert resolve_settings("come", cfg, "m", {"sbi_span": "released"})["sbi_span"] == "released"
    with pytest.raises(ValueError, match="`sbi_span`: value 'last' is not allowed; allowed: merged, released"):
        ComeSettings(sbi_span="last").check()
