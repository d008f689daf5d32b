"""CoMe-P (docs/methods/come_p.md, Alg. 2): the NLL search over merge ratios, recomputed independently."""

import copy

import pytest
import torch
import torch.nn.functional as F

from layerpuzzle.methods.come.come_p import ComePSettings, candidate_ratios, come_p, tentative_merge
from layerpuzzle.methods.come.concat_merge import merge_window
from layerpuzzle.methods.come.progressive import Execution
from layerpuzzle.methods.come.retention import distribute_and_round
from layerpuzzle.models.architecture import drop_layers
from layerpuzzle.models.random_models import build_random_model


def calib_ids(seed=0, windows=4, seq_len=20):
    return torch.randint(0, 256, (windows, seq_len), generator=torch.Generator().manual_seed(seed))


@torch.no_grad()
def hf_nll(model, ids):
    """Σ_windows mean CE over the S-1 shifted tokens × S, from the plain HF forward."""
    logits = model(ids).logits.double()
    ce = F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), ids[:, 1:].reshape(-1), reduction="none")
    return float((ce.view(ids.shape[0], -1).mean(1) * ids.shape[1]).sum())


def sensitivities(it, layers):
    ffn = [it.sensitivity[f"layers.{l}.ffn"] for l in layers]
    kv = [it.sensitivity[f"layers.{l}.kv_group"] for l in layers]
    return ffn, kv


def test_candidate_ratios():
    assert candidate_ratios(4) == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert len(candidate_ratios(20)) == 21 and candidate_ratios(20)[7] == 7 / 20


def test_released_grid_is_numpys_arange_and_rounds_one_head_differently_on_40_heads():
    # np.arange(start, stop, step) holds start + i*step: i*(1/20), not i/20
    released = candidate_ratios(20, "released")
    assert released == [i * (1 / 20) for i in range(21)]
    exact = candidate_ratios(20)
    assert [i for i in range(21) if released[i] != exact[i]] == [3, 6, 7, 12, 14, 17, 19]
    # the lower layer's KV heads of 40: ⌊40(1-r)⌋ for the upper layer, the rest for the lower (r > 1/2)
    heads = {g: [distribute_and_round(40, [r, 1 - r]) for r in candidate_ratios(20, g)] for g in ("exact", "released")}
    differ = [i for i in range(21) if heads["exact"][i] != heads["released"][i]]
    assert differ == [12, 14, 17, 19]  # 1 - 0.6000000000000001 = 0.3999999999999999: 40x -> 15.99.. -> 15
    assert [heads["released"][i] for i in differ] == [[25, 15], [29, 11], [35, 5], [39, 1]]
    assert [heads["exact"][i] for i in differ] == [[24, 16], [28, 12], [34, 6], [38, 2]]
    assert distribute_and_round(32, [released[12], 1 - released[12]]) == [20, 12]  # 32 heads: no difference
    with pytest.raises(ValueError, match="granularity=6: np.arange gives 8 candidates"):
        ComePSettings(granularity=6, ratio_grid="released").check()
    with pytest.raises(ValueError, match="ratio_grid='float'.*exact, released"):
        candidate_ratios(4, "float")


def test_released_grid_merges_40_head_layers_with_the_released_head_counts():
    """Candidate 12 of 20 on a 40-head model: the merged layer takes 25 heads of the lower layer
    (released grid) instead of 24 (exact grid)."""
    base, _ = build_random_model("llama", seed=3, num_hidden_layers=3, hidden_size=80, num_attention_heads=40,
                                 num_key_value_heads=40, head_dim=2, intermediate_size=32)
    gen = torch.Generator().manual_seed(0)
    ffn = [torch.rand(32, generator=gen) for _ in range(2)]
    kv = [torch.rand(40, generator=gen) for _ in range(2)]
    lower = base.model.layers[0].self_attn.q_proj.weight.view(40, 2, 80)
    counts = {}
    for grid in ("exact", "released"):
        r = candidate_ratios(20, grid)[12]
        merged = merge_window(copy.deepcopy(base), 0, 1, [r, 1 - r], ffn, kv)
        q = merged.model.layers[0].self_attn.q_proj.weight.view(40, 2, 80)
        counts[grid] = sum(any(torch.equal(q[h], lower[k]) for k in range(40)) for h in range(40))
    assert counts == {"exact": 24, "released": 25}
    # the search itself tries exactly the released floats
    result = come_p(copy.deepcopy(base), calib_ids(4, windows=2, seq_len=8), 1,
                    ComePSettings(granularity=20, ratio_grid="released"), Execution())
    assert [c["r"] for c in result.iterations[0].candidates] == candidate_ratios(20, "released")


def test_settings_reject_windows_of_more_than_two_layers():
    with pytest.raises(ValueError, match="2 layers"):
        ComePSettings(layers_per_merge=3).check()


@pytest.mark.parametrize("arch", ["llama", "qwen3"])
def test_chosen_ratio_has_lowest_nll_recomputed_on_fresh_copies(arch):
    base, _ = build_random_model(arch, seed=6)
    ids = calib_ids(1)
    model = copy.deepcopy(base)
    result = come_p(model, ids, 2, ComePSettings(granularity=4), Execution())
    assert len(result.iterations) == 2
    for it in result.iterations:
        nll = [c["nll"] for c in it.candidates]
        assert [c["r"] for c in it.candidates] == candidate_ratios(4)
        best = min(range(len(nll)), key=lambda i: (nll[i], i))  # lowest, first on ties
        assert [c["chosen"] for c in it.candidates] == [i == best for i in range(5)]
        assert it.ratios == [it.candidates[best]["r"], 1.0 - it.candidates[best]["r"]]
    # iteration 0, two candidates (the chosen one and another), each on a fresh copy of the dense model
    it = result.iterations[0]
    ffn, kv = sensitivities(it, (it.window_start, it.window_stop))
    for i in {next(i for i, c in enumerate(it.candidates) if c["chosen"]), 1}:
        r = it.candidates[i]["r"]
        fresh = merge_window(copy.deepcopy(base), it.window_start, it.window_stop, [r, 1 - r], ffn, kv)
        assert hf_nll(fresh, ids) == pytest.approx(it.candidates[i]["nll"], rel=1e-5)
    # the final model is the dense model with both chosen merges applied
    replay = copy.deepcopy(base)
    for it in result.iterations:
        ffn, kv = sensitivities(it, (it.window_start, it.window_stop))
        merge_window(replay, it.window_start, it.window_stop, it.ratios, ffn, kv)
    for k, v in replay.state_dict().items():
        assert torch.equal(model.state_dict()[k], v), k


def test_r_one_is_dropping_the_upper_layer_except_norms():
    model, _ = build_random_model("qwen2", seed=2)
    ids = calib_ids(3)
    lo, hi = 3, 4
    gen = torch.Generator().manual_seed(0)
    ffn = [torch.rand(128, generator=gen) for _ in range(2)]
    kv = [torch.rand(2, generator=gen) for _ in range(2)]
    # reference: drop the upper layer and give the lower one the averaged norms
    dropped = drop_layers(copy.deepcopy(model), [hi])
    lower, upper = dropped.model.layers[lo], model.model.layers[hi]
    with torch.no_grad():
        for name, p in lower.named_parameters():
            if name.endswith("layernorm.weight"):
                p.copy_((p + dict(upper.named_parameters())[name]) / 2)
    with tentative_merge(model, lo, hi, [1.0, 0.0], ffn, kv), torch.no_grad():
        merged = model.model.layers[lo]
        for name, p in merged.named_parameters():
            assert torch.equal(p, dict(lower.named_parameters())[name]), name
        assert torch.equal(model(ids).logits, dropped(ids).logits)
    # the tentative merge left the model as it was
    assert model.config.num_hidden_layers == 8 and model.model.layers[hi] is upper
    assert [layer.self_attn.layer_idx for layer in model.model.layers] == list(range(8))


def test_incremental_equals_full_with_fewer_forwards():
    base, _ = build_random_model("mistral", seed=8)
    ids = calib_ids(2, windows=3, seq_len=16)
    settings = ComePSettings(granularity=3, sbi_estimator="angular_all", remerge="forbidden")
    runs = {}
    for mode in ("incremental", "full"):
        model = copy.deepcopy(base)
        runs[mode] = (come_p(model, ids, 2, settings, Execution(recompute=mode)), model.state_dict())
    inc, full = runs["incremental"][0], runs["full"][0]
    assert inc.groups == full.groups
    for a, b in zip(inc.iterations, full.iterations):
        assert a.candidates == b.candidates and a.ratios == b.ratios and a.sbi == b.sbi
    for k, v in runs["full"][1].items():
        assert torch.equal(runs["incremental"][1][k], v), k
    assert inc.layer_forwards < full.layer_forwards
    # full: per iteration L scoring forwards + 4 candidates × (L-1) forwards of the merged model
    assert full.layer_forwards == sum(it.n_layers + 4 * (it.n_layers - 1) for it in full.iterations)


def test_ratio_grid_is_a_variant_only_setting():
    """Variants without ratio_grid resolve to the same settings (and rule parameters) as before."""
    from layerpuzzle.methods.come.variants import resolve_settings
    from conftest import default_plan
    cfg = {"sbi_estimator": "cosine_mean", "remerge": "allowed", "last_layer_output": "raw",
           "query_mapping": "grouped", "qk_norm": "mean", "granularity": 20}
    assert "ratio_grid" not in resolve_settings("come_p", cfg, "m", {})
    assert resolve_settings("come_p", cfg, "m", {"ratio_grid": "released"})["ratio_grid"] == "released"
    parsed = default_plan().parse_slug("come_p", "ratio_grid=released,remerge=forbidden", "smollm2-135m")
    assert parsed == {"ratio_grid": "released", "remerge": "forbidden"}
    assert ComePSettings(**resolve_settings("come_p", cfg, "m", {})).ratio_grid == "exact"


def test_released_nll_is_the_released_get_loss_in_bf16():
    """nll=released: every candidate's loss equals the released get_loss (batches of 2, CE on bf16 logits)
    of a fresh copy merged at that ratio, bit for bit; the fp32 reading differs."""
    base, _ = build_random_model("llama", seed=6, num_hidden_layers=4)
    base.to(torch.bfloat16)
    ids = calib_ids(5, windows=4, seq_len=16)
    result = come_p(copy.deepcopy(base), ids, 1, ComePSettings(granularity=2, nll="released"),
                    Execution(batch_size=2))
    it = result.iterations[0]
    ffn, kv = sensitivities(it, (it.window_start, it.window_stop))
    for c in it.candidates:
        fresh = merge_window(copy.deepcopy(base), it.window_start, it.window_stop, [c["r"], 1 - c["r"]], ffn, kv)
        losses = []
        with torch.no_grad():
            for i in range(0, 4, 2):
                x = ids[i : i + 2]
                logits = fresh(x, attention_mask=torch.ones_like(x)).logits
                loss = F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), x[:, 1:].reshape(-1))
                losses.append(loss.float() * 16 * 2)
        assert c["nll"] == torch.stack(losses).sum().item()
        assert c["nll"] != pytest.approx(hf_nll(fresh, ids), rel=1e-7)
    with pytest.raises(ValueError, match="nll='bf16' is not allowed; allowed: fp32, released"):
        ComePSettings(nll="bf16").check()


def test_angular_all_sbi_equals_the_released_block_influence():
    """The released CoMe-P SBI of a span: Σ_tokens arccos(clamp(nan_to_num(diag(a @ b.T) / (|a||b|), 0.5), 0, 1)) / π
    over every token (zero-norm states give NaN there, read as 0.5)."""
    import math

    from layerpuzzle.methods.come.model_scores import AngularStats

    gen = torch.Generator().manual_seed(0)
    a, b = torch.randn(2, 6, 16, generator=gen), torch.randn(2, 6, 16, generator=gen)
    b[0, 1] = -a[0, 1]  # cos = -1 -> clamped to 0 -> arccos = π/2
    a[1, 2] = 0.0  # zero-norm state
    stats = AngularStats()
    stats.update(a[:1], b[:1])
    stats.update(a[1:], b[1:])
    total = 0.0
    for x, y in zip(a, b):
        sim = ((x @ y.T) / (x.norm(dim=-1, keepdim=True) * y.norm(dim=-1, keepdim=True))).diagonal()
        total += float((torch.arccos(sim.nan_to_num(nan=0.5).clamp(0, 1)) / math.pi).sum())
    assert stats.n_tokens == 12 and stats.angular_sum == pytest.approx(total, rel=1e-6)
    assert stats.mean() == pytest.approx(total / 12, rel=1e-6)
