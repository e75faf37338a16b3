"""The REST server over real HTTP on loopback, with the tiny model behind it."""

from __future__ import annotations

import io
import json
import socket
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import pytest
import soundfile as sf

from xtts_finetune.errors import UserError

ONE = "Hello there, my friend."
THREE = ONE + " The weather is lovely today. Please read this sentence aloud."


@pytest.fixture(scope="module")
def synth(tiny_export, tmp_path_factory):
    from xtts_finetune.synthesis import Synthesizer

    return Synthesizer(tiny_export, device="cpu", latents_cache_dir=tmp_path_factory.mktemp("latents"))


def _run_server(app):
    import uvicorn

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "server did not start"
        time.sleep(0.05)
    return server, thread, f"http://127.0.0.1:{port}"


@pytest.fixture(scope="module")
def url(synth):
    from xtts_finetune.server import create_app

    server, thread, base = _run_server(create_app(synthesizer=synth, max_queue=4, max_chars=300))
    yield base
    server.should_exit = True
    thread.join(10)


def _speech(url, **body):
    return httpx.post(f"{url}/v1/audio/speech", json={"model": "tts-1", **body}, timeout=120)


def test_wav_is_streamed_and_grows_with_the_text(url):
    with httpx.stream("POST", f"{url}/v1/audio/speech", timeout=120,
                      json={"input": THREE, "response_format": "wav", "seed": 2}) as response:
        assert response.status_code == 200 and response.headers["content-type"] == "audio/wav"
        assert "content-length" not in response.headers  # chunked, not buffered
        body = response.read()
    long, sr = sf.read(io.BytesIO(body), dtype="float32")
    assert sr == 24000
    short, _ = sf.read(io.BytesIO(_speech(url, input=ONE, response_format="wav", seed=2).content), dtype="float32")
    assert 0 < len(short) < len(long)
    assert np.allclose(long[: len(short)], short, atol=1e-4)  # same seed, same first sentence


def test_pcm_matches_wav(url):
    pcm = _speech(url, input=ONE, response_format="pcm", seed=4)
    wav = _speech(url, input=ONE, response_format="wav", seed=4)
    assert pcm.status_code == wav.status_code == 200
    assert pcm.content == wav.content[44:]  # same samples, without the header


@pytest.mark.parametrize("fmt, codec", [("mp3", "mp3"), ("flac", "flac"), ("opus", "opus")])
def test_compressed_formats(url, tmp_path, fmt, codec):
    # Seeded: a random GPT may stop at once, which is short audio, not the format under test.
    response = _speech(url, input=ONE, response_format=fmt, voice="Tiny Speaker", speed=1.2, seed=4)
    assert response.status_code == 200, response.text
    path = tmp_path / f"out.{fmt}"
    path.write_bytes(response.content)
    probe = json.loads(subprocess.run(
        ["ffprobe", "-v", "error", "-show_streams", "-show_format", "-of", "json", str(path)],
        capture_output=True, check=True, text=True).stdout)
    stream = probe["streams"][0]
    assert stream["codec_name"] == codec and float(probe["format"]["duration"]) > 0.05
    if fmt != "opus":  # Opus always decodes at 48 kHz
        assert int(stream["sample_rate"]) == 24000


def test_voices_health_and_openapi(url):
    voices = httpx.get(f"{url}/v1/voices").json()
    assert voices["voices"] == ["default", "ref_a", "ref_b", "Tiny Speaker"] and "en" in voices["languages"]
    assert httpx.get(f"{url}/health").json()["status"] == "ok"
    schema = httpx.get(f"{url}/openapi.json").json()
    assert "/v1/audio/speech" in schema["paths"] and "SpeechBody" in schema["components"]["schemas"]


@pytest.mark.parametrize("body, status, words", [
    ({"input": ""}, 400, "empty"),
    ({"input": "x" * 301}, 413, "at most 300"),
    ({"input": "hello", "voice": "nobody"}, 400, "unknown voice"),
    ({"input": "hello", "language": "xx"}, 400, "does not speak"),
    ({"input": "Привет", "language": "ru"}, 400, "cannot encode"),
    ({"input": "hello", "response_format": "aac"}, 400, "not supported"),
    ({"input": "hello", "speed": 9}, 400, "speed"),
    ({"input": "hello", "seed": -1}, 400, "seed"),
    ({"voice": "default"}, 400, "input"),
])
def test_bad_input_gets_a_json_4xx(url, body, status, words):
    response = _speech(url, **body)
    assert response.status_code == status
    error = response.json()["error"]
    assert words in error["message"] and error["type"]


def test_malformed_requests_get_json_errors(url):
    response = httpx.post(f"{url}/v1/audio/speech", content=b"{not json", headers={"content-type": "application/json"})
    assert response.status_code == 400 and "error" in response.json()
    huge = httpx.post(f"{url}/v1/audio/speech", content=b"x" * 100_000, headers={"content-type": "application/json"})
    assert huge.status_code == 413 and "error" in huge.json()
    missing = httpx.get(f"{url}/v1/nothing-here")
    assert missing.status_code == 404 and "error" in missing.json()


def test_twenty_concurrent_requests_against_a_queue_of_four(url):
    def call(i):
        return _speech(url, input=ONE, response_format="wav" if i % 2 else "mp3", seed=i)

    with ThreadPoolExecutor(20) as pool:
        responses = list(pool.map(call, range(20)))
    statuses = [r.status_code for r in responses]
    assert set(statuses) <= {200, 503}, statuses
    assert 1 <= statuses.count(200) and statuses.count(503) >= 1
    for r in responses:
        if r.status_code == 503:
            assert int(r.headers["retry-after"]) >= 1 and r.json()["error"]["type"] == "server_busy"
        else:
            assert sf.info(io.BytesIO(r.content)).samplerate == 24000
    health = httpx.get(f"{url}/health")
    assert health.status_code == 200
    deadline = time.monotonic() + 60
    while health.json()["pending"]:
        assert time.monotonic() < deadline
        time.sleep(0.1)
        health = httpx.get(f"{url}/health")
    assert _speech(url, input=ONE, response_format="wav").status_code == 200  # and it still serves


def test_token_required_when_set(synth):
    from fastapi.testclient import TestClient

    from xtts_finetune.server import create_app

    client = TestClient(create_app(synthesizer=synth, token="s3cret"), base_url="http://127.0.0.1")
    body = {"input": "Hi.", "response_format": "pcm"}
    assert client.post("/v1/audio/speech", json=body).status_code == 401
    wrong = client.post("/v1/audio/speech", json=body, headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401 and wrong.json()["error"]["type"] == "authentication_error"
    assert client.get("/v1/voices").status_code == 401
    ok = client.post("/v1/audio/speech", json=body, headers={"Authorization": "Bearer s3cret"})
    assert ok.status_code == 200 and len(ok.content) > 0 and len(ok.content) % 2 == 0
    assert client.get("/health").status_code == 200


def test_public_address_needs_a_token(tmp_path):
    from xtts_finetune.server import check_binding, serve

    with pytest.raises(UserError, match="token"):
        serve(tmp_path / "no-model-needed", host="0.0.0.0")  # refused before anything loads
    with pytest.raises(UserError, match="token"):
        check_binding("192.168.1.20", None)
    for host in ("127.0.0.1", "::1", "localhost"):
        check_binding(host, None)
    check_binding("0.0.0.0", "a-token")


def test_docs_and_schema_need_the_token_and_checks_precede_the_body(synth):
    from fastapi.testclient import TestClient

    from xtts_finetune.server import create_app

    client = TestClient(create_app(synthesizer=synth, token="s3cret-token", max_chars=100), base_url="http://127.0.0.1")
    for path in ("/docs", "/openapi.json", "/redoc"):
        assert client.get(path).status_code == 401
    assert client.get("/openapi.json", headers={"Authorization": "Bearer s3cret-token"}).status_code == 200
    endless = (b"x" * 65536 for _ in range(10_000))  # 640 MB if it were read: refused on the headers alone
    assert client.post("/v1/audio/speech", content=endless).status_code == 401
    auth = {"Authorization": "Bearer s3cret-token"}
    chunked = client.post("/v1/audio/speech", content=(b"x" * 1024 for _ in range(10_000)), headers=auth)
    assert chunked.status_code == 413 and "too large" in chunked.json()["error"]["message"]


def test_host_header_allow_list_stops_dns_rebinding(url):
    evil = httpx.get(f"{url}/v1/voices", headers={"Host": "attacker.example:8020"})
    assert evil.status_code == 400
    for name in ("localhost", "127.0.0.1"):
        assert httpx.get(f"{url}/v1/voices", headers={"Host": f"{name}:8020"}).status_code == 200


def test_chunked_body_over_the_limit_is_refused_while_read(url):
    sent = []

    def body():
        for _ in range(1000):  # 1 MB offered; the server stops reading after its limit
            sent.append(1)
            yield b"x" * 1024

    response = httpx.post(f"{url}/v1/audio/speech", content=body(), headers={"content-type": "application/json"})
    assert response.status_code == 413 and "error" in response.json()
    assert "content-length" not in response.request.headers  # it really was chunked


def test_text_is_prepared_on_the_worker_thread(synth, url):
    seen = []
    original = synth.prepare

    def recording(*args, **kwargs):
        seen.append(threading.current_thread().name)
        return original(*args, **kwargs)

    synth.prepare = recording
    try:
        assert _speech(url, input=ONE, response_format="pcm").status_code == 200
    finally:
        del synth.prepare
    assert seen and all(name.startswith("xtts-synthesis") for name in seen)


@pytest.mark.parametrize("fmt", ["mp3", "wav"])
def test_a_client_that_leaves_stops_its_work(synth, url, fmt):
    produced = []
    original = synth.generate_many

    def counting(requests, **kwargs):
        for index, chunk in original(requests, **kwargs):
            produced.append(len(chunk) if chunk is not None else 0)
            time.sleep(0.1)  # a slow GPU: the whole text would take over a second
            yield index, chunk

    synth.generate_many = counting
    sentences = 12
    try:
        with pytest.raises(httpx.ReadTimeout):
            httpx.post(f"{url}/v1/audio/speech", json={"input": " ".join([ONE] * sentences), "response_format": fmt},
                       timeout=httpx.Timeout(30, read=0.25))
        deadline = time.monotonic() + 60
        while httpx.get(f"{url}/health").json()["pending"]:
            assert time.monotonic() < deadline, "the abandoned request kept its slot"
            time.sleep(0.05)
    finally:
        del synth.generate_many
    assert 0 < len(produced) < sentences  # stopped early, not rendered to the end


def test_a_gpu_error_that_poisons_the_device_makes_health_fail(synth):
    """A device-side assert leaves the CUDA context unusable: the worker says so on /health (503) and refuses
    new requests; running out of memory does not. The errors are raised inside the real decoding step."""
    import torch

    from xtts_finetune.server import create_app

    server, thread, base = _run_server(create_app(synthesizer=synth, max_queue=4, max_chars=300))
    errors = [torch.AcceleratorError("CUDA error: device-side assert triggered"), torch.OutOfMemoryError("CUDA out of memory")]

    def failing_step(*args):
        raise errors.pop()

    synth.decoder.sample_step = failing_step
    try:
        assert _speech(base, input=ONE, response_format="pcm").status_code == 500  # out of memory: this request fails
        assert httpx.get(f"{base}/health").json()["status"] == "ok"
        assert _speech(base, input=ONE, response_format="pcm").status_code == 500  # the device-side assert
        health = httpx.get(f"{base}/health")
        assert health.status_code == 503 and health.json()["status"] == "unhealthy"
        assert "device-side assert" in health.json()["error"]
        refused = _speech(base, input=ONE, response_format="pcm")
        assert refused.status_code == 503 and "must be restarted" in refused.json()["error"]["message"]
    finally:
        del synth.decoder.sample_step
        server.should_exit = True
        thread.join(10)


def test_token_from_a_file_or_the_environment(tmp_path, monkeypatch):
    from xtts_finetune.server import read_token

    monkeypatch.delenv("XTTS_FINETUNE_TOKEN", raising=False)
    assert read_token() is None
    monkeypatch.setenv("XTTS_FINETUNE_TOKEN", "from-the-env")
    assert read_token() == "from-the-env"
    (tmp_path / "token").write_text("from-a-file-123\n")
    assert read_token(tmp_path / "token") == "from-a-file-123"
    (tmp_path / "short").write_text("abc\n")
    with pytest.raises(UserError, match="short"):
        read_token(tmp_path / "short")
    with pytest.raises(UserError, match="cannot read"):
        read_token(tmp_path / "missing")
