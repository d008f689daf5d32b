"""The LaCo paper's Tables 1/2/22, 3, 4 and 5/20 with the paper's numbers beside ours (rule laco_tables)."""
import json
from pathlib import Path

from layerpuzzle.jobs import run_job
from layerpuzzle.tables import write_table
from layerpuzzle.tables import laco as L

CAPTIONS = {
    "laco_table01": "LaCo Table 1: benchmarks (%) of Dense, LLM-Pruner, SliceGPT and LaCo; Avg over the available "
                    "benchmarks (k of LaCo's 14; the Chinese and generation sets are not evaluated)",
    "laco_table02": "LaCo Table 2: Avg, Per. (% of Dense) and category averages over the available benchmarks",
    "laco_table22": "LaCo Table 22: scores in % of Dense",
    "laco_table03_ppl": "LaCo Table 3: perplexity (our protocol, docs/evaluation.md; the paper: 500 Wikipedia "
                        "sentences x 512 tokens)",
    "laco_table04_time": "LaCo Table 4: pruning time, the computation only (pruning_seconds)",
    "laco_table05_20_efficiency": "LaCo Tables 5/20: peak memory and generation speed, ratios to Dense on the same "
                                  "device (CPU: parameters + peak RSS rise, fp32)",
}


def main(job):
    p = job.params
    entries = []
    for e in p.entries:
        ckpt_dir = Path(e["ckpt_dir"])
        pruning = ckpt_dir / "pruning.json"
        entries.append({"model": e["model"], "pruner": e["pruner"], "checkpoint": e["ckpt"],
                        "metrics": json.loads(Path(e["metrics"]).read_text()),
                        "efficiency": json.loads(Path(e["efficiency"]).read_text()),
                        "pruning": json.loads(pruning.read_text()) if e["ckpt"] != "dense" else None})
    order = list(p.model_order)
    matches = {m: L.paper_match(name, p.paper_model) for m, name in p.paper_names.items()}
    out = {Path(f).name.rsplit(".", 1)[0]: f.rsplit(".", 1)[0] for f in job.output.tables if f.endswith(".csv")}
    t1 = L.table1(entries, order)
    bench = [h for h, _ in L.BENCHMARKS.values()]
    t2 = L.table2(entries, order)
    t22 = L.table22(entries, order)
    t3 = L.table3(entries, order)
    t4 = L.table4(entries, order)
    t20 = L.table20(entries, order)
    built = {
        "laco_table01": (t1, L.beside_paper(t1, L.paper_rows("table01"), matches, ["Ratio (%)", "Layers", *bench, "Avg"])),
        "laco_table02": (t2, L.beside_paper(t2, L.paper_table2_rows(), matches,
                                            ["Avg", "Per. (%)", *L.CATEGORIES], extra_paper=["Avg (14)", "Per. (14) (%)"])),
        "laco_table22": (t22, L.beside_paper(t22, L.paper_rows("table22"), matches, bench)),
        "laco_table03_ppl": (t3, L.beside_paper(t3, L.paper_rows("table03"), matches, ["Wiki-2", "Wiki-2 / Dense"])),
        "laco_table04_time": (t4, L.beside_paper(t4, L.paper_rows("table04"), matches,
                                                 ["Pruning time (s)", "Time / LaCo"])),
        "laco_table05_20_efficiency": (t20, L.beside_paper(t20, L.paper_rows("table20"), matches,
                                                           ["Memory (MiB)", "Tokens/s", "Memory / Dense",
                                                            "Speed / Dense"])),
    }
    for stem, (ours, vs) in built.items():
        write_table(ours, out[stem], caption=CAPTIONS[stem])
        write_table(vs, out[f"{stem}_vs_paper"], caption=CAPTIONS[stem] + "; the paper's numbers beside ours")
    return {stem: len(ours) for stem, (ours, _) in built.items()}


run_job(snakemake, main)  # noqa: F821
