"""A model entry's `trust_remote_code` reaches every from_pretrained of a workflow job (off by default)."""
import json

import pytest
import transformers
from snakemake.iocontainers import Namedlist

from layerpuzzle.jobs import run_job
from layerpuzzle.models import sources
from layerpuzzle.models.sources import load_model


class FakeJob:
    """The attributes of Snakemake's `snakemake` script object that run_job reads."""

    def __init__(self, config, out, model="m"):
        self.config = config
        self.wildcards = Namedlist(fromdict={"model": model})
        (out.parent / "dense").mkdir(exist_ok=True)
        self.input = Namedlist(fromdict={"model": str(out.parent / "dense")})
        self.output = Namedlist(fromdict={"prov": str(out)})
        self.params = Namedlist(fromdict={"model": model})
        self.log = Namedlist()
        self.rule = "fake_rule"
        self.threads = 1


@pytest.fixture
def recorded(monkeypatch):
    """from_pretrained of model and tokenizer replaced by recorders of the flag they were given."""
    seen = []

    class Tok:
        pad_token = None
        eos_token = "</s>"

    class Model:
        def to(self, device):
            return self

        def eval(self):
            return self

    def fake_model(path, **kw):
        seen.append(("model", kw["trust_remote_code"]))
        return Model()

    def fake_tok(path, **kw):
        seen.append(("tokenizer", kw["trust_remote_code"]))
        return Tok()

    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", fake_model)
    monkeypatch.setattr(transformers.AutoTokenizer, "from_pretrained", fake_tok)
    yield seen
    sources.set_trust_remote_code(False)


@pytest.mark.parametrize("entry, expected", [({"source": "hub", "repo_id": "o/m"}, False),
                                             ({"source": "hub", "repo_id": "o/m", "trust_remote_code": False}, False),
                                             ({"source": "hub", "repo_id": "o/m", "trust_remote_code": True}, True)])
def test_job_loads_follow_the_model_entry(tmp_path, recorded, entry, expected):
    out = tmp_path / "x.prov.json"
    run_job(FakeJob({"models": {"m": entry}}, out), lambda job: load_model(job.input.model) and None)
    assert recorded == [("model", expected), ("tokenizer", expected)]
    record = json.dumps(json.loads(out.read_text()))
    assert ('"trust_remote_code": true' in record) is expected  # the provenance says so when it was on


def test_a_later_job_without_the_flag_is_off_again(tmp_path, recorded):
    """The flag is set per job: a job on another model entry does not inherit it."""
    config = {"models": {"remote": {"source": "hub", "repo_id": "o/r", "trust_remote_code": True},
                         "plain": {"source": "hub", "repo_id": "o/p"}}}
    run_job(FakeJob(config, tmp_path / "a.prov.json", "remote"), lambda job: load_model("d") and None)
    run_job(FakeJob(config, tmp_path / "b.prov.json", "plain"), lambda job: load_model("d") and None)
    assert [flag for _, flag in recorded] == [True, True, False, False]


def test_an_explicit_argument_wins(recorded):
    sources.set_trust_remote_code(True)
    load_model("d", trust_remote_code=False)
    assert recorded == [("model", False), ("tokenizer", False)]
