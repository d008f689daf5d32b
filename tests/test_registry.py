"""The method registry: one entry per method; a new method needs its package, schema fragment, rule file and
one registry entry, and nothing else (the toy-method test builds one that way and runs it)."""
import shutil
import subprocess
import sys

import pandas as pd
import pytest
import yaml

from layerpuzzle.methods import registry
from layerpuzzle.tables.results import METHOD_ORDER

from conftest import REPO
from workflow_utils import tiny_config


def test_every_schema_fragment_has_an_entry_and_every_entry_its_files():
    fragments = {p.name[: -len(".schema.yaml")] for p in (REPO / "config" / "methods").glob("*.schema.yaml")}
    assert fragments == set(registry.REGISTRY)
    for e in registry.REGISTRY.values():
        assert (REPO / e.schema_fragment).is_file()
        text = (REPO / e.rule_file).read_text()
        assert f"/{e.key}/" in text or f'"{e.key}"' in text or f"rule {e.key}:" in text, e.key
        assert (REPO / "docs" / "methods" / f"{e.key}.md").is_file(), e.key


def test_table_order_and_display_names_derive_from_the_registry():
    assert METHOD_ORDER[0] == "Dense"
    assert METHOD_ORDER[1:11] == ("Mag+", "Taylor+", "ShortGPT", "SLEB", "FuseGPT-MI", "FuseGPT-MI+F", "MKA", "LaCo",
                                  "CoMe", "CoMe-P")  # the paper's Tables 8-10
    assert registry.key_of("CoMe-P") == "come_p" and registry.display_name("come_p") == "CoMe-P"
    assert registry.keys(family="post-training") == ["come_mp", "come_sp", "fusegpt_train", "streamline"]
    # the Snakefile includes the registry's rule files, each once
    assert registry.rule_files() == ["rules/dlp_baselines.smk", "rules/merge_baselines.smk", "rules/come.smk",
                                     "rules/posttrain.smk", "rules/width_pruning.smk"]
    # width pruning (LaCo's baselines) after the rows the CoMe paper shows; checkpoints of uneven width
    assert METHOD_ORDER[-2:] == ("LLM-Pruner", "SliceGPT")
    assert {registry.entry(k).checkpoint for k in ("llm_pruner", "slicegpt")} == {"uneven width"}


def test_bad_entries_are_rejected():
    with pytest.raises(ValueError, match="family 'pruning' is not allowed; allowed: direct removal"):
        registry.MethodEntry("x", "X", 1, "pruning", "layers removed", "rules/x.smk")
    with pytest.raises(ValueError, match="registered twice"):
        registry._index((registry.ENTRIES[0], registry.ENTRIES[0]))  # noqa: SLF001
    with pytest.raises(KeyError, match="not registered; registered: mag_plus"):
        registry.entry("toy")


# ------------------------------------------------------------------ the toy method, end to end
TOY_PACKAGE = '''"""Toy method (the registry test): drop the last n layers, n by the Table 3 rule."""
import copy

from ...models.checkpoint import layers_to_remove, save_pruned
from ...models.sources import load_model
from ..dlp.removal import remove_layers
from ..registry import display_name


def drop_last(model_dir, out_dir, *, target_fraction, base_model, label, params):
    model, tok = load_model(model_dir, dtype="float32", device="cpu")
    n = layers_to_remove(model.config, target_fraction)
    last = model.config.num_hidden_layers
    model, dense_config, groups = remove_layers(model, list(range(last - n, last)))
    save_pruned(model, tok, out_dir, dense_config=dense_config, base_model=base_model, method=display_name("toy"),
                variant=label, params=dict(params), target_fraction=target_fraction, layer_groups=groups,
                summary="The last layers removed (toy).")
'''

TOY_SCHEMA = '''type: object
additionalProperties: false
default: {}
description: A toy method for the registry test.
properties:
  enabled: {type: boolean, default: false}
  variants:
    type: array
    default: [{keep_first: true}]
    items:
      type: object
      additionalProperties: false
      properties:
        label: {type: string, default: ""}
        targets: {type: [array, "null"], items: {type: number}, default: null}
        keep_first: {type: boolean, default: true}
'''

TOY_RULES = '''rule toy:
    input:
        model=get_model_dir,
    output:
        ckpt=directory(pruned_dir("toy")),
    wildcard_constraints:
        target=TARGET_RE,
    params:
        variant=variant_params("toy"),
    log:
        method_log("toy"),
    conda:
        ENV_MODEL
    run:
        from layerpuzzle.methods.toy import drop_last

        v = dict(params.variant)
        drop_last(input.model, output.ckpt, target_fraction=target_fraction(wildcards.target),
                  base_model=wildcards.model, label=v.pop("label"), params=v)
'''


@pytest.mark.slow
def test_a_toy_method_appears_in_all_tables_and_the_results_table(tmp_path, mirror):
    """Package + schema fragment + rule file + one registry entry: the toy's checkpoint is built, evaluated and
    shown in the results table at the place its entry gives it (before Mag+), with no other file touched."""
    tree = tmp_path / "repo"
    tree.mkdir()
    for name in ("Snakefile", "rules", "config", "src", "workflow", "envs", "report", "resources"):
        src = REPO / name
        if src.is_dir():
            shutil.copytree(src, tree / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        else:
            shutil.copy(src, tree / name)
    toy = tree / "src" / "layerpuzzle" / "methods" / "toy"
    toy.mkdir()
    (toy / "__init__.py").write_text(TOY_PACKAGE)
    (tree / "config" / "methods" / "toy.schema.yaml").write_text(TOY_SCHEMA)
    (tree / "rules" / "toy.smk").write_text(TOY_RULES)
    reg = tree / "src" / "layerpuzzle" / "methods" / "registry.py"
    text = reg.read_text()
    anchor = "ENTRIES: tuple[MethodEntry, ...] = (\n"
    reg.write_text(text.replace(anchor, anchor + '    MethodEntry("toy", "Toy", 5, "direct removal", "layers removed", '
                                                 '"rules/toy.smk"),\n'))

    cfg = tiny_config(tmp_path, enable=("mag_plus",))
    raw = yaml.safe_load(cfg.read_text())
    raw["methods"]["toy"] = {"enabled": True}
    cfg.write_text(yaml.safe_dump(raw))
    work = tmp_path / "work"
    work.mkdir()
    env_snakefile = tree / "Snakefile"
    res = subprocess.run([sys.executable, "-m", "snakemake", "-s", str(env_snakefile), "-d", str(work),
                          "--configfile", str(cfg), "--cores", "2", "all_tables"],
                         capture_output=True, text=True, timeout=1800,
                         env={**__import__("os").environ, "LAYERPUZZLE_DATA_MIRROR": str(mirror),
                              "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"})
    assert res.returncode == 0, res.stderr[-6000:]
    ckpt = work / "results" / "random-llama" / "pruned" / "toy" / "sp25" / "keep_first=true"
    assert (ckpt / "pruning.json").is_file()
    table = pd.read_csv(work / "results" / "tables" / "results.csv")
    assert list(table.Method) == ["Dense", "Toy", "Mag+"]
    toy_row = table[table.Method == "Toy"].iloc[0]
    assert toy_row["Sparsity (%)"] > 0 and pd.notna(toy_row["Avg"])
    # and the same tree without the registry entry rejects the toy's schema fragment before any job
    reg.write_text(text)
    res = subprocess.run([sys.executable, "-m", "snakemake", "-s", str(env_snakefile), "-d", str(work),
                          "--configfile", str(cfg), "-n", "all_tables"], capture_output=True, text=True, timeout=600)
    assert res.returncode != 0 and "unregistered methods: toy" in res.stdout + res.stderr


@pytest.mark.slow
def test_no_scheduled_job_depends_on_the_order_of_the_method_rule_files(tmp_path):
    """The Snakefile includes the registry's rule files; including them in reverse order schedules exactly the
    same jobs (outputs) for the tiny config with every method enabled."""
    import re

    tree = tmp_path / "repo"
    tree.mkdir()
    for name in ("Snakefile", "rules", "config", "src", "workflow", "envs", "report", "resources"):
        src = REPO / name
        if src.is_dir():
            shutil.copytree(src, tree / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        else:
            shutil.copy(src, tree / name)
    cfg = tiny_config(tmp_path, enable=tuple(registry.keys()))

    def scheduled(snakefile):
        res = subprocess.run([sys.executable, "-m", "snakemake", "-s", str(snakefile), "-d", str(tmp_path / "w"),
                              "--configfile", str(cfg), "-n", "-p", "all_tables"], capture_output=True, text=True,
                             timeout=900, env={**__import__("os").environ, "HF_HUB_OFFLINE": "1"})
        assert res.returncode == 0, res.stderr[-4000:]
        text = res.stdout + res.stderr
        return sorted(re.findall(r"^\s+output: (.+)$", text, re.M)), sorted(re.findall(r"^rule (\w+):", text, re.M))

    forward = scheduled(tree / "Snakefile")
    snakefile = (tree / "Snakefile").read_text()
    assert "for _rule_file in METHOD_RULE_FILES:" in snakefile
    (tree / "Snakefile").write_text(snakefile.replace("for _rule_file in METHOD_RULE_FILES:",
                                                      "for _rule_file in reversed(METHOD_RULE_FILES):"))
    backward = scheduled(tree / "Snakefile")
    assert len(forward[0]) > 50 and forward == backward
