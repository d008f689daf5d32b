"""Training chunks and the resumable batch order."""
import pytest
import torch

from layerpuzzle.distill.data import BatchOrder, data_use, describe_data_use, split_validation, training_data_spec


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


def test_data_use_counts_passes_and_warns_when_batches_wrap(caplog):
    order = BatchOrder(n_chunks=10, batch_size=4, seed=1)
    with caplog.at_level("INFO", logger="layerpuzzle.distill.data"):
        one = data_use(order, 2)  # 8 of 10 chunks: no wrap, nothing logged
    assert one == {"chunks": 10, "batch_size": 4, "steps_per_phase": 2, "samples_per_phase": 8,
                   "passes_per_phase": 0.8, "wraps": False, "phases": 1, "phases_share_batches": False}
    assert not caplog.records
    with caplog.at_level("INFO", logger="layerpuzzle.distill.data"):
        many = data_use(order, 5, phases=3, what="merged layer")  # 20 draws from 10 chunks
    assert many["passes_per_phase"] == 2.0 and many["wraps"] and many["phases_share_batches"]
    assert caplog.records[-1].levelname == "WARNING"
    assert ("5 steps x batch 4 = 20 chunks drawn from 10: 2 passes over the data, the batches repeat (and each "
            "of the 3 merged layers is trained on the same batch sequence)") in caplog.text
    assert describe_data_use(many, "merged layer") == (
        "Training data use: 5 steps x batch 4 = 20 chunks drawn from 10 per merged layer, 2 pass(es) over the "
        "data; the batches wrap (repeat, reshuffled); all 3 merged layers use the same batch sequence.")
    # the stream really repeats chunks after one pass
    drawn = [i for s in range(5) for i in order.indices(s).tolist()]
    assert len(drawn) == 20 and len(set(drawn)) == 10


def test_come_mp_records_the_passes_its_layers_really_made(caplog):
    """The record matches what the trainer drew: every layer sees the same 16 draws from 10 chunks (1.6 passes)."""
    from layerpuzzle.distill.come_mp import MPSettings, distill_mp
    from layerpuzzle.distill.teacher_activations import StoredTeacher, teacher_states
    from layerpuzzle.distill.trainer import ResumeStore

    from test_distill_come import merged_student

    dense, student, pairs, chunks = merged_student()

    class Recording(StoredTeacher):
        def batch(self, idx, layers=None):
            drawn.append((tuple(layers or ()), idx.tolist()))
            return super().batch(idx, layers)

    drawn = []
    teacher = Recording(teacher_states(dense, chunks, [a for _, a in pairs], progress=False))
    with caplog.at_level("WARNING", logger="layerpuzzle.distill.data"):
        result = distill_mp(student, chunks, teacher, pairs, MPSettings(lrs=(1e-3, 1e-3), steps=8, batch_size=2),
                            ResumeStore(None), progress=False)
    per_layer = {a: [i for lay, idx in drawn if lay == (a,) for i in idx] for _, a in pairs}
    assert per_layer[3] == per_layer[6] and len(per_layer[3]) == 16  # same batches for both layers
    use = result.details["data_use"]
    assert use["passes_per_phase"] == len(per_layer[3]) / chunks.shape[0] == 1.6
    assert use["wraps"] and use["phases"] == 2 and use["phases_share_batches"]
    assert "1.6 passes over the data" in caplog.text and "each of the 2 merged layers" in caplog.text
