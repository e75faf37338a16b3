"""The model a run trains: coqui's GPT built from a base model's files, its weights, and GPTTrainer's loss."""

from __future__ import annotations

from pathlib import Path

import torch

from xtts_finetune.errors import UserError
from xtts_finetune.text.vocab import load_tokenizer, resize_text_rows
from xtts_finetune.train.kernels import fuse_gelu

TEXT_CE_WEIGHT, MEL_CE_WEIGHT = 0.01, 1.0  # coqui's GPTArgs defaults


def load_gpt(base_dir: Path, vocab_json: str | None = None, language: str = "en", vocab_mode: str = "base"):
    """coqui's GPT with the base model's shape and weights, and its tokenizer; nothing else of Xtts.

    `vocab_json`: an extended vocabulary (script mode); the text rows grow to its size, base rows kept.
    """
    from TTS.tts.layers.xtts.gpt import GPT

    config = base_config(base_dir)
    vocab = vocab_json or (base_dir / "vocab.json")
    a, tokenizer = config.model_args, load_tokenizer(vocab, language, vocab_mode)
    with torch.device("meta"):  # no random init of weights that are loaded next (seconds on a CPU)
        gpt = GPT(
            layers=a.gpt_layers, model_dim=a.gpt_n_model_channels, heads=a.gpt_n_heads,
            start_text_token=tokenizer.tokenizer.token_to_id("[START]"),
            stop_text_token=tokenizer.tokenizer.token_to_id("[STOP]"),
            max_text_tokens=a.gpt_max_text_tokens, max_mel_tokens=a.gpt_max_audio_tokens,
            max_prompt_tokens=a.gpt_max_prompt_tokens, number_text_tokens=tokenizer.get_number_tokens(),
            num_audio_tokens=a.gpt_num_audio_tokens, start_audio_token=a.gpt_start_audio_token,
            stop_audio_token=a.gpt_stop_audio_token, use_perceiver_resampler=a.gpt_use_perceiver_resampler,
            code_stride_len=a.gpt_code_stride_len,
        )
    load_weights(gpt, base_weights(base_dir, gpt.number_text_tokens), base_dir, assign=True)
    fuse_gelu(gpt)
    return gpt.float(), tokenizer, config  # fp32 master weights, even from an fp16 export


def base_config(base_dir: Path):
    """The base model's `XttsConfig`: every size (audio tokens, DVAE codes, caps) is read from it."""
    from TTS.tts.configs.xtts_config import XttsConfig

    config = XttsConfig()
    config.load_json(str(Path(base_dir) / "config.json"))
    return config


def base_weights(base_dir: Path, text_rows: int) -> dict:
    """The base model's weights, text embedding and head grown to `text_rows` (base rows bit-exact)."""
    state = torch.load(Path(base_dir) / "model.pth", map_location="cpu", weights_only=True)["model"]
    return resize_text_rows(state, text_rows)


def load_weights(gpt, state: dict, source, assign: bool = False) -> None:
    """Load release-named ("gpt.*") weights into `gpt`; a missing weight is an error, not a random init."""
    weights = {k[4:]: v for k, v in state.items() if k.startswith("gpt.") and not k.startswith("gpt.gpt_inference")}
    missing = gpt.load_state_dict(weights, strict=False, assign=assign).missing_keys
    if missing:
        raise UserError(f"{source} lacks GPT weights ({', '.join(missing[:3])} ...)",
                        fix="use a complete XTTS v2 model")


def gpt_losses(gpt, batch: dict) -> dict[str, torch.Tensor]:
    """coqui's GPT forward and GPTTrainer's loss weighting (text CE x 0.01 + mel CE)."""
    cond_idxs = batch["cond_idxs"]
    text, mel, _ = gpt(
        batch["text_inputs"], batch["text_lengths"], batch["audio_codes"], batch["wav_lengths"],
        cond_mels=batch["cond_mels"], cond_idxs=None if cond_idxs is None else cond_idxs.clone(),
        cond_lens=batch["cond_lens"],
    )
    losses = {"loss_text_ce": text * TEXT_CE_WEIGHT, "loss_mel_ce": mel * MEL_CE_WEIGHT}
    return {**losses, "loss": losses["loss_text_ce"] + losses["loss_mel_ce"]}
