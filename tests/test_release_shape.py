"""Models shaped like the XTTS v2 release: the tiny ones in every size but the GPT's, and the full shape on a CPU.

The release's config.json has 1026 audio tokens (1024 DVAE codes, start 1024, stop 1025), not coqui's
XttsArgs defaults (8194); a stage that assumes a size fails only on the real model, so the suite's models
carry the release's sizes and the full-size test runs the real shape's arithmetic (30 x 1024 x 16).
"""

from __future__ import annotations

import json
import math
import resource
import shutil
import time

import numpy as np
import pytest
import torch

from xtts_finetune.dev.release import RELEASE_AUDIO, RELEASE_MODEL_ARGS, SCALED_KEYS
from xtts_finetune.errors import UserError
from xtts_finetune.train import TrainSettings, train
from xtts_finetune.train.data import DVAE_SHAPE, CodeCache, build_dvae, dvae_codes, new_dvae
from xtts_finetune.train.model import base_config
from xtts_finetune.utils import atomic_torch_save


def test_tiny_config_is_the_releases_but_the_gpts_size(tiny_xtts):
    config = json.loads((tiny_xtts / "config.json").read_text())
    args = config["model_args"]
    assert {k: v for k, v in args.items() if k not in SCALED_KEYS} == {
        k: v for k, v in RELEASE_MODEL_ARGS.items() if k not in SCALED_KEYS}
    assert args["decoder_input_dim"] == args["gpt_n_model_channels"] < 1024 and args["gpt_layers"] < 30
    assert config["audio"] == RELEASE_AUDIO
    layout = (args["gpt_num_audio_tokens"], args["gpt_start_audio_token"], args["gpt_stop_audio_token"])
    assert layout == (1026, 1024, 1025)
    vocab = json.loads((tiny_xtts / "vocab.json").read_text())["model"]["vocab"]
    assert max(vocab.values()) + 1 == args["gpt_number_text_tokens"] == 6681


def test_tiny_dvae_has_the_releases_shape(tiny_xtts):
    state = torch.load(tiny_xtts / "dvae.pth", weights_only=True)
    release = new_dvae(1024).state_dict()
    assert state and all(state[k].shape == release[k].shape for k in state)
    assert state["codebook.embed"].shape == (DVAE_SHAPE["codebook_dim"], 1024)
    assert dvae_codes(base_config(tiny_xtts).model_args) == 1024


def test_training_on_the_release_shaped_dvae(coqui_dataset, tiny_xtts, tmp_path):
    """The first real run's first step: codes from a 1024-code DVAE, trained on by a 1026-token GPT."""
    workspace = tmp_path / "ws"
    shutil.copytree(coqui_dataset, workspace / "dataset", ignore=shutil.ignore_patterns("raw"))
    (workspace / "dataset" / "lang.txt").write_text("en\n")
    result = train(workspace, tiny_xtts, TrainSettings(epochs=1, batch_size=2), cache_root=tmp_path / "cache")
    assert result.status == "finished" and result.best_eval_loss is not None and math.isfinite(result.best_eval_loss)
    codes = [torch.load(p, weights_only=True) for p in (tmp_path / "cache").rglob("*.pt")]
    assert len(codes) == 6 and all(int(c.max()) < 1024 for c in codes)


def test_a_dvae_of_another_size_is_refused_naming_the_file(tiny_xtts, tmp_path):
    wrong = tmp_path / "dvae.pth"
    atomic_torch_save({k: v for k, v in new_dvae(8192).state_dict().items() if k.startswith("codebook")}, wrong)
    with pytest.raises(UserError, match="8192 codes") as err:
        build_dvae(wrong, dvae_codes(base_config(tiny_xtts).model_args))
    assert str(wrong) in str(err.value) and "1026 audio tokens" in str(err.value)
    cache = CodeCache(wrong, tiny_xtts / "mel_stats.pth", 22050, tmp_path, codes=1024)
    with pytest.raises(UserError, match="dvae.pth"):
        cache.encode(torch.zeros(1, 22050))


@pytest.mark.fullsize
def test_full_release_shape_trains_exports_and_speaks(tmp_path):
    """A random model of the release's full shape: one training step, an export, one short sentence.

    The synthesizer loads the export with coqui's own `Xtts.load_checkpoint` (so does the export, for the
    speaker's latents). The costs are kept down: one batch of one short clip, and a two-letter sentence,
    whose code cap (proportional to its length: 34 codes) bounds the decoding and the vocoder's audio."""
    from speech import make_training_set

    from xtts_finetune.dev.tiny_xtts import make_full_size_xtts
    from xtts_finetune.export import export_model
    from xtts_finetune.synthesis import Synthesizer

    root = tmp_path / "fullsize"
    try:
        timings, start = {}, time.perf_counter()

        def mark(phase: str) -> None:  # wall and CPU seconds so far (on a shared machine the CPU's say more)
            timings[phase] = time.perf_counter()
            print(f"{phase}: {timings[phase] - start:.1f} s, CPU {time.process_time():.1f} s", flush=True)

        base = make_full_size_xtts(root / "xtts")
        args = json.loads((base / "config.json").read_text())["model_args"]
        assert args == RELEASE_MODEL_ARGS  # the release's config.json, every value
        mark("build")
        workspace = root / "ws"
        make_training_set(workspace / "dataset", ["Hello there.", "A voice."])
        (workspace / "dataset" / "lang.txt").write_text("en\n")
        settings = TrainSettings(epochs=1, batch_size=1, early_stopping_patience=None)
        result = train(workspace, base, settings, cache_root=root / "cache")
        assert result.status == "finished" and result.steps == 1 and math.isfinite(result.best_eval_loss)
        mark("train")
        model = export_model(result.run_dir, "full")
        assert json.loads((model / "config.json").read_text())["model_args"]["gpt_layers"] == 30
        mark("export")
        synth = Synthesizer(model, device="cpu", latents_cache_dir=root / "latents")
        assert synth.decoder.stop == 1025 and synth.decoder.gpt.num_audio_tokens == 1026
        wav = synth.speak("Hi.", "en", voice="speaker", seed=0)  # the export's speaker: no latents to compute
        mark("speak")
        assert wav.ndim == 1 and wav.size > 0 and np.isfinite(wav).all()
        marks = [start, *timings.values()]
        seconds = {k: round(b - a, 1) for k, a, b in zip(timings, marks, marks[1:])}
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
        print(f"full release shape on the CPU: {seconds}, peak RSS {peak:.1f} GiB")
    finally:
        shutil.rmtree(root, ignore_errors=True)  # ~5 GB: the model, the run's weights, the export
