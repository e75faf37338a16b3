"""Speaking speed: our engine against coqui's `Xtts.inference`, in one run, on the same sentences.

    python bench/speak_speed.py [--layers 12 --width 512] [--threads N] [--concurrency 1 4 8 16] [--out FILE]

A random XTTS of the given GPT shape (the vocoder is the release's) is built on the spot, its stop token
made `--stop-bias` less likely so that sentences last ~2 s as real speech does (the tiny model's default
stops after ~0.5 s, where fixed costs would decide). Coqui runs on its own copy, loaded as coqui loads it
(weight-norm parametrizations and all); ours is a `Synthesizer` of the same folder. Both speak the same
voice and sentences after a warm-up, each measurement alternating the two sides (A B A B) so machine
noise hits both alike:
- sequential RTF (wall time / audio time): coqui's `Xtts.inference` per sentence against ours `speak` per
  sentence, then coqui's 8 calls in a row against ours given the 8 sentences as one request (one batch);
- time to first audio: coqui's `inference_stream` against our `stream`;
- throughput (audio seconds per second) through our REST server on loopback with N clients at once, each
  level against coqui saying the same N sentences one after another, measured just before it.
Random weights talk for a random length, so rates per audio second are the comparable figures.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import socket
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch
from common import random_model, save_report

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


class Sides:
    """The two engines on the same folder and voice; each call returns (wall s, audio s)."""

    def __init__(self, synth, xtts):
        self.synth, self.xtts = synth, xtts
        self.latent, self.embedding = synth.speakers["Tiny Speaker"].values()

    def coqui(self, texts: list[str], seed: int) -> tuple[float, float]:
        def run():
            audio = 0.0
            for i, text in enumerate(texts):  # one call per sentence, as coqui's users make them
                torch.manual_seed(seed + i)
                audio += len(self.xtts.inference(text.lower(), "en", self.latent, self.embedding)["wav"]) / 24000
            return audio
        return _timed(run)

    def ours(self, texts: list[str], seed: int, together: bool = False) -> tuple[float, float]:
        def run():
            if together:
                return len(self.synth.speak(" ".join(texts), "en", "Tiny Speaker", seed=seed)) / 24000
            return sum(len(self.synth.speak(t, "en", "Tiny Speaker", seed=seed + i)) / 24000 for i, t in enumerate(texts))
        return _timed(run)


def _rates(runs: dict[str, list[tuple[float, float]]]) -> dict:
    """Per side: totals, RTF over all runs, and the median of the runs' own RTFs."""
    return {name: {"wall_s": sum(w for w, _ in r), "audio_s": sum(a for _, a in r),
                   "rtf": sum(w for w, _ in r) / sum(a for _, a in r),
                   "rtf_median_run": statistics.median(w / a for w, a in r)} for name, r in runs.items()}


def sequential(sides: Sides, repeats: int, sentences: list[str] = SENTENCES) -> dict:
    """Per round: each sentence by coqui then by ours; then the 8 by coqui one after another, then by
    ours as one request."""
    runs = {"coqui": [], "ours": [], "coqui_8_in_a_row": [], "ours_one_request": []}
    for r in range(repeats):
        for i, text in enumerate(sentences):
            runs["coqui"].append(sides.coqui([text], 100 * r + i))
            runs["ours"].append(sides.ours([text], 100 * r + i))
        runs["coqui_8_in_a_row"].append(sides.coqui(sentences, 100 * r))
        runs["ours_one_request"].append(sides.ours(sentences, 100 * r, together=True))
    return _rates(runs)


def first_audio(sides: Sides, repeats: int) -> dict:
    def first(chunks):
        start = time.perf_counter()
        next(iter(chunks))
        return time.perf_counter() - start

    coqui, ours = [], []
    for r in range(repeats):
        torch.manual_seed(r)
        with torch.inference_mode():
            coqui.append(first(sides.xtts.inference_stream(SENTENCES[0].lower(), "en", sides.latent, sides.embedding)))
        ours.append(first(sides.synth.stream(SENTENCES[0], "en", "Tiny Speaker", seed=r)))
    return {"coqui_s": statistics.median(coqui), "ours_s": statistics.median(ours)}


def _serve(synth, max_batch: int):
    import uvicorn

    from xtts_finetune.server import create_app

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    app = create_app(synthesizer=synth, max_queue=max_batch * 2, max_batch=max_batch)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    return server, f"http://127.0.0.1:{port}/v1/audio/speech"


def throughput(sides: Sides, concurrency: list[int], rounds: int = 1) -> dict:
    """Per level N: coqui says N x `rounds` sentences one after another, then N clients ask our server at
    once, each `rounds` requests in a row (from the second on, requests arrive while others are spoken)."""
    import httpx
    import soundfile

    server, url = _serve(sides.synth, max(concurrency))

    def client(c: int) -> float:
        audio = 0.0
        for r in range(rounds):
            body = {"input": SENTENCES[(c + r) % len(SENTENCES)], "voice": "alloy", "response_format": "wav",
                    "seed": c + 100 * r}
            response = httpx.post(url, json=body, timeout=1800)
            response.raise_for_status()
            audio += soundfile.info(io.BytesIO(response.content)).duration
        return audio

    results = {}
    try:
        for n in concurrency:
            texts = [SENTENCES[(c + r) % len(SENTENCES)] for c in range(n) for r in range(rounds)]
            c_wall, c_audio = sides.coqui(texts, 0)
            with ThreadPoolExecutor(n) as pool:
                wall, audio = _timed(lambda: sum(pool.map(client, range(n))))
            results[str(n)] = {"ours_audio_s": audio, "ours_wall_s": wall, "ours_audio_s_per_s": audio / wall,
                               "coqui_sequential_audio_s_per_s": c_audio / c_wall,
                               "ratio": (audio / wall) / (c_audio / c_wall), "load_avg": os.getloadavg()}
            print(f"  concurrency {n:>2}: ours {audio / wall:.3f} audio s/s, coqui sequential {c_audio / c_wall:.3f}",
                  flush=True)
    finally:
        server.should_exit = True
    return results


def load(args):
    """Builds the random model; returns (ours, coqui's own copy)."""
    from xtts_finetune.synthesis import Synthesizer, _load_model

    folder = random_model(Path(tempfile.mkdtemp()) / "xtts", args.layers, args.width, stop_bias=args.stop_bias)
    synth = Synthesizer(folder, device=args.device, latents_cache_dir=Path(tempfile.mkdtemp()), precision=args.precision)
    return synth, _load_model(folder, args.device)[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", type=int, default=12)
    parser.add_argument("--width", type=int, default=512)
    parser.add_argument("--stop-bias", type=float, default=1.5, help="the stop token's logit bias (tiny default 2)")
    parser.add_argument("--threads", type=int, help="torch threads for both sides (default: torch's)")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 8, 16])
    parser.add_argument("--rounds", type=int, default=1, help="requests each client sends one after another")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--precision", default="auto", help="ours only (coqui runs as it loads): auto, fp32, fp16, bf16")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    sides = Sides(*load(args))
    sides.ours(SENTENCES[:1], 0), sides.coqui(SENTENCES[:1], 0)  # warm-up, both sides
    load_before = os.getloadavg()
    seq = sequential(sides, args.repeats)
    print(json.dumps(seq, indent=1), flush=True)
    tfa = first_audio(sides, 3)
    print(json.dumps(tfa), flush=True)
    thr = throughput(sides, args.concurrency, args.rounds)
    result = {
        "command": "python " + " ".join(sys.argv),
        "model": {"gpt_layers": args.layers, "gpt_width": args.width, "stop_bias": args.stop_bias, "vocoder": "release shape"},
        "device": args.device if args.device == "cpu" else torch.cuda.get_device_name(), "ours_dtype": str(sides.synth.dtype),
        "cpu": platform.processor() or platform.machine(), "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(), "load_avg_start": load_before, "load_avg_end": os.getloadavg(),
        "sequential": seq, "first_audio": tfa, "throughput": thr,
        "ratios": {
            "sequential_rtf_coqui_over_ours_per_sentence": seq["coqui"]["rtf"] / seq["ours"]["rtf"],
            "sequential_rtf_coqui_over_ours_one_request": seq["coqui_8_in_a_row"]["rtf"] / seq["ours_one_request"]["rtf"],
            "first_audio_coqui_over_ours": tfa["coqui_s"] / tfa["ours_s"],
            **{f"throughput_c{n}_over_coqui_sequential": v["ratio"] for n, v in thr.items()},
        },
    }
    print(json.dumps(result["ratios"], indent=1))
    save_report(result, args.out)


if __name__ == "__main__":
    main()
