"""The server freezes the objects it made while starting, so full garbage collections skip them
(collector.py); apps made without asking (tests) leave the collector as it is."""

from __future__ import annotations

import gc
import logging
import weakref
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from supportlens.app import create_app
from supportlens.collector import freeze_long_lived_objects
from tests.conftest import make_settings


class _Node:
    def __init__(self) -> None:
        self.me = self  # a reference cycle: only the cyclic collector reclaims it


def test_garbage_is_collected_first_and_what_is_left_is_skipped_by_collections() -> None:
    gc.unfreeze()
    try:
        garbage = weakref.ref(_Node())  # unreachable already, through its cycle only
        kept = _Node()
        frozen = freeze_long_lived_objects()
        assert garbage() is None  # collected, not frozen
        assert frozen == gc.get_freeze_count() > 0
        assert not any(tracked is kept for tracked in gc.get_objects())  # in no generation
        gc.unfreeze()
        assert any(tracked is kept for tracked in gc.get_objects())
    finally:
        gc.unfreeze()


def test_the_server_freezes_after_its_warm_up_and_a_test_app_does_not(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    gc.unfreeze()
    try:
        with TestClient(create_app(make_settings("duckdb", tmp_path / "test"))) as client:
            client.app.state.warming_pipes.result()  # type: ignore[attr-defined]
        assert gc.get_freeze_count() == 0
        app = create_app(make_settings("duckdb", tmp_path / "served"), freeze_after_warm_up=True)
        with caplog.at_level(logging.INFO, logger="supportlens.app"), TestClient(app) as client:
            assert client.get("/ready").status_code in (200, 503)
            app.state.warming_pipes.result()  # the freeze is its last step
            assert gc.get_freeze_count() > 0
            assert client.get("/ready").json() == {"ready": True}
        assert gc.get_freeze_count() > 0
        assert "long-lived objects frozen for the garbage collector" in caplog.text
    finally:
        gc.unfreeze()
