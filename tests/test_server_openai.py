"""The server as OpenAI clients see it, and concurrent requests batched together (tiny model, loopback)."""

from __future__ import annotations

import io
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import pytest
import soundfile as sf

from test_server import _run_server

ONE = "Hello there, my friend."


@pytest.fixture(scope="module")
def synth(tiny_xtts, tmp_path_factory):
    """The bare base model: no model card, so no language of its own (17 languages)."""
    from xtts_finetune.synthesis import Synthesizer

    return Synthesizer(tiny_xtts, device="cpu", latents_cache_dir=tmp_path_factory.mktemp("latents"))


@pytest.fixture(scope="module")
def url(synth):
    from xtts_finetune.server import create_app

    server, thread, base = _run_server(create_app(synthesizer=synth, max_queue=8, max_chars=300, max_batch=4))
    yield base
    server.should_exit = True
    thread.join(10)


def _wav(response) -> np.ndarray:
    audio, rate = sf.read(io.BytesIO(response.content), dtype="float32")
    assert rate == 24000
    return audio


def test_the_openai_package_speaks_with_openai_voice_names(url):
    openai = pytest.importorskip("openai", reason="the dev group installs it (uv sync)")
    client = openai.OpenAI(base_url=f"{url}/v1", api_key="unused-on-loopback")
    assert {"tts-1", "tts-1-hd"} <= {m.id for m in client.models.list()}
    normal = client.audio.speech.create(model="tts-1", voice="alloy", input=ONE, response_format="wav",
                                        extra_body={"seed": 3})
    fast = client.audio.speech.create(model="tts-1", voice="nova", input=ONE, response_format="wav", speed=2.0,
                                      extra_body={"seed": 3})
    normal, fast = _wav(normal), _wav(fast)
    assert len(normal) > 0 and abs(len(fast) - len(normal) / 2) <= 0.1 * len(normal) + 2400  # speed honoured


def test_language_from_the_script_when_nobody_names_one(url):
    assert httpx.post(f"{url}/v1/audio/speech", json={"input": ONE, "response_format": "wav"}, timeout=120).status_code == 200
    cyrillic = httpx.post(f"{url}/v1/audio/speech", json={"input": "Привет мир", "response_format": "wav"}, timeout=120)
    assert cyrillic.status_code == 400 and "cannot encode" in cyrillic.json()["error"]["message"]  # guessed ru


def test_server_language_default_is_checked_at_start(synth):
    from xtts_finetune.errors import UserError
    from xtts_finetune.server import create_app

    with pytest.raises(UserError, match="does not speak"):
        create_app(synthesizer=synth, language="xx")


def test_concurrent_requests_are_batched_and_each_gets_its_own_audio(synth, url):
    sizes = []
    original = synth.generate_many

    def recording(requests, incoming=None, **kwargs):
        sizes.append(len(requests))

        def joining():  # requests that join the batch in flight count in its size
            new = incoming()
            sizes[-1] += len(new)
            return new

        yield from original(requests, incoming=joining, **kwargs)

    texts = ["Hello there.", "Lovely day.", "Read this aloud.", "Fine?"]  # short: each is spoken twice

    def speak(i):
        body = {"input": texts[i], "response_format": "wav", "seed": i, "voice": "Tiny Speaker", "language": "en"}
        return _wav(httpx.post(f"{url}/v1/audio/speech", json=body, timeout=120))

    alone = [speak(i) for i in range(4)]
    synth.generate_many = recording
    try:
        with ThreadPoolExecutor(4) as pool:
            together = list(pool.map(speak, range(4)))
    finally:
        del synth.generate_many
    assert max(sizes) > 1 and sum(sizes) == 4  # some requests shared a batch
    for a, b in zip(alone, together):
        assert len(a) == len(b) and np.allclose(a, b, atol=1e-4)


def test_a_request_arriving_mid_batch_joins_it_and_ends_first(url):
    """Continuous batching: a short request sent while a long one streams takes the next free row of the
    batch in flight (first sentences first), so it ends first; batches run to their end made it wait."""
    long_text = " ".join(f"Sentence {n} is here." for n in range(8))  # 8 sentences, batch of 4
    events: list[str] = []

    def long_request():
        body = {"input": long_text, "response_format": "pcm", "seed": 1, "language": "en"}
        with httpx.stream("POST", f"{url}/v1/audio/speech", json=body, timeout=300) as response:
            for _ in response.iter_bytes():
                if "long started" not in events:
                    events.append("long started")
        events.append("long done")

    with ThreadPoolExecutor(1) as pool:
        future = pool.submit(long_request)
        while "long started" not in events and not future.done():
            time.sleep(0.01)
        body = {"input": "Hi.", "response_format": "wav", "seed": 2, "language": "en"}
        assert httpx.post(f"{url}/v1/audio/speech", json=body, timeout=300).status_code == 200
        events.append("short done")
        future.result()
    assert events == ["long started", "short done", "long done"]
