"""T_layer (paper App. B.2) reproduces the paper's four Table 7 values from their settings."""
import pandas as pd
import pytest

from layerpuzzle.distill.t_layer import PAPER_TABLE7, TrainingBudget, t_layer

from conftest import REPO


def test_t_layer_reproduces_the_papers_four_values():
    assert t_layer(10, 7, 20, 128, 8, 2048) == 2_936_012_800          # FuseGPT 2.93B
    assert t_layer(1, 1, 5, 938, 32, 2048) == 307_363_840             # LLM-Streamline 0.31B
    assert t_layer(7, 1, 1, 2000, 32, 512) == 229_376_000             # CoMe-mp 0.23B
    assert t_layer(1, 7, 1, 10000, 32, 512) == 1_146_880_000          # CoMe-sp 1.15B
    printed = {"FuseGPT": 2.936e9, "LLM-Streamline": 3.07e8, "CoMe-mp": 2.29e8, "CoMe-sp": 1.147e9}
    for method, budget in PAPER_TABLE7.items():
        assert budget.t_layer == pytest.approx(printed[method], rel=2e-3)


def test_paper_budgets_match_the_copied_table7_csv():
    paper = pd.read_csv(REPO / "resources" / "paper" / "table07_posttrain.csv")
    for r in paper.itertuples(index=False):
        b = PAPER_TABLE7[r.method]
        assert (b.iterations, b.layers_per_iteration, b.epochs, b.steps, b.batch_size, b.token_length) == (
            r.iterations, r.layers_per_iteration, r.epochs, r.steps, r.batch_size, r.token_length)
        assert b.t_layer == r.T_layer_computed_tokens


def test_budget_dict_and_validation():
    b = TrainingBudget(2, 3, 1, 5, 4, 16)
    assert b.as_dict()["T_layer"] == 2 * 3 * 5 * 4 * 16 == 1920
    assert t_layer(3, 1, 1, 0, 8, 128) == 0
    with pytest.raises(ValueError):
        t_layer(1, 1, 1, 1.5, 1, 1)
    with pytest.raises(ValueError):
        t_layer(1, -1, 1, 1, 1, 1)
