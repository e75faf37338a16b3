"""The whole journey through the command line, as a new user walks it: dataset -> train -> export -> speak.

Each stage runs in its own process, so the only thing passed between them is what is on disk: the
test fails if one stage's files stop being what the next one reads.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import soundfile as sf
from speech import espeak


def xtts_finetune(*args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "xtts_finetune", *map(str, args)], capture_output=True, text=True)
    assert done.returncode == 0, f"xtts-finetune {' '.join(map(str, args))} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout + done.stderr


def test_dataset_train_export_speak(tiny_models, tmp_path):
    recording = espeak(
        "Welcome to the journey. This recording has several sentences. Each one can become a clip. "
        "Then a tiny model learns from them.",
        tmp_path / "my recording.wav",
    )
    workspace = tmp_path / "workspace"

    out = xtts_finetune("dataset", "create", workspace, "--language", "en", "--audio", recording,
                        "--whisper-model", tiny_models["whisper"])
    assert "added" in out
    manifest = json.loads((workspace / "dataset" / "dataset.json").read_text())
    assert manifest["language"] == "en" and manifest["segments"]

    out = xtts_finetune("train", workspace, "--base", tiny_models["xtts"], "--epochs", "1")
    (run,) = (workspace / "runs").iterdir()
    assert "best checkpoint" in out and (run / "best_model.pth").is_file()
    events = [json.loads(line) for line in (run / "events.jsonl").read_text().splitlines()]
    assert events[-1] == events[-1] | {"type": "status", "status": "finished"}

    xtts_finetune("export", run, "--name", "my-voice")
    model = workspace / "models" / "my-voice"
    card = json.loads((model / "model_card.json").read_text())
    assert card["language"] == "en" and list((model / "references").glob("*.wav"))

    xtts_finetune("speak", model, "--text", "Hello. My voice.", "--language", "en",
                  "--out", tmp_path / "hello.wav", "--seed", "1")
    audio, rate = sf.read(tmp_path / "hello.wav")
    assert rate == 24000 and audio.size > 0.1 * rate and np.abs(audio).max() > 1e-3
