"""Time to first audio and total time of `Synthesizer.stream`, against coqui's own paths, in one run.

    python bench/streaming.py [MODEL_DIR] [--repeats 3]

MODEL_DIR defaults to a tiny random XTTS built on the spot (numbers then say little about a real
model on a GPU; run it with a real export there). Baselines, measured in the same process on the same
sentence and seed, on coqui's own copy of the model: `Xtts.inference` (whole sentence, no streaming)
and `Xtts.inference_stream` (streams, but re-decodes the sentence so far at every chunk). Reported as
ratios to those baselines. `speak_speed.py` measures first audio too, on a mid-size model.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch

TEXT = "The quick brown fox jumps over the lazy dog while the whole village watches from the old stone bridge."


def first_and_total(chunks) -> tuple[float, float, int]:
    start = time.perf_counter()
    first, samples = None, 0
    for chunk in chunks:
        first = first if first is not None else time.perf_counter() - start
        samples += len(chunk)
    return first, time.perf_counter() - start, samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", nargs="?", type=Path)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--language", default="en")
    parser.add_argument("--chunk", type=int, default=None, help="Synthesizer.stream_chunk_codes (default: its own)")
    args = parser.parse_args()

    from xtts_finetune.synthesis import Synthesizer, _load_model

    model_dir = args.model
    if model_dir is None:
        from xtts_finetune.dev.tiny_xtts import make_tiny_xtts

        model_dir = make_tiny_xtts(Path(tempfile.mkdtemp()) / "xtts")
    synth = Synthesizer(model_dir, latents_cache_dir=Path(tempfile.mkdtemp()))
    if args.chunk:
        synth.stream_chunk_codes = args.chunk
    voice = synth.voices()[0]
    latent, embedding = synth.voice_latents(synth.voice_bank.check(voice))
    xtts = _load_model(synth.model_dir, synth.device)[1]  # coqui's own copy, as coqui loads it

    def ours():
        torch.manual_seed(0)
        return synth.stream(TEXT, args.language, voice, seed=0)

    def coqui_whole():
        torch.manual_seed(0)
        with torch.inference_mode():
            yield xtts.inference(TEXT, args.language, latent, embedding)["wav"]

    def coqui_stream():
        torch.manual_seed(0)
        with torch.inference_mode():
            yield from (c.cpu().numpy() for c in xtts.inference_stream(TEXT, args.language, latent, embedding))

    results = {}
    for name, make in (("xtts-finetune stream", ours), ("coqui inference", coqui_whole),
                       ("coqui inference_stream", coqui_stream)):
        first_and_total(make())  # warm-up
        runs = [first_and_total(make()) for _ in range(args.repeats)]
        results[name] = tuple(statistics.median(r[i] for r in runs) for i in range(3))
    device = synth.device if synth.device != "cuda" else torch.cuda.get_device_name()
    print(f"model {model_dir} on {device}, median of {args.repeats}, stream_chunk_codes {synth.stream_chunk_codes}")
    print(f"{'path':<24} {'first audio':>12} {'total':>9} {'audio':>8}")
    for name, (first, total, samples) in results.items():
        print(f"{name:<24} {first:>11.3f}s {total:>8.3f}s {samples / synth.sample_rate:>7.2f}s")
    ours_first, ours_total, _ = results["xtts-finetune stream"]
    for name in ("coqui inference", "coqui inference_stream"):
        first, total, _ = results[name]
        print(f"vs {name}: time to first audio {ours_first / first:.2f}x, total time {ours_total / total:.2f}x (lower is better)")


if __name__ == "__main__":
    main()
