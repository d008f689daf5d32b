"""SLEB: the greedy choice, incremental NLLs equal to full re-evaluation, and the cost of the increments."""
import copy

import pytest
import torch
import torch.nn.functional as F

from layerpuzzle.engine.runner import LayerwiseRunner
from layerpuzzle.methods.dlp import sleb_order
from layerpuzzle.models import architecture as arch
from layerpuzzle.models.random_models import build_random_model


def full_nll(model, ids, removed):
    """SLEB get_loss of the model with ``removed`` deleted, from a plain HF forward of a pruned copy."""
    pruned = arch.drop_layers(copy.deepcopy(model), removed)
    with torch.no_grad():
        logits = pruned(ids).logits.float()
    ce = F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), ids[:, 1:].reshape(-1), reduction="none")
    return float((ce.view(ids.shape[0], -1).mean(1).double() * ids.shape[1]).sum())


@pytest.fixture(scope="module", params=["llama", "qwen3"])
def run(request):
    model, _ = build_random_model(request.param, seed=7)
    ids = torch.randint(0, 256, (3, 24), generator=torch.Generator().manual_seed(4))
    runner = LayerwiseRunner(model, ids, batch_size=2)
    return model, ids, sleb_order(runner, 3, progress=False)


def test_candidates_and_barriers(run):
    _, _, res = run
    cands = res.candidates
    # 8 layers, barriers 1/1: 6, 5, 4 candidates; never the first or last alive block
    assert cands.groupby("iteration").size().tolist() == [6, 5, 4]
    assert not cands.layer.isin([0, 7]).any()
    for it, removed in enumerate(res.order.layers):
        assert removed not in set(cands[cands.iteration > it].layer)


def test_picks_the_argmin_candidate(run):
    _, _, res = run
    for it, step in res.candidates.groupby("iteration"):
        best = step.loc[step.nll.idxmin()]
        assert step.chosen.sum() == 1 and bool(best.chosen)
        assert res.order.layers[it] == best.layer and res.order.scores[it] == best.nll


def test_incremental_nlls_equal_full_reevaluation(run):
    model, ids, res = run
    for _, row in res.candidates.iterrows():
        removed = res.order.layers[: int(row.iteration)] + [int(row.layer)]
        assert row.nll == pytest.approx(full_nll(model, ids, removed), rel=1e-6)


def test_incremental_cost(run):
    _, _, res = run
    # initial inputs of layers 1..7: 7; a step with m alive costs (m-2)(m-1)/2 for its candidates
    # and m-2-p* to refresh the cached inputs after removing position p*
    expected, m = 7, 8
    for it in range(3):
        p = int(res.candidates[(res.candidates.iteration == it) & res.candidates.chosen].position.iloc[0])
        expected += (m - 2) * (m - 1) // 2 + (m - 2 - p)
        m -= 1
    assert res.layer_forwards == expected
    assert res.layer_forwards < 15 * 7  # full re-evaluation: 15 candidates × 7 layers


def test_barriers_zero_and_errors():
    model, _ = build_random_model("llama", seed=1, num_hidden_layers=4)
    ids = torch.randint(0, 256, (2, 16), generator=torch.Generator().manual_seed(0))
    res = sleb_order(LayerwiseRunner(model, ids, 2), 2, early_barrier=0, latter_barrier=0, progress=False)
    assert res.candidates.groupby("iteration").size().tolist() == [4, 3]
    for _, row in res.candidates.iterrows():
        removed = res.order.layers[: int(row.iteration)] + [int(row.layer)]
        assert row.nll == pytest.approx(full_nll(model, ids, removed), rel=1e-6)
    with pytest.raises(ValueError, match="no candidate"):
        sleb_order(LayerwiseRunner(model, ids, 2), 3, progress=False)  # 4 layers, barriers 1/1: 2 steps at most


def released_get_loss(model, ids, removed, bs=1):
    """The CoMe code's get_loss on a pruned copy: per batch nn.CrossEntropyLoss on the model-dtype logits
    (mean over the batch's shifted tokens), .float() * seqlen * batch, summed in fp32."""
    pruned = arch.drop_layers(copy.deepcopy(model), removed)
    losses = []
    with torch.no_grad():
        for i in range(0, ids.shape[0], bs):
            x = ids[i : i + bs]
            logits = pruned(x, attention_mask=torch.ones_like(x)).logits
            loss = torch.nn.CrossEntropyLoss()(logits[:, :-1, :].contiguous().reshape(-1, logits.shape[-1]),
                                               x[:, 1:].reshape(-1))
            losses.append(loss.float() * ids.shape[1] * x.shape[0])
    return torch.stack(losses).sum().item()


def test_released_nll_equals_the_released_get_loss_in_bf16():
    """No barriers and the released loss (the CoMe code's SLEB): every candidate's value equals get_loss of
    the pruned model bit for bit; in bf16 it differs from the fp32-logit NLL."""
    model, _ = build_random_model("llama", seed=3, num_hidden_layers=5)
    model.to(torch.bfloat16)
    ids = torch.randint(0, 256, (3, 24), generator=torch.Generator().manual_seed(2))
    res = sleb_order(LayerwiseRunner(model, ids, 1), 2, early_barrier=0, latter_barrier=0, nll="released",
                     progress=False)
    assert res.candidates.groupby("iteration").size().tolist() == [5, 4]
    for _, row in res.candidates.iterrows():
        removed = res.order.layers[: int(row.iteration)] + [int(row.layer)]
        assert row.nll == released_get_loss(model, ids, removed)
    fp32 = sleb_order(LayerwiseRunner(model, ids, 1), 1, early_barrier=0, latter_barrier=0, progress=False)
    assert (fp32.candidates.nll.to_numpy() != res.candidates[res.candidates.iteration == 0].nll.to_numpy()).all()
    assert res.order.info["nll"] == "released" and "nll" not in fp32.order.info
    with pytest.raises(ValueError, match="nll='bf16'; allowed: fp32, released"):
        sleb_order(LayerwiseRunner(model, ids, 1), 1, nll="bf16")
