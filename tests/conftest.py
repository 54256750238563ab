from __future__ import annotations

from pathlib import Path

import pytest

from profiler.taxonomy import Taxonomy

REPO = Path(__file__).resolve().parents[1]
SPEC = REPO.parent / "shared" / "spec" / "taxonomy_v1.tsv"


@pytest.fixture(scope="session")
def taxonomy() -> Taxonomy:
    return Taxonomy.bundled("v1")


@pytest.fixture()
def compose_cfg():
    """Compose an entry config the way the CLI would, with test overrides (lightning-hydra style)."""
    from hydra import compose, initialize_config_module

    def _compose(name: str, overrides: list[str]):
        with initialize_config_module(config_module="profiler.configs", version_base="1.3"):
            return compose(config_name=name, overrides=overrides)

    return _compose
