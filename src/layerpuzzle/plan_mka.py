"""Which checkpoints and evaluations MKA's tables and figures need (config ``tables.mka``; rules/mka_tables.smk).

Part of the plan (:mod:`layerpuzzle.plan`): plain paths and ids, tested without Snakemake. Every point is a
dict the table builders of :mod:`layerpuzzle.tables.mka` read: ``model``, ``method`` (display name), ``key``
(method key, ``dense`` or ``sparsegpt``), ``layers_removed``, ``scheme``, ``ckpt`` (checkpoint id) and
``metrics`` (its ``metrics.json``).

Checkpoint ids: a layer method's checkpoint is ``<key>/n<k>/<path component of its first configured variant>``;
a quantized or sparsified one is ``{source}/oneshot/{scheme}`` (:func:`oneshot_id`, docs/quantization.md) with
``{source}`` = ``dense`` or a layer method's id.
"""

from __future__ import annotations

from typing import Any

from .methods import registry

MKA_FIGURES = "results/figures/mka"
PAPER_CRS = (34.375, 37.5, 40.625, 43.75)  # MKA Table 2's compression ratios (%), one per level


def oneshot_id(source: str, scheme: str) -> str:
    """The id of checkpoint ``source`` (``dense`` or ``<method>/<target>/<variant>``) after ``scheme``."""
    return f"{source}/oneshot/{scheme}"


class MkaTables:
    """The MKA tables' points, inputs and outputs of one :class:`~layerpuzzle.plan.Plan`."""

    def __init__(self, plan):
        self.plan = plan
        self.cfg: dict[str, Any] = (plan.config.get("tables") or {}).get("mka") or {}

    # ------------------------------------------------------------------ basics
    @property
    def models(self) -> list[str]:
        return list(self.cfg.get("models") or self.plan.run_models)

    def slug(self, key: str, model: str) -> str:
        """Path component of method ``key``'s first configured variant (enabled or not)."""
        variants = self.plan.configured_variants(key)
        return self.plan.variant_path(key, variants[0] if variants else {}, model)

    def layer_id(self, key: str, k: int, model: str) -> str:
        return "dense" if k == 0 else f"{key}/n{k}/{self.slug(key, model)}"

    def _point(self, model: str, key: str, k: int, scheme: str | None = None, **extra) -> dict[str, Any]:
        source = "dense" if key in ("dense", "sparsegpt") else self.layer_id(key, k, model)
        ckpt = oneshot_id(source, scheme) if scheme else source
        method = {"dense": "Vanilla", "sparsegpt": "SparseGPT"}.get(key) or registry.display_name(key)
        return {"model": model, "method": method, "key": key, "layers_removed": k, "scheme": scheme, "ckpt": ckpt,
                "metrics": self.plan.metrics_path(model, ckpt), **extra}

    @staticmethod
    def _k(label: str) -> int:
        return int(label[1:])

    def _need(self, part: str, key: str) -> None:
        if not (self.cfg.get(part) or {}).get(key) and not (part == "table1" and self.cfg["table1"].get(
                "per_model_targets")):
            raise ValueError(f"config key `tables.mka.{part}.{key}` is empty: this MKA table has no grid; set it, "
                             f"e.g. with --configfile config/mka.yaml (the embedded model's grids) or "
                             f"config/paper.yaml (the paper's)")

    def paper_model(self, model: str) -> str:
        """The paper's model beside ``model`` (tables.mka.paper_models, else paper_model)."""
        return (self.cfg.get("paper_models") or {}).get(model) or self.cfg.get("paper_model", "Llama3-8B")

    def table1_targets(self, model: str) -> list[str]:
        t1 = self.cfg.get("table1") or {}
        return list((t1.get("per_model_targets") or {}).get(model) or t1.get("targets") or [])

    # ------------------------------------------------------------------ Table 1
    def table1_points(self) -> list[dict[str, Any]]:
        """Vanilla, then per layer method and target: the method alone and under each scheme."""
        self._need("table1", "targets")
        t1 = self.cfg["table1"]
        out = []
        for m in self.models:
            out.append(self._point(m, "dense", 0, paper_model=self.paper_model(m)))
            for key in t1["methods"]:
                for label in self.table1_targets(m):
                    k = self._k(label)
                    out.append(self._point(m, key, k, paper_model=self.paper_model(m)))
                    out += [self._point(m, key, k, s, paper_model=self.paper_model(m)) for s in t1["schemes"]]
        return out

    # ------------------------------------------------------------------ Table 2
    def table2_points(self) -> list[dict[str, Any]]:
        """Per level i: Vanilla, SparseGPT at sparsegpt[i] (on the dense model), each layer method at
        targets[i]; ``level`` and ``paper_cr`` (the paper's i-th CR) added."""
        from .methods.quantize.schemes import Scheme

        self._need("table2", "targets")
        t2 = self.cfg["table2"]
        out = []
        for m in self.models:
            for i, (label, x) in enumerate(zip(t2["targets"], t2["sparsegpt"])):
                extra = {"level": i, "paper_cr": PAPER_CRS[i]}
                out.append(self._point(m, "dense", 0, **extra))
                out.append(self._point(m, "sparsegpt", 0, Scheme("sparsegpt", sparsity=float(x)).slug, **extra))
                out += [self._point(m, key, self._k(label), **extra) for key in t2["methods"]]
        return out

    # ------------------------------------------------------------------ Tables 3-4, Figs. 2 and 6
    def sweep_points(self) -> list[dict[str, Any]]:
        """Vanilla (k = 0), then every method at every k of the sweep."""
        self._need("sweep", "layers")
        sw = self.cfg["sweep"]
        out = []
        for m in self.models:
            pm = self.paper_model(m)
            out.append(self._point(m, "dense", 0, paper_model=pm))
            out += [self._point(m, key, int(k), paper_model=pm) for key in sw["methods"] for k in sorted(sw["layers"])]
        return out

    def subject_points(self) -> list[dict[str, Any]]:
        """Fig. 6's points: the sweep's, of the methods in tables.mka.sweep.subject_methods (null: all)."""
        keep = self.cfg["sweep"].get("subject_methods")
        return [p for p in self.sweep_points() if keep is None or p["key"] == "dense" or p["key"] in keep]

    @staticmethod
    def raw_mmlu(point: dict[str, Any]) -> str:
        return point["metrics"].rsplit("/", 1)[0] + "/task-mmlu.raw.json"

    @property
    def _mmlu_settings(self) -> dict[str, Any]:
        return self.plan.config["evaluation"]["tasks"].get("mmlu") or {}

    @property
    def mmlu_samples_logged(self) -> bool:
        """Whether the evaluations keep MMLU's per-document log (evaluation.tasks.mmlu.log_samples), which Fig. 6
        reads its subjects from."""
        return bool(self._mmlu_settings.get("log_samples"))

    @property
    def fig6_subjects_missing(self) -> list[str]:
        """Fig. 6's subjects (tables.mka.sweep.subjects) that evaluation.tasks.mmlu.subjects leaves out."""
        evaluated = self._mmlu_settings.get("subjects")
        wanted = (self.cfg.get("sweep") or {}).get("subjects") or []
        return [] if evaluated is None else [s for s in wanted if s not in evaluated]

    @property
    def fig6_buildable(self) -> bool:
        return self.mmlu_samples_logged and not self.fig6_subjects_missing

    def fig6_raw_inputs(self) -> list[str]:
        """``task-mmlu.raw.json`` of every point of :meth:`subject_points`. Without MMLU's per-document log, or
        with Fig. 6's subjects not evaluated, the figure cannot be drawn: raised here, when the DAG is built,
        not after the sweep's evaluations have run."""
        if not self.mmlu_samples_logged:
            raise ValueError("MKA Fig. 6 (target mka_fig6) reads MMLU's per-document log, but "
                             "`evaluation.tasks.mmlu.log_samples` is not true; set it (allowed: true/false), e.g. with "
                             "--configfile config/mka.yaml config/mka_fig6.yaml (docs/tables.md, \"MKA\")")
        if self.fig6_subjects_missing:
            raise ValueError(f"MKA Fig. 6 (target mka_fig6) draws subjects {self.fig6_subjects_missing} "
                             f"(tables.mka.sweep.subjects) that `evaluation.tasks.mmlu.subjects` "
                             f"{self._mmlu_settings.get('subjects')} leaves out; allowed: Fig. 6's subjects among "
                             "the evaluated ones (or evaluation.tasks.mmlu.subjects unset: all 57)")
        return [self.raw_mmlu(p) for p in self.subject_points()]

    # ------------------------------------------------------------------ Figs. 3 and 5
    def similarity_ckpts(self, model: str) -> list[str]:
        """The dense model and the MKA checkpoint at tables.mka.similarity.target."""
        target = (self.cfg.get("similarity") or {}).get("target")
        if not target:
            raise ValueError("config key `tables.mka.similarity.target` is empty (null): MKA Figs. 3 and 5 need the "
                             "merged checkpoint's layer count; set it (e.g. n13)")
        return ["dense", self.layer_id("mka", self._k(target), model)]

    def similarity_calib_path(self, model: str) -> str:
        name = self.cfg["similarity"]["calibration"]
        return self.plan.calib_path(model, self.plan.config["calibration"][name])

    @staticmethod
    def similarity_path(model: str, ckpt: str) -> str:
        return f"results/{model}/similarity/{ckpt}/layer_similarity.parquet"

    @staticmethod
    def npib_ckpt_path(model: str, ckpt: str, kernel: str) -> str:
        """MKA's NPIB matrix of a checkpoint (the dense one: rule mka_similarity's path)."""
        if ckpt == "dense":
            return f"results/{model}/mka/npib-{kernel}.parquet"
        return f"results/{model}/mka/ckpt/{ckpt}/npib-{kernel}.parquet"

    def npib_kernel(self) -> str:
        """The kernel of MKA's first configured variant."""
        variants = self.plan.configured_variants("mka")
        return (variants[0] if variants else {}).get("kernel", "described")

    # ------------------------------------------------------------------ outputs
    @staticmethod
    def figure(name: str) -> str:
        return f"{MKA_FIGURES}/{name}.png"

    def outputs(self) -> dict[str, list[str]]:
        """Files of each named target (the same whatever the grids; an empty grid fails when the target is
        asked for, naming the key to set)."""
        tf = self.plan.table_files
        return {
            "mka_table1": tf("mka_table1"),
            "mka_table2": tf("mka_table2"),
            "mka_table3_4": tf("mka_table3_4") + tf("mka_curves"),
            "mka_fig2": [self.figure("fig2_mmlu_curves")],
            "mka_fig6": tf("mka_fig6_subjects") + [self.figure("fig6_mmlu_subjects")],
            "mka_fig3": [self.figure("fig3_merge_similarity")],
            "mka_fig5": [self.figure("fig5_similarity_measures")],
        }

    def buildable_outputs(self) -> list[str]:
        """What all_mka builds: every target's files, Fig. 6's only when MMLU's per-document log is kept for its
        subjects (its own target fails early otherwise, naming the key)."""
        return [p for name, files in self.outputs().items() if name != "mka_fig6" or self.fig6_buildable
                for p in files]

    def all_tables_outputs(self) -> list[str]:
        """What all_tables builds with tables.mka.in_all_tables: the tables and figures whose grid is set (Fig. 6
        needs sample logs, so it is left out)."""
        if not self.cfg.get("in_all_tables"):
            return []
        grid = {"mka_table1": bool(self.cfg["table1"].get("targets") or self.cfg["table1"].get("per_model_targets")),
                "mka_table2": bool(self.cfg["table2"].get("targets")),
                "mka_table3_4": bool(self.cfg["sweep"].get("layers")), "mka_fig2": bool(self.cfg["sweep"].get("layers")),
                "mka_fig3": bool(self.cfg["similarity"].get("target")),
                "mka_fig5": bool(self.cfg["similarity"].get("target"))}
        return [p for name, files in self.outputs().items() if grid.get(name) for p in files]
