"""The XTTS v2 release's config.json, the shape every random model of this project copies.

Values read from the `config.json` of the hub repository `coqui/XTTS-v2` (releases v2.0.x), through its
public copies: `XTTS-v2/config.json` in github.com/austinkangmusic/Emma and in
github.com/amalshafernando/XTTSv2-Finetuning-for-New-Languages (identical). Only the values that a model
reads are kept here; the file's remaining keys are coqui's trainer defaults, taken from `XttsConfig`.

A random model scaled down for tests changes the GPT's depth, width and heads, and `decoder_input_dim`
with the width (the HiFi-GAN decoder reads the GPT's latents); every other value, the audio-token layout
(1026 tokens: 1024 DVAE codes, start 1024, stop 1025) above all, stays as released.
"""

from __future__ import annotations

RELEASE_MODEL_ARGS = {
    "gpt_batch_size": 1,
    "enable_redaction": False,
    "kv_cache": True,
    "gpt_checkpoint": None,
    "clvp_checkpoint": None,
    "decoder_checkpoint": None,
    "num_chars": 255,
    "tokenizer_file": "",
    "gpt_max_audio_tokens": 605,
    "gpt_max_text_tokens": 402,
    "gpt_max_prompt_tokens": 70,
    "gpt_layers": 30,
    "gpt_n_model_channels": 1024,
    "gpt_n_heads": 16,
    "gpt_number_text_tokens": 6681,
    "gpt_start_text_token": None,
    "gpt_stop_text_token": None,
    "gpt_num_audio_tokens": 1026,
    "gpt_start_audio_token": 1024,
    "gpt_stop_audio_token": 1025,
    "gpt_code_stride_len": 1024,
    "gpt_use_masking_gt_prompt_approach": True,
    "gpt_use_perceiver_resampler": True,
    "input_sample_rate": 22050,
    "output_sample_rate": 24000,
    "output_hop_length": 256,
    "decoder_input_dim": 1024,
    "d_vector_dim": 512,
    "cond_d_vector_in_each_upsampling_layer": True,
    "duration_const": 102400,
}
RELEASE_AUDIO = {"sample_rate": 22050, "output_sample_rate": 24000}
RELEASE_LANGUAGES = ["en", "es", "fr", "de", "it", "pt", "pl", "tr", "ru", "nl", "cs", "ar", "zh-cn", "hu", "ko",
                     "ja", "hi"]
RELEASE_INFERENCE = {
    "temperature": 0.75, "length_penalty": 1.0, "repetition_penalty": 5.0, "top_k": 50, "top_p": 0.85,
    "num_gpt_outputs": 1, "gpt_cond_len": 30, "gpt_cond_chunk_len": 4, "max_ref_len": 30, "sound_norm_refs": False,
}
SCALED_KEYS = ("gpt_layers", "gpt_n_model_channels", "gpt_n_heads", "decoder_input_dim")
FULL_SHAPE = {"layers": 30, "model_dim": 1024, "heads": 16}


def release_config(layers: int = 30, model_dim: int = 1024, heads: int = 16) -> dict:
    """The release's config.json as a dict, its GPT `layers` x `model_dim` x `heads` (decoder input: the width)."""
    from TTS.tts.configs.xtts_config import XttsConfig

    config = XttsConfig().to_dict()  # the keys no model reads (trainer defaults)
    args = {**RELEASE_MODEL_ARGS, "gpt_layers": layers, "gpt_n_model_channels": model_dim, "gpt_n_heads": heads,
            "decoder_input_dim": model_dim}
    return {**config, "audio": dict(RELEASE_AUDIO), "model_args": args, "languages": list(RELEASE_LANGUAGES),
            **RELEASE_INFERENCE}
