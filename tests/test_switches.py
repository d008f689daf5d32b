"""Switches are declared once in Python (layerpuzzle.methods.switches); the schema fragments agree with them exactly."""
import pytest
import yaml

from layerpuzzle.methods import registry
from layerpuzzle.methods.switches import Switch, card_notes, method_switches

from conftest import REPO

# enums that are data choices, not switches between the paper and a released code
DATA_KEYS = {"dataset", "sampling", "calib_dataset", "calib_packing", "dtype", "packing", "selection",
             "sentence_source"}
# enums that are a paper's own ablation settings (LaCo Table 15: drop vs merge), not paper-vs-released switches
ABLATION_ENUMS = {"laco": {"merge"}}
DATA_BLOCKS = {"calibration", "data", "ablations"}


def schema_enums(key: str) -> list[tuple[str, str, list, object]]:
    """(scope, name, enum, default or None) of every switch-like enum of method ``key``'s schema fragment."""
    frag = yaml.safe_load((REPO / registry.entry(key).schema_fragment).read_text())
    out = []
    props = frag.get("properties", {})
    for name, sub in props.items():
        if name in DATA_BLOCKS or name in DATA_KEYS:
            continue
        if "enum" in sub:
            out.append(("method", name, sub["enum"], sub.get("default")))
        if name == "model_settings":
            for n, s in ((sub.get("additionalProperties") or {}).get("properties") or {}).items():
                if "enum" in s and n not in DATA_KEYS:
                    out.append(("model_settings", n, s["enum"], s.get("default")))
    for name, sub in ((props.get("variants") or {}).get("items") or {}).get("properties", {}).items():
        if "enum" in sub and name not in DATA_KEYS and name not in ABLATION_ENUMS.get(key, ()):
            out.append(("variant", name, sub["enum"], sub.get("default")))
    return out


@pytest.mark.parametrize("key", registry.keys())
def test_schema_lists_exactly_the_declared_switches(key):
    declared = method_switches(key)
    found = schema_enums(key)
    for scope, name, enum, default in found:
        assert name in declared, f"{key}: schema enum {scope} `{name}` is not a declared switch"
        assert tuple(enum) == declared[name].allowed, f"{key}.{name} ({scope}): schema {enum} vs declared"
        if default is not None:
            assert default == declared[name].default, f"{key}.{name} ({scope}): schema default {default!r}"
    assert set(declared) == {name for _, name, _, _ in found}, f"{key}: declared but not in the schema"


def test_the_agreement_test_can_fail(monkeypatch):
    """A negative control: a declaration that drifts from the schema is caught."""
    import layerpuzzle.methods.come.switches as come

    drifted = tuple(Switch(s.name, s.allowed[:-1], s.default, {v: s.meanings[v] for v in s.allowed[:-1]}, None)
                    if s.name == "sbi_estimator" else s for s in come.SWITCHES["come"])
    monkeypatch.setitem(come.SWITCHES, "come", drifted)
    with pytest.raises(AssertionError, match="sbi_estimator"):
        test_schema_lists_exactly_the_declared_switches("come")


def test_every_switch_explains_each_value_and_its_released_value():
    for key in registry.keys():
        for s in method_switches(key).values():
            assert set(s.meanings) == set(s.allowed) and all(m.strip() for m in s.meanings.values())
            assert s.released is None or s.released in s.allowed


def test_check_names_the_key_the_value_and_what_is_allowed():
    switch = method_switches("come")["sbi_estimator"]
    assert switch.check("released") == "released"
    with pytest.raises(ValueError, match=r"`methods.come.sbi_estimator`: value 'median' is not allowed; allowed: "
                                         r"cosine_mean, released, angular_all"):
        switch.check("median", "methods.come.sbi_estimator")


def test_model_card_notes_come_from_the_declarations():
    notes = card_notes("come", {"settings": {"sbi_estimator": "released", "remerge": "allowed", "p": 1.0}})
    s = method_switches("come")
    assert notes == [s["remerge"].note("allowed"), s["sbi_estimator"].note("released")]
    assert "(the released code's behaviour)" in notes[1] and "released" not in notes[0].split(":")[0][10:]
    assert card_notes("laco", {"variant": "released", "search_dtype": "model"}) == [
        method_switches("laco")["search_dtype"].note("model"), method_switches("laco")["variant"].note("released")]
    assert card_notes("reverse", {"keep_last": 0}) == []
