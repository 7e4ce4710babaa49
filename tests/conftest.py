import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = PROJECT_ROOT.parent / "shared" / "data"


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.exists():
        pytest.skip(f"real sample data not present at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session")
def landed_shop(tmp_path_factory):
    """Land a generated shop under a fresh data root: ``landed_shop(name, n_events=…, days=…, seed=…,
    end_date=…)`` → the root (``landing/`` and ``truth/`` inside), for module-scoped fixtures."""
    from governance.shop import ShopConfig, generate_shop, land_shop

    def make(name: str, **config) -> Path:
        root = tmp_path_factory.mktemp(name)
        land_shop(generate_shop(ShopConfig(**config)), root / "landing", root / "truth")
        return root

    return make
