"""The web app's browser libraries are served by Visio itself, never fetched from a CDN."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from visio.config import load_settings
from visio.server import create_app


@pytest.mark.parametrize(
    "path",
    [
        "/vendor/@jitsi/rnnoise-wasm/dist/rnnoise.wasm",
        "/vendor/@mediapipe/selfie_segmentation/selfie_segmentation.tflite",
    ],
)
def test_vendor_files_are_served(tmp_path, path):
    client = TestClient(create_app(load_settings(data_dir=tmp_path)))  # no lifespan
    response = client.get(path)
    assert response.status_code == 200
    assert len(response.content) > 10_000


def test_a_missing_vendor_file_is_a_404(tmp_path):
    client = TestClient(create_app(load_settings(data_dir=tmp_path)))
    assert client.get("/vendor/nothing-here.js").status_code == 404
