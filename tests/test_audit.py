"""The reproducibility audit (layerpuzzle.audit, rule audit).

Unit tests build small runs by hand: real provenance records (build_record) over
files in a temporary working directory, a root file outside it, a chain
calib -> scores and calib -> checkpoint directory. The slow test runs the real
workflow on the random LLaMA, audits it (passes; the sampled jobs re-execute to
the recorded bytes), then appends one byte to the calibration set and audits
again (fails, naming exactly that file).
"""
from __future__ import annotations

import json
import shutil
import struct
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml
from safetensors.torch import save

from layerpuzzle.atomic import write_json
from layerpuzzle.audit import AuditSettings, JobSelector, Tolerance, build_manifest, select_jobs
from layerpuzzle.audit.compare import RESUME_RULE, SAFETENSORS_RULE, TIMING_RULE, compare_output
from layerpuzzle.audit.manifest import tree_state
from layerpuzzle.audit.paper_deltas import column_kind, paper_deltas, table_deltas
from layerpuzzle.audit.records import FileRef
from layerpuzzle.audit.report import render_markdown, to_json
from layerpuzzle.audit.run import AuditResult, verdict
from layerpuzzle.audit.snakemake_state import SnakemakeState, parse_summary
from layerpuzzle.config import validate_config
from layerpuzzle.provenance import build_record, sha256_path

REPO = Path(__file__).resolve().parents[1]
CALIB = "results/m/calib/c.bin"
BI = "results/m/scores/bi.parquet"
CKPT = "results/m/pruned/rev/sp25/v"


# ------------------------------------------------------------------ a hand-made run
def job(rule: str, inputs: dict, outputs: dict, prov: str | None, *, seed=0, started=1.0, wall=1.0) -> dict:
    """Write the provenance record of a job whose outputs exist (cwd = the working directory)."""
    record = build_record(rule=rule, inputs=inputs, outputs=outputs, params={"rule": rule}, seed=seed,
                          started=started, finished=started + wall)
    if prov:
        write_json(prov, record)
    for paths in outputs.values():
        for p in paths:
            if Path(p).is_dir():
                write_json(Path(p) / "provenance.json", record)
    return record


def write(path: str, data: bytes) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_bytes(data)


def make_calib(root: Path, data: bytes = b"windows", started: float = 1.0) -> None:
    write(CALIB, data)
    job("calibration_set", {"data": [str(root)]}, {"calib": [CALIB]}, "results/m/calib/c.prov.json",
        seed=10, started=started, wall=3.0)


@pytest.fixture
def run(tmp_path, monkeypatch) -> tuple[Path, Path]:
    """(workdir, root file): calib <- root; bi <- calib; checkpoint dir <- calib."""
    root = tmp_path / "mirror" / "data.txt"
    root.parent.mkdir()
    root.write_text("some text rows\n")
    work = tmp_path / "run"
    work.mkdir()
    monkeypatch.chdir(work)
    make_calib(root)
    write(BI, b"scores")
    job("layer_scores", {"calib": [CALIB]}, {"bi": [BI]}, "results/m/scores/scores.prov.json", seed=10, started=2.0,
        wall=2.0)
    write(f"{CKPT}/model.bin", b"weights")
    write(f"{CKPT}/config.json", b"{}")
    job("dlp_checkpoint", {"calib": [CALIB]}, {"ckpt": [CKPT]}, None, started=3.0, wall=1.0)
    return work, root


def kinds(manifest) -> list[tuple[str, str]]:
    return sorted((f.kind, f.artifact) for f in manifest.findings)


# ------------------------------------------------------------------ manifest
def test_clean_run_has_no_findings_and_full_lineage(run):
    work, root = run
    m = build_manifest(work)
    assert kinds(m) == []
    assert sorted(m.artifacts) == [CALIB, CKPT, BI]
    assert {a.status for a in m.artifacts.values()} == {"ok"} and all(a.chain_ok for a in m.artifacts.values())
    assert m.artifacts[CKPT].kind == "dir" and m.artifacts[CKPT].sha256 == sha256_path(work / CKPT)
    assert m.artifacts[CKPT].record == f"{CKPT}/provenance.json"
    lin = m.lineage(BI)
    assert lin.ancestors == (CALIB,)
    assert lin.roots == (FileRef(str(root), sha256_path(root)),)
    assert lin.seeds == {f"layer_scores:{BI}": 10, f"calibration_set:{CALIB}": 10}
    assert m.roots == {str(root): sha256_path(root)}


def test_one_appended_byte_names_exactly_that_artifact(run):
    work, _ = run
    with open(CALIB, "ab") as f:
        f.write(b"\0")
    m = build_manifest(work)
    assert kinds(m) == [("tampered", CALIB)]
    assert m.artifacts[CALIB].status == "tampered"
    # downstream artifacts are as recorded, but their chain now passes through an altered file
    assert m.artifacts[BI].status == "ok" and not m.artifacts[BI].chain_ok and not m.artifacts[CKPT].chain_ok


def test_directory_output_hash_ignores_its_record(run):
    work, _ = run
    record = work / CKPT / "provenance.json"
    record.write_text(json.dumps(json.loads(record.read_text())))  # same record, other bytes
    (work / CKPT / ".snakemake_timestamp").write_text("")  # Snakemake's marker
    assert kinds(build_manifest(work)) == []
    (work / CKPT / "model.bin").write_bytes(b"weightz")
    assert kinds(build_manifest(work)) == [("tampered", CKPT)]


def test_remade_input_makes_consumers_stale(run):
    work, root = run
    make_calib(root, data=b"other windows", started=5.0)  # the calibration set re-made, consumers not
    m = build_manifest(work)
    assert kinds(m) == [("stale_input", CKPT), ("stale_input", BI)]
    assert "re-made after this job ran" in m.findings[0].message
    assert m.artifacts[CALIB].chain_ok and not m.artifacts[BI].chain_ok


def test_changed_root_input(run):
    work, root = run
    root.write_text("other rows\n")
    m = build_manifest(work)
    assert kinds(m) == [("external_input_changed", str(root))]
    root.unlink()
    assert kinds(build_manifest(work)) == [("external_input_missing", str(root))]


def test_unrecorded_files_ignored_patterns_and_leftovers(run):
    work, _ = run
    write("results/m/stray.txt", b"?")
    write("results/audit/report.md", b"# old report")
    # a re-execution's scratch run holds records of the same paths; ignored, they conflict with nothing
    rec = json.loads(Path("results/m/calib/c.prov.json").read_text())
    write_json("results/audit/scratch/00-calibration_set/results/m/calib/c.prov.json", {**rec, "started_unix": 9.0})
    m = build_manifest(work, ignore=["results/audit/*"])
    assert kinds(m) == [("no_record", "results/m/stray.txt")]


def test_leftovers_of_killed_atomic_writes_are_not_artifacts(run):
    """A killed job leaves `.<name>.tmp-XXXX` (for a checkpoint, a whole directory); its rerun removes it."""
    work, _ = run
    write("results/m/calib/.c.bin.tmp-abc123", b"half")
    write("results/m/pruned/rev/sp25/.v.tmp-k2_9zzab/model.safetensors", b"a full copy of the weights")
    # not even a record inside a leftover counts (it would claim CKPT with other bytes)
    rec = json.loads(Path(f"{CKPT}/provenance.json").read_text())
    write_json("results/m/pruned/rev/sp25/.v.tmp-k2_9zzab/provenance.json",
               {**rec, "started_unix": 9.0, "outputs": {"ckpt": [{"path": CKPT, "sha256": "0" * 64}]}})
    m = build_manifest(work)
    assert kinds(m) == [] and sorted(m.artifacts) == [CALIB, CKPT, BI]
    # an ordinary file beside them still has no record
    write("results/m/pruned/rev/sp25/v.tmp-k2_9zzab", b"?")
    assert kinds(build_manifest(work)) == [("no_record", "results/m/pruned/rev/sp25/v.tmp-k2_9zzab")]


def test_missing_output_expected_output_and_bad_record(run):
    work, _ = run
    Path(BI).unlink()
    write("results/m/broken.prov.json", b"{")
    m = build_manifest(work, expected=[BI, "results/tables/results.csv"])
    assert kinds(m) == [("bad_record", "results/m/broken.prov.json"), ("missing", "results/m/scores/bi.parquet"),
                        ("missing", "results/tables/results.csv")]


def test_input_gone_but_recorded(run):
    work, _ = run
    Path(CALIB).unlink()
    found = kinds(build_manifest(work))
    assert ("missing", CALIB) in found and found.count(("input_missing", CALIB)) == 2


def test_dirty_tree_and_mixed_versions_are_one_finding_each(run):
    work, _ = run
    for path, commit, dirty in [("results/m/calib/c.prov.json", "a" * 40, True),
                                ("results/m/scores/scores.prov.json", "b" * 40, False)]:
        rec = json.loads(Path(path).read_text())
        rec["git"] = {"commit": commit, "dirty": dirty}
        write_json(path, rec)
    m = build_manifest(work)
    assert [f.kind for f in m.findings] == ["dirty_tree", "mixed_code_versions"]
    assert m.findings[0].message.startswith("1 of 3 jobs") and "3 code versions" in m.findings[1].message


def test_tree_state_changes_with_artifacts_not_with_ignored_files(run):
    work, _ = run
    before = tree_state(work, ignore=["results/audit/*"])
    write("results/audit/report.md", b"new")
    write("results/m/pruned/rev/sp25/.v.tmp-abcd1234/model.safetensors", b"killed job's leftover")
    assert tree_state(work, ignore=["results/audit/*"]) == before
    with open(BI, "ab") as f:
        f.write(b"!")
    assert tree_state(work, ignore=["results/audit/*"]) != before


# ------------------------------------------------------------------ job selection
def test_select_fastest_random_and_skip_altered(run):
    work, _ = run
    m = build_manifest(work)
    sel = [JobSelector("results/*/calib/*.bin"), JobSelector("results/*/scores/*", n=2), JobSelector("nothing/*")]
    chosen, notes = select_jobs(m, sel)
    assert [(j.rule, p) for j, p in chosen] == [("calibration_set", "results/*/calib/*.bin"),
                                                ("layer_scores", "results/*/scores/*")]
    assert notes == ["results/*/scores/*: 1 eligible job(s) of 2 requested", "nothing/*: 0 eligible job(s) of 1 requested"]
    # any output pattern: the fastest (1 s checkpoint) before the scores (2 s) and the calibration (3 s)
    assert [j.rule for j, _ in select_jobs(m, [JobSelector("results/*", n=3)])[0]] == \
        ["dlp_checkpoint", "layer_scores", "calibration_set"]
    r1 = [j.rule for j, _ in select_jobs(m, [JobSelector("results/*", n=2)], pick="random", seed=3)[0]]
    assert r1 == [j.rule for j, _ in select_jobs(m, [JobSelector("results/*", n=2)], pick="random", seed=3)[0]]
    with open(BI, "ab") as f:
        f.write(b"!")
    chosen, notes = select_jobs(build_manifest(work), [JobSelector("results/*/scores/*")])
    assert chosen == [] and notes[0] == f"results/*/scores/*: skipped layer_scores:{BI}: output {BI} is not as recorded"
    # a job whose input was altered cannot be re-run faithfully
    with open(CALIB, "ab") as f:
        f.write(b"!")
    _, notes = select_jobs(build_manifest(work), [JobSelector(f"{CKPT}")])
    assert notes[0].endswith(f"input {CALIB} is not the recorded version")


# ------------------------------------------------------------------ comparison
def safetensors_with_metadata_order(tensors: dict, metadata: dict, order: list[str]) -> bytes:
    """A safetensors file whose header lists the metadata keys in ``order`` (same content)."""
    blob = save(tensors, metadata=metadata)
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + n])
    header["__metadata__"] = {k: metadata[k] for k in order}
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + blob[8 + n:]


def test_safetensors_metadata_order_is_equivalent_not_identical(tmp_path):
    t = {"w": torch.arange(6, dtype=torch.float32)}
    meta = {"calib": "c", "model": "m", "n_tokens": "12"}
    a, b, c = tmp_path / "a.safetensors", tmp_path / "b.safetensors", tmp_path / "c.safetensors"
    a.write_bytes(safetensors_with_metadata_order(t, meta, ["calib", "model", "n_tokens"]))
    b.write_bytes(safetensors_with_metadata_order(t, meta, ["n_tokens", "model", "calib"]))
    recorded = sha256_path(a)
    assert sha256_path(b) != recorded
    out = compare_output("results/m/x.safetensors", recorded, a, b)
    assert (out.outcome, out.rules, out.equal) == ("equivalent", (SAFETENSORS_RULE,), True)
    one_ulp = t["w"].clone()
    one_ulp[5] = torch.nextafter(one_ulp[5], torch.tensor(10.0))  # the smallest change of one value
    c.write_bytes(safetensors_with_metadata_order({"w": one_ulp}, meta, ["calib", "model", "n_tokens"]))
    assert compare_output("results/m/x.safetensors", recorded, a, c).outcome == "different"
    assert compare_output("results/m/x.safetensors", recorded, a, a).outcome == "identical"
    assert compare_output("results/m/x.safetensors", recorded, a, tmp_path / "none").outcome == "absent"
    # the rule needs the original on record: an altered original is never "equivalent"
    assert compare_output("results/m/x.safetensors", "0" * 64, a, b).outcome == "different"


def test_lm_eval_raw_json_without_start_time_and_host(tmp_path):
    raw = {"results": {"piqa": {"acc,none": 0.5}}, "date": 1795369205.5, "pretty_env_info": "host A", "git_hash": None}
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text(json.dumps(raw))
    b.write_text(json.dumps({**raw, "date": 1795369999.1, "pretty_env_info": "host B"}))
    rec = sha256_path(a)
    out = compare_output("results/m/eval/dense/task-piqa.raw.json", rec, a, b)
    assert out.outcome == "equivalent" and out.rules == ("json without date, pretty_env_info, git_hash, upper_git_hash",)
    assert compare_output("results/m/eval/dense/metrics.json", rec, a, b).outcome == "different"
    b.write_text(json.dumps({**raw, "date": 1.0, "results": {"piqa": {"acc,none": 0.75}}}))
    assert compare_output("results/m/eval/dense/task-piqa.raw.json", rec, a, b).outcome == "different"


def test_directory_comparison_names_the_differing_files(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    for d, w in ((a, b"w1"), (b, b"w2")):
        d.mkdir()
        (d / "model.bin").write_bytes(w)
        (d / "config.json").write_text("{}")
        (d / "provenance.json").write_text(str(d))  # never compared
    out = compare_output("results/m/pruned/x", sha256_path(a), a, b)
    assert (out.outcome, out.differing_files) == ("different", ("model.bin",))
    (b / "model.bin").write_bytes(b"w1")
    assert compare_output("results/m/pruned/x", sha256_path(a), a, b).outcome == "identical"


def test_resumed_training_record_is_equivalent_only_in_its_resume_bookkeeping(tmp_path):
    """A killed-and-resumed job's training.json differs from an uninterrupted re-run only in
    seconds and phases[].resumed_from / steps_run; any other difference (a loss, a weight hash) stays 'different'."""
    def checkpoint(d, resumed_from, steps_run, loss=1.5, sha="ab", seconds=3.15):
        d.mkdir()
        (d / "model.safetensors").write_bytes(b"same weights")
        (d / "training.json").write_text(json.dumps({"method": "CoMe-sp", "seconds": seconds, "phases": [
            {"name": "b0", "steps": 6, "last_loss": loss, "resumed_from": resumed_from, "steps_run": steps_run,
             "params_sha256": sha}]}))
    resumed, rerun = tmp_path / "resumed", tmp_path / "rerun"
    checkpoint(resumed, 3, 3)
    checkpoint(rerun, None, 6, seconds=2.23)  # the observed case: another wall time too
    out = compare_output("results/m/pruned/come_sp/sp30/v", sha256_path(resumed), resumed, rerun)
    assert (out.outcome, out.differing_files, out.rules) == ("equivalent", ("training.json",), (RESUME_RULE,))
    for name, kwargs in (("loss", {"loss": 1.25}), ("sha", {"sha": "cd"})):
        other = tmp_path / name
        checkpoint(other, None, 6, **kwargs)
        assert compare_output("results/m/pruned/come_sp/sp30/v", sha256_path(resumed), resumed, other).outcome == \
            "different"


# ------------------------------------------------------------------ paper deltas
def test_column_kinds():
    assert [column_kind(c) for c in ("ARC-c", "MMLU(5)", "RPT", "Wiki-2", "C4", "~20% Sparsity (%)", "#Removed",
                                     "~10% #Removed", "#Parameters (B)", "Size (B)", "Foo")] == \
        ["accuracy", "accuracy", "accuracy", "ppl", "ppl", "sparsity", "count", "count", "params", "params", "other"]


def test_deltas_against_bands_by_hand():
    df = pd.DataFrame([{
        "Model": "llama2-7b", "Paper model": "LLaMA-2-7B", "Method": "CoMe",
        "ARC-c": 50.0, "ARC-c paper": 47.5, "ARC-c diff": 2.5,  # 2.5 > 2.0 points
        "PIQA": 70.0, "PIQA paper": 71.0, "PIQA diff": -1.0,  # within 2 points
        "C4": 11.0, "C4 paper": 10.0, "C4 diff": 1.0,  # 1.0 <= 0.1 * 10: within (boundary)
        "Wiki-2": 13.0, "Wiki-2 paper": None, "Wiki-2 diff": None,  # no paper value: not compared
        "Note": "x",
    }, {
        "Model": "llama2-7b", "Paper model": "LLaMA-2-7B", "Method": "Mag+",
        "ARC-c": None, "ARC-c paper": 30.0, "ARC-c diff": None,  # not reproduced: not compared
        "PIQA": 60.0, "PIQA paper": 60.0, "PIQA diff": 0.0, "C4": 30.0, "C4 paper": 20.0, "C4 diff": 10.0,
        "Wiki-2": 9.0, "Wiki-2 paper": 10.0, "Wiki-2 diff": -1.0, "Note": "",
    }])
    deltas = table_deltas(df, "results/tables/results_vs_paper.csv", Tolerance())
    got = [(d.row.split("Method=")[1], d.column, d.delta, round(d.allowed, 6), d.within) for d in deltas]
    assert got == [("CoMe", "ARC-c", 2.5, 2.0, False), ("CoMe", "PIQA", -1.0, 2.0, True),
                   ("CoMe", "C4", 1.0, 1.0, True), ("Mag+", "PIQA", 0.0, 2.0, True),
                   ("Mag+", "C4", 10.0, 2.0, False), ("Mag+", "Wiki-2", -1.0, 1.0, True)]
    assert deltas[0].row == "Model=llama2-7b, Paper model=LLaMA-2-7B, Method=CoMe"


def test_table3_layout_diff_only_and_exact_counts(tmp_path):
    df = pd.DataFrame([{"Model": "LLaMA-2-7B", "Target (%)": 30, "#Removed": 10, "#Removed paper": 9,
                        "#Removed diff": 1, "Sparsity (%)": 29.9, "Sparsity (%) paper": 30.2,
                        "Sparsity (%) diff": -0.3, "Agrees": False}])
    (tmp_path / "results" / "tables").mkdir(parents=True)
    df.to_csv(tmp_path / "results" / "tables" / "table03_vs_paper.csv", index=False)
    (tmp_path / "results" / "tables" / "empty_vs_paper.csv").write_text("\n")  # no paper model: no columns
    (tmp_path / "results" / "tables" / "results.csv").write_text("A paper,A\n1,2\n")  # not a *_vs_paper table
    deltas = paper_deltas(tmp_path, Tolerance(count=0, sparsity_points=0.5))
    assert [(d.table, d.column, d.kind, d.within) for d in deltas] == [
        ("results/tables/table03_vs_paper.csv", "#Removed", "count", False),
        ("results/tables/table03_vs_paper.csv", "Sparsity (%)", "sparsity", True)]
    assert deltas[0].row == "Model=LLaMA-2-7B, Target (%)=30"


# ------------------------------------------------------------------ settings, state, report
def test_schema_defaults_are_the_dataclass_defaults():
    cfg = validate_config({"models": {"m": {"source": "random", "arch": "llama"}}}, REPO / "config" / "schema.yaml")
    assert AuditSettings.from_config(cfg["audit"]) == AuditSettings()
    s = AuditSettings.from_config({"reexecute": {"jobs": [{"artifact": "a/*", "n": 2}], "pick": "random"},
                                   "tolerance": {"ppl_relative": 0.2}, "fail_on": ["tampered"]})
    assert s.reexecute.jobs == (JobSelector("a/*", 2),) and s.reexecute.pick == "random"
    assert s.tolerance.ppl_relative == 0.2 and s.tolerance.accuracy_points == 2.0 and s.fail_on == ("tampered",)


SUMMARY = ("output_file\tdate\trule\tlog-file(s)\tstatus\tplan\n"
           "results/a.csv\tSun Nov 22 17:35:18 2026\tt\t\tok\tno update\n"
           "results/b.csv\tSun Nov 22 17:35:18 2026\tt\t\tparams changed\tupdate pending\n")


def test_snakemake_state_findings():
    rows = parse_summary(SUMMARY)
    assert [r["status"] for r in rows] == ["ok", "params changed"]
    state = SnakemakeState({"summary": "s.tsv", "list-changes-params": "p.txt", "list-changes-code": "c.txt"},
                           pending=[r for r in rows if r["plan"] != "no update"],
                           changes={"params": ["results/a.csv"], "code": [], "input": []},
                           returncodes={"summary": 0, "list-changes-params": 0, "list-changes-code": 1})
    found = [(f.kind, f.artifact) for f in state.findings()]
    # list-changes params is not trusted (Snakemake 9.27.1 lists every job): only the summary's row counts
    assert found == [("pending", "results/b.csv"), ("snakemake_error", "c.txt")]


def test_report_and_verdict_name_the_failing_artifact(run):
    work, _ = run
    with open(CALIB, "ab") as f:
        f.write(b"\0")
    result = AuditResult(str(work), AuditSettings(), build_manifest(work))
    assert not result.passed
    assert verdict(result).splitlines()[1].startswith(f"  [tampered] {CALIB}: sha256 on disk")
    md = render_markdown(result)
    assert md.startswith("# Reproducibility audit: FAILED")
    failing_section = md.split("## Failing findings")[1].split("## Warnings")[0]
    assert f"`{CALIB}`" in failing_section and BI not in failing_section
    data = json.loads(json.dumps(to_json(result), default=str))
    assert data["passed"] is False and [f["artifact"] for f in data["failing"]] == [CALIB]
    arts = {a["path"]: a for a in data["artifacts"]}
    assert arts[BI]["lineage"]["ancestors"] == [CALIB] and arts[BI]["chain_ok"] is False
    # a warning does not fail the audit unless its kind is in fail_on
    warn = AuditResult(str(work), AuditSettings(fail_on=("missing",)), build_manifest(work))
    assert warn.passed and verdict(warn).startswith("audit PASSED")
    assert [(f.kind, f.artifact) for f in warn.findings] == [("tampered", CALIB)]


# ------------------------------------------------------------------ the real workflow (slow)
def completed_tiny_run(base: Path) -> tuple[Path, Path]:
    """(workdir, config): all_tables of the random LLaMA with Reverse and a cut-down evaluation,
    run once per test session (shared with tests/test_report.py)."""
    from workflow_utils import snakemake, tiny_config

    work = base / "audit-tiny-run"
    cfg = base / "audit-tiny-run.yaml"
    if (base / "audit-tiny-run.done").exists():
        return work, cfg
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    c = yaml.safe_load(tiny_config(work, enable=("reverse",)).read_text())
    c["evaluation"]["tasks"] = {"piqa": {"limit": 2}}
    c["evaluation"]["perplexity"]["datasets"] = ["wikitext2"]
    cfg.write_text(yaml.safe_dump(c, sort_keys=False))
    (work / "config.yaml").unlink()
    snakemake(work, cfg, "--cores", "2", "all_tables")
    (base / "audit-tiny-run.done").write_text("")
    return work, cfg


@pytest.mark.slow
def test_audit_of_a_real_run_passes_then_names_the_tampered_file(tmp_path_factory, tmp_path, mirror):
    from workflow_utils import snakemake

    src, cfg = completed_tiny_run(tmp_path_factory.getbasetemp())
    work = tmp_path / "run"
    shutil.copytree(src, work, symlinks=True)  # copy2: mtimes kept, Snakemake sees the same state
    snakemake(work, cfg, "--cores", "2", "audit")
    audit = json.loads((work / "results/audit/audit.json").read_text())
    assert audit["passed"] and audit["failing"] == [] and (work / "results/audit/verdict.json").is_file()
    arts = {a["path"]: a for a in audit["artifacts"]}
    assert len(arts) > 20 and {a["status"] for a in arts.values()} == {"ok"}
    bi = next(p for p in arts if p.endswith("bi.parquet"))
    roots = [r["path"] for r in arts[bi]["lineage"]["roots"]]
    assert any(r.endswith("wiki.train.raw.first1MB_nonempty_lines.txt") for r in roots)
    # the default sample: a calibration set, a layer-scores job, one pruned checkpoint; all reproduce on CPU
    rex = audit["reexecutions"]
    assert sorted(r["rule"] for r in rex) == ["calibration_set", "dlp_checkpoint", "layer_scores"]
    assert all(r["reproduced"] and r["returncode"] == 0 for r in rex)
    outcomes = {o["path"]: (o["outcome"], o["rules"]) for r in rex for o in r["outputs"]}
    assert len(outcomes) == 6  # calib, 4 score files, the checkpoint directory
    for path, (outcome, rules) in outcomes.items():  # only safetensors metadata order and pruning times may differ
        assert outcome == "identical" or (path.endswith(".safetensors") and rules == [SAFETENSORS_RULE]) or \
            ("/pruned/" in path and rules == [TIMING_RULE]), path
    # the checkpoint: same bytes but the wall time of its pruning (pruning.json: pruning_seconds, timing)
    assert [o for p, o in outcomes.items() if "/pruned/" in p] == [("equivalent", [TIMING_RULE])]
    assert (work / "results/audit/snakemake-summary.tsv").read_text().startswith("output_file\t")

    calib = next((work / "results/random-llama/calib").glob("*.safetensors"))
    rel = calib.relative_to(work).as_posix()
    with open(calib, "ab") as f:
        f.write(b"\0")
    c = yaml.safe_load(cfg.read_text())
    c["audit"] = {"reexecute": {"enabled": False}}
    cfg2 = tmp_path / "no_reexecution.yaml"
    cfg2.write_text(yaml.safe_dump(c, sort_keys=False))
    res = snakemake(work, cfg2, "--cores", "2", "audit", check=False)  # re-runs: results/ changed
    assert res.returncode != 0
    assert f"[tampered] {rel}: sha256 on disk" in res.stdout + res.stderr
    audit = json.loads((work / "results/audit/audit.json").read_text())
    assert [(f["kind"], f["artifact"]) for f in audit["failing"]] == [("tampered", rel)]
    report = (work / "results/audit/report.md").read_text()
    assert report.startswith("# Reproducibility audit: FAILED")
    assert rel in report.split("## Failing findings")[1].split("## Warnings")[0]
    assert not (work / "results/audit/verdict.json").exists()
