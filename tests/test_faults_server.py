"""Fault suite, server: a bounded burst on loopback with malformed requests mixed in."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import psutil
import pytest

from test_server import _run_server

REQUESTS, MALFORMED = 200, 20
MALFORMED_KINDS = [
    dict(content=b"{not json", headers={"content-type": "application/json"}),
    dict(content=(b"x" * 4096 for _ in range(64)), headers={"content-type": "application/json"}),  # chunked, too big
    dict(json={"input": "Hi.", "voice": "alloy"}),
    dict(json={"voice": "default"}),
    dict(json={"input": "Hi.", "response_format": "aac"}),
]


@pytest.fixture(scope="module")
def burst_url(tiny_export, tmp_path_factory):
    from xtts_finetune.server import create_app
    from xtts_finetune.synthesis import Synthesizer

    synth = Synthesizer(tiny_export, device="cpu", latents_cache_dir=tmp_path_factory.mktemp("latents"))
    server, thread, base = _run_server(create_app(synthesizer=synth, max_queue=2, max_chars=300))
    yield base
    server.should_exit = True
    thread.join(10)


def _peak_rss(stop: threading.Event, peak: list[int]) -> None:
    process = psutil.Process()
    while not stop.is_set():
        peak[0] = max(peak[0], process.memory_info().rss)
        time.sleep(0.02)


def test_burst_of_200_with_malformed_ones_mixed_in(burst_url):
    url = f"{burst_url}/v1/audio/speech"
    bad = set(range(0, REQUESTS, REQUESTS // MALFORMED))
    assert len(bad) == MALFORMED
    with httpx.Client(timeout=60, limits=httpx.Limits(max_connections=32)) as client:
        client.post(url, json={"input": "Hi.", "response_format": "pcm"}).raise_for_status()  # warm: latents cached
        baseline = psutil.Process().memory_info().rss

        def call(i: int) -> httpx.Response:
            if i in bad:
                return client.post(url, **MALFORMED_KINDS[i % len(MALFORMED_KINDS)])
            return client.post(url, json={"input": "Hi.", "response_format": "mp3" if i % 7 == 0 else "pcm"})

        stop, peak = threading.Event(), [baseline]
        watcher = threading.Thread(target=_peak_rss, args=(stop, peak), daemon=True)
        watcher.start()
        with ThreadPoolExecutor(32) as pool:
            responses = list(pool.map(call, range(REQUESTS)))
        stop.set()
        watcher.join()
        statuses = [r.status_code for r in responses]
        assert 500 not in statuses and len(responses) == REQUESTS
        for i, r in enumerate(responses):
            if i in bad:
                assert r.status_code in (400, 413) and r.json()["error"]["message"], (i, r.status_code, r.text)
            elif r.status_code == 503:
                assert int(r.headers["retry-after"]) >= 1 and r.json()["error"]["type"] == "server_busy"
            else:
                assert r.status_code == 200 and len(r.content) > 0, (i, r.status_code, r.text)
        assert statuses.count(200) >= 2  # the queue did work through the burst
        assert peak[0] - baseline < 400 * 2**20  # bounded: the queue holds at most 2 requests' audio
        deadline = time.monotonic() + 60
        while (health := client.get(f"{burst_url}/health")).json()["pending"]:
            assert time.monotonic() < deadline, "requests were still pending long after the burst"
            time.sleep(0.05)
        assert health.status_code == 200 and health.json()["status"] == "ok"
        assert client.post(url, json={"input": "Hi.", "response_format": "pcm"}).status_code == 200
