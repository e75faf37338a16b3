"""Speaking speed: our engine against coqui's `Xtts.inference`, in one run, on the same sentences.

    python bench/speak_speed.py [--layers 12 --width 512] [--concurrency 1 4 8 16] [--out bench/results/speak_speed_cpu.json]

A random XTTS of the given GPT shape (the vocoder is the release's) is built on the spot; both sides
use the same loaded weights, the same voice and the same 8 sentences, after one warm-up each.
Measured, interleaved sentence by sentence so machine noise hits both alike:
- sequential RTF (wall time / audio time): coqui's `Xtts.inference` per sentence, ours `Synthesizer.speak`
  per sentence, and ours as one 8-sentence request (its sentences decode as one batch);
- time to first audio: coqui's `inference_stream` against our `stream`;
- throughput (audio seconds per second) through our REST server on loopback with N clients at once,
  against coqui's sequential throughput (it has no server: one request after another).
Random weights talk for a random length, so RTF (per audio second) is the comparable figure.
"""

from __future__ import annotations

import argparse
import io
import json
import platform
import socket
import statistics
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch

SENTENCES = [
    "The quick brown fox jumps over the lazy dog.",
    "A voice is a gift, and speech is its song.",
    "She sells sea shells by the sea shore.",
    "Numbers like seven and eight are read aloud.",
    "Hello there, my friend, how are you today?",
    "The weather is lovely and the sky is clear.",
    "Please read this sentence slowly and clearly.",
    "Peter Piper picked a peck of pickled peppers.",
]


def _timed(fn):
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def sequential(synth, xtts, latent, embedding, repeats: int) -> dict:
    """Wall and audio seconds per side, sentence by sentence, the two sides taking turns."""
    totals = {"coqui": [0.0, 0.0], "ours": [0.0, 0.0], "ours_batched": [0.0, 0.0]}
    for r in range(repeats):
        for i, text in enumerate(SENTENCES):
            torch.manual_seed(r * 100 + i)
            wall, out = _timed(lambda: xtts.inference(text.lower(), "en", latent, embedding))
            totals["coqui"][0] += wall
            totals["coqui"][1] += len(out["wav"]) / 24000
            wall, wav = _timed(lambda: synth.speak(text, "en", "Tiny Speaker", seed=r * 100 + i))
            totals["ours"][0] += wall
            totals["ours"][1] += len(wav) / 24000
        wall, wav = _timed(lambda: synth.speak(" ".join(SENTENCES), "en", "Tiny Speaker", seed=r))
        totals["ours_batched"][0] += wall
        totals["ours_batched"][1] += len(wav) / 24000
    return {name: {"wall_s": w, "audio_s": a, "rtf": w / a} for name, (w, a) in totals.items()}


def first_audio(synth, xtts, latent, embedding, repeats: int) -> dict:
    def first(chunks):
        start = time.perf_counter()
        next(iter(chunks))
        return time.perf_counter() - start

    coqui, ours = [], []
    for r in range(repeats):
        with torch.inference_mode():
            coqui.append(first(xtts.inference_stream(SENTENCES[0].lower(), "en", latent, embedding)))
        ours.append(first(synth.stream(SENTENCES[0], "en", "Tiny Speaker", seed=r)))
    return {"coqui_s": statistics.median(coqui), "ours_s": statistics.median(ours)}


def throughput(synth, concurrency: list[int], requests_per_client: int) -> dict:
    import httpx
    import soundfile
    import uvicorn

    from xtts_finetune.server import create_app

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    app = create_app(synthesizer=synth, max_queue=max(concurrency) * 2, max_batch=max(concurrency))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    url = f"http://127.0.0.1:{port}/v1/audio/speech"

    def client(c: int) -> float:
        audio = 0.0
        for k in range(requests_per_client):  # bounded: loopback only, a fixed count
            body = {"input": SENTENCES[(c + k) % len(SENTENCES)], "voice": "alloy", "response_format": "wav", "seed": c}
            response = httpx.post(url, json=body, timeout=600)
            response.raise_for_status()
            audio += soundfile.info(io.BytesIO(response.content)).duration
        return audio

    results = {}
    try:
        for n in concurrency:
            with ThreadPoolExecutor(n) as pool:
                wall, audio = _timed(lambda: sum(pool.map(client, range(n))))
            results[str(n)] = {"audio_s": audio, "wall_s": wall, "audio_s_per_s": audio / wall}
            print(f"  concurrency {n:>2}: {audio / wall:.3f} audio s/s", flush=True)
    finally:
        server.should_exit = True
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", type=int, default=12)
    parser.add_argument("--width", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 8, 16])
    parser.add_argument("--requests-per-client", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()

    from xtts_finetune.dev.tiny_xtts import make_tiny_xtts
    from xtts_finetune.synthesis import Synthesizer

    folder = make_tiny_xtts(Path(tempfile.mkdtemp()) / "xtts", layers=args.layers, model_dim=args.width,
                            heads=args.width // 64)
    synth = Synthesizer(folder, device=args.device, latents_cache_dir=Path(tempfile.mkdtemp()))
    xtts = synth.model
    latent, embedding = synth.speakers["Tiny Speaker"].values()
    synth.speak(SENTENCES[0], "en", "Tiny Speaker", seed=0)  # warm-up, both sides
    xtts.inference(SENTENCES[0].lower(), "en", latent, embedding)

    seq = sequential(synth, xtts, latent, embedding, args.repeats)
    print(json.dumps(seq, indent=1), flush=True)
    tfa = first_audio(synth, xtts, latent, embedding, 3)
    print(json.dumps(tfa), flush=True)
    thr = throughput(synth, args.concurrency, args.requests_per_client)
    coqui_rate = seq["coqui"]["audio_s"] / seq["coqui"]["wall_s"]
    result = {
        "model": {"gpt_layers": args.layers, "gpt_width": args.width, "vocoder": "release shape"},
        "device": args.device if args.device == "cpu" else torch.cuda.get_device_name(),
        "cpu": platform.processor() or platform.machine(), "torch_threads": torch.get_num_threads(),
        "sequential": seq, "first_audio": tfa, "throughput": thr, "coqui_sequential_audio_s_per_s": coqui_rate,
        "ratios": {
            "sequential_rtf_coqui_over_ours": seq["coqui"]["rtf"] / seq["ours"]["rtf"],
            "sequential_rtf_coqui_over_ours_batched_request": seq["coqui"]["rtf"] / seq["ours_batched"]["rtf"],
            "first_audio_coqui_over_ours": tfa["coqui_s"] / tfa["ours_s"],
            **{f"throughput_c{n}_over_coqui": v["audio_s_per_s"] / coqui_rate for n, v in thr.items()},
        },
    }
    print(json.dumps(result["ratios"], indent=1))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
