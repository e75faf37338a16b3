"""bench/gpu_check.py end to end on the CPU (tiny model): every path runs or says why not, and the JSON holds
the figures issues 14 and 16 ask for, ours next to coqui's."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TRAINING = ["train fp32 batch 2 (against coqui)", "train bf16 batch 32 (against coqui)", "train fp16 with the grad scaler",
            "train --activation-checkpointing", "train --optimizer-8bit", "train --lora 16",
            "resume of a CPU-started run", "train --devices 1 (torchrun)", "train --evaluate-every 1 (same process)"]
SPEAKING = ["speak fp32 (greedy, SNR against fp32)", "speak fp16 (greedy, SNR against fp32)",
            "speak bf16 (greedy, SNR against fp32)", "speak against coqui (RTF at batch 1, first audio)",
            "server under 16 concurrent requests"]
NEEDS_CUDA = {"train bf16 batch 32 (against coqui)", "train fp16 with the grad scaler",
              "speak fp16 (greedy, SNR against fp32)", "speak bf16 (greedy, SNR against fp32)"}


def test_gpu_check_runs_every_path_on_the_cpu(tmp_path):
    out = tmp_path / "check.json"
    done = subprocess.run([sys.executable, "bench/gpu_check.py", "--device", "cpu", "--size", "tiny", "--clips", "2",
                           "--epochs", "1", "--out", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=1500)
    assert done.returncode == 0, done.stderr[-3000:]
    check_report(json.loads(out.read_text(encoding="utf-8")))


def check_report(report: dict) -> None:
    assert list(report["summary"]) == TRAINING + SPEAKING
    failed = {r["path"]: r.get("error") for r in report["paths"] if r["status"] == "fail"}
    assert not failed and report["passed"], failed
    assert {p for p, s in report["summary"].items() if s == "skipped: needs CUDA"} == NEEDS_CUDA
    paths = {r["path"]: r for r in report["paths"]}

    race = paths["train fp32 batch 2 (against coqui)"]
    for side in ("ours", "coqui"):
        assert race[side]["samples_per_s"] > 0 and race[side]["peak_memory_mib"] > 0 and race[side]["steps"] == 1
    assert race["samples_per_s_ours_over_coqui"] > 0 and race["ours"]["precision"] == "fp32"
    stand_in = paths["train bf16 batch 32 (against coqui)"]["cpu_stand_in_fp32"]  # its logic ran, in fp32
    assert stand_in["batch_size"] == 2 and stand_in["ours"]["precision"] == "fp32" and stand_in["coqui"]["steps"] == 1
    assert paths["resume of a CPU-started run"]["steps"] == 2  # one step on the CPU, then the rest resumed
    assert paths["train --evaluate-every 1 (same process)"]["evaluations"] == 1
    assert paths["train --devices 1 (torchrun)"]["steps"] == 1

    assert paths["speak fp32 (greedy, SNR against fp32)"]["rtf"] > 0
    speaking = paths["speak against coqui (RTF at batch 1, first audio)"]
    assert speaking["rtf_batch_1"]["ours"] > 0 and speaking["rtf_batch_1"]["coqui"] > 0
    assert speaking["first_audio_s"]["ours_s"] > 0 and speaking["first_audio_coqui_over_ours"] > 0
    server = paths["server under 16 concurrent requests"]
    assert server["clients"] == 16 and server["ours_aggregate_real_time"] > 0 and server["ours_over_coqui"] > 0
    assert report["machine"]["cpus"] and "gpu" not in report["machine"]


def test_snr_of_a_copy_and_of_noise():
    sys.path.insert(0, str(ROOT / "bench"))
    import numpy as np
    from gpu_check import snr_db

    tone = np.sin(np.linspace(0, 200, 24000)).astype(np.float32)
    assert snr_db(tone, tone) == float("inf")
    assert 19 < snr_db(tone, tone + 0.1 * np.sin(np.linspace(0, 3000, 24000))) < 21  # noise 1/10 of the signal
    assert snr_db(tone, np.concatenate([tone, tone])) == float("inf")  # compared over the shorter one
