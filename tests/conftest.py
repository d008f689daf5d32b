import os
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
MIRROR = Path(os.environ.get("LAYERPUZZLE_DATA_MIRROR", REPO.parent / "shared" / "data"))

# tiny test models: one thread is faster than two (thread start-up dominates)
torch.set_num_threads(1)


@pytest.fixture(scope="session")
def mirror() -> Path:
    if not MIRROR.is_dir():
        pytest.skip(f"data mirror {MIRROR} not found (set LAYERPUZZLE_DATA_MIRROR)")
    return MIRROR


@pytest.fixture(autouse=True)
def one_thread():
    """Every test starts on one thread, whatever the previous test (or a job it ran in-process) set."""
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(1)


def load_validated_config(path: Path | None = None, **updates) -> dict:
    """A config file (default: the embedded default) validated against the schema, as the workflow sees it;
    ``updates`` replace top-level keys before validation."""
    import yaml

    from layerpuzzle.config import canonical, validate_config

    cfg = yaml.safe_load((path or REPO / "config" / "config.yaml").read_text())
    cfg.update(updates)
    return canonical(validate_config(cfg, REPO / "config" / "schema.yaml"))


def default_plan(**updates):
    """layerpuzzle.plan.Plan of the embedded default config (top-level keys replaced by ``updates``)."""
    from layerpuzzle.config import load_schema
    from layerpuzzle.plan import Plan

    return Plan(load_validated_config(**updates), load_schema(REPO / "config" / "schema.yaml"))
