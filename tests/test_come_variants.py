"""CoMe variants: ablation grid points, their path slugs and the calibration sets they resolve to."""
import yaml

from layerpuzzle.config import validate_config, variant_slug
from layerpuzzle.data.calibration import CalibrationSpec
from layerpuzzle.methods.come.variants import ablation_variant, resolve_calibration

from conftest import REPO, default_plan


def parse_slug(key, slug):
    return default_plan().parse_slug(key, slug, "smollm2-135m")


def come_cfg(**ablations):
    cfg = validate_config(yaml.safe_load((REPO / "config" / "config.yaml").read_text()), REPO / "config" / "schema.yaml")
    cfg["methods"]["come"]["ablations"].update(ablations)
    return cfg["methods"]["come"]


def test_table14_point_with_its_own_row_count():
    cfg = come_cfg(calib_dataset_rows={"pg19": 2})
    base = cfg["calibration"]  # wikitext2, n 64 in the embedded default
    assert ablation_variant("come", cfg, "smollm2-135m", "calib_dataset", base["dataset"]) == {}  # = default run
    assert ablation_variant("come", cfg, "smollm2-135m", "calib_dataset", "c4") == {"calib_dataset": "c4"}
    pg19 = ablation_variant("come", cfg, "smollm2-135m", "calib_dataset", "pg19")
    assert pg19 == {"calib_dataset": "pg19", "calib_rows": 2}
    slug = variant_slug(pg19)
    assert slug == "calib_dataset=pg19,calib_rows=2" and parse_slug("come", slug) == pg19
    assert resolve_calibration(cfg, parse_slug("come", slug)) == {**base, "dataset": "pg19", "n": 2}


def test_table12_point_equal_to_the_default_has_the_default_path():
    cfg = come_cfg()
    n = cfg["calibration"]["n"]
    assert ablation_variant("come", cfg, "smollm2-135m", "calib_rows", n) == {}
    assert ablation_variant("come", cfg, "smollm2-135m", "calib_rows", 2 * n) == {"calib_rows": 2 * n}


def test_table14_point_with_the_released_per_example_packing():
    cfg = come_cfg(calib_dataset_packing={"alpaca": "per_example", "c4": "joined"})
    alpaca = ablation_variant("come", cfg, "smollm2-135m", "calib_dataset", "alpaca")
    assert alpaca == {"calib_dataset": "alpaca", "calib_packing": "per_example"}
    assert ablation_variant("come", cfg, "smollm2-135m", "calib_dataset", "c4") == {"calib_dataset": "c4"}
    slug = variant_slug(alpaca)
    assert parse_slug("come", slug) == alpaca
    spec = resolve_calibration(cfg, alpaca)
    assert spec["packing"] == "per_example" and spec["dataset"] == "alpaca"
    assert CalibrationSpec(**spec).id.endswith("-pex")
