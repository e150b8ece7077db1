"""The application on a real event store (SQLite file, PostgreSQL) and the projector on Redis."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from service.app import build_application
from service.application import SegmentationApplication
from service.projections.keys import Keys
from service.projections.segmentation import SegmentationProjector
from service.settings import Settings

SMALL_CSV = """customer,name,day,amount,order,region
A,Ann,2024-01-10,100.00,o1,North
A,Ann,2024-03-05,50.00,o2,North
B,Bob,2024-02-01,20.00,o3,South
B,Bob,2024-02-01,-20.00,o3,South
C,Cid,2024-03-30,75.50,o4,South
D,Dee,2023-01-01,10.00,o5,East
"""

SMALL_CONFIG = {
    "customer_column": "customer",
    "name_column": "name",
    "date_column": "day",
    "sales_column": "amount",
    "purchase_column": "order",
}


@pytest.fixture
def app(settings: Settings) -> Iterator[SegmentationApplication]:
    application = build_application(settings)
    yield application
    application.close()


@pytest.fixture
def projector(
    app: SegmentationApplication, settings: Settings, redis_client: redis.Redis
) -> SegmentationProjector:
    return SegmentationProjector(app, redis_client, Keys(settings.redis_prefix))


def write_csv(tmp_path: Path, text: str = SMALL_CSV) -> Path:
    path = tmp_path / f"{uuid.uuid4().hex}.csv"
    path.write_text(text)
    return path


def new_database() -> str:
    return f"db-{uuid.uuid4().hex[:8]}"
