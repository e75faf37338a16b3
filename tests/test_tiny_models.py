"""Proof that the tiny models are real: coqui's own classes train and run them unchanged."""

from __future__ import annotations

import json
import math

import numpy as np
import torch

from xtts_finetune.dev.release import SCALED_KEYS

AUDIO_TOKEN_KEYS = ("gpt_num_audio_tokens", "gpt_start_audio_token", "gpt_stop_audio_token")
RELEASE_FILES = {"config.json", "model.pth", "dvae.pth", "mel_stats.pth", "vocab.json", "speakers_xtts.pth"}


def load_xtts(folder):
    from TTS.tts.configs.xtts_config import XttsConfig
    from TTS.tts.models.xtts import Xtts

    config = XttsConfig()
    config.load_json(str(folder / "config.json"))
    model = Xtts(config)
    model.load_checkpoint(config, checkpoint_dir=str(folder), eval=True)
    return model


def test_tiny_xtts_has_release_layout_and_tokens(tiny_xtts):
    assert RELEASE_FILES <= {p.name for p in tiny_xtts.iterdir()}
    vocab = json.loads((tiny_xtts / "vocab.json").read_text())["model"]["vocab"]
    for token in ["[STOP]", "[UNK]", "[SPACE]", "[START]", "[en]", "[zh-cn]", "[ja]", "[hi]"]:
        assert token in vocab, token
    assert sum(1 for t in vocab if t.startswith("[") and t.endswith("]") and len(t) <= 7) >= 17 + 4


def test_tiny_xtts_loads_and_synthesizes_24khz(tiny_xtts):
    model = load_xtts(tiny_xtts)
    assert model.config.audio.output_sample_rate == 24000
    speaker = model.speaker_manager.speakers["Tiny Speaker"]
    torch.manual_seed(0)
    wav = model.inference("hello world, this is a test.", "en", speaker["gpt_cond_latent"], speaker["speaker_embedding"])["wav"]
    assert wav.ndim == 1 and wav.size >= 1024
    assert np.isfinite(wav).all() and np.abs(wav).max() > 1e-4


def test_tiny_xtts_conditioning_from_reference_clip(tiny_xtts, coqui_dataset):
    model = load_xtts(tiny_xtts)
    latent, embedding = model.get_conditioning_latents(audio_path=[str(coqui_dataset / "wavs" / "clip0.wav")])
    assert latent.shape[-1] == model.args.gpt_n_model_channels
    assert embedding.shape[1] == 512


def test_tiny_xtts_trains_an_epoch_with_gpt_trainer(tiny_xtts, coqui_dataset, tmp_path):
    from trainer import Trainer, TrainerArgs
    from TTS.config.shared_configs import BaseDatasetConfig
    from TTS.tts.configs.xtts_config import XttsAudioConfig, XttsConfig
    from TTS.tts.datasets import load_tts_samples
    from TTS.tts.layers.xtts.trainer.gpt_trainer import GPTArgs, GPTTrainer, GPTTrainerConfig

    base = XttsConfig()
    base.load_json(str(tiny_xtts / "config.json"))
    # Upstream's recipe sets the audio-token layout by hand (GPTArgs' defaults are XTTS v1's); take the model's.
    shape = {k: getattr(base.model_args, k) for k in (*SCALED_KEYS, *AUDIO_TOKEN_KEYS, "gpt_use_perceiver_resampler")}
    args = GPTArgs(
        min_conditioning_length=11025, max_conditioning_length=66150,
        mel_norm_file=str(tiny_xtts / "mel_stats.pth"), dvae_checkpoint=str(tiny_xtts / "dvae.pth"),
        xtts_checkpoint=str(tiny_xtts / "model.pth"), tokenizer_file=str(tiny_xtts / "vocab.json"), **shape,
    )
    dataset = BaseDatasetConfig(
        formatter="coqui", dataset_name="tiny", path=str(coqui_dataset), language="en",
        meta_file_train="metadata_train.csv", meta_file_val="metadata_eval.csv",
    )
    config = GPTTrainerConfig(
        epochs=1, output_path=str(tmp_path), model_args=args, datasets=[dataset], batch_size=2, eval_batch_size=1,
        audio=XttsAudioConfig(), num_loader_workers=0, num_eval_loader_workers=0, save_step=1000,
        dashboard_logger="tensorboard", run_eval=True, test_sentences=[],
        optimizer="AdamW", optimizer_params={"betas": [0.9, 0.96], "eps": 1e-8, "weight_decay": 1e-2}, lr=5e-6,
    )
    model = GPTTrainer(config)
    train_samples, eval_samples = load_tts_samples(config, eval_split=True)
    trainer = Trainer(TrainerArgs(), config, output_path=str(tmp_path), model=model,
                      train_samples=train_samples, eval_samples=eval_samples)
    trainer.fit()
    losses = trainer.keep_avg_train.avg_values
    assert losses and all(math.isfinite(v) for k, v in losses.items() if "loss" in k)
    assert math.isfinite(trainer.keep_avg_eval.avg_values["avg_loss"])
