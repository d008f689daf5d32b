"""Training chunks and the resumable batch order."""
import pytest
import torch

from layerpuzzle.distill.data import BatchOrder, split_validation, training_data_spec


def test_batch_order_is_a_pure_function_of_the_step():
    order = BatchOrder(n_chunks=5, batch_size=2, seed=3)
    first = [order.indices(s).tolist() for s in range(10)]
    again = BatchOrder(5, 2, 3)
    assert [again.indices(s).tolist() for s in reversed(range(10))] == list(reversed(first))
    stream = [i for batch in first for i in batch]
    for p in range(4):  # every pass over the chunk stream is a permutation of the 5 chunks
        assert sorted(stream[5 * p: 5 * p + 5]) == [0, 1, 2, 3, 4]
    assert stream[:5] != stream[5:10]  # passes are reshuffled
    assert order.position(3) == {"stream_position": 6, "pass": 1, "offset": 1}
    assert BatchOrder(5, 2, 4).indices(0).tolist() != first[0] or BatchOrder(5, 2, 4).indices(1).tolist() != first[1]


def test_split_validation_and_spec():
    chunks = torch.arange(12).view(6, 2)
    train, val = split_validation(chunks, 2)
    assert train.tolist() == chunks[:4].tolist() and val.tolist() == chunks[4:].tolist()
    assert split_validation(chunks, 0)[1].shape[0] == 0
    with pytest.raises(ValueError):
        split_validation(chunks, 6)
    spec = training_data_spec({"dataset": "wikitext2", "n": 64, "seed": 11, "seq_len": 128})
    assert spec.id == "wikitext2-n64-s11-len128"
