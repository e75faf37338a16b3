"""A tiny random XTTS v2 with the release's file names and layout.

The folder is what `coqui/XTTS-v2` ships (config.json, model.pth, dvae.pth, mel_stats.pth,
vocab.json, speakers_xtts.pth), only with a few-layer GPT, so every production code path
(training, export, loading, synthesis) runs on it unchanged and in seconds on a CPU.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from xtts_finetune.languages import XTTS_LANGUAGES
from xtts_finetune.utils import atomic_torch_save, atomic_write_text

SPECIAL_TOKENS = ["[STOP]", "[UNK]", "[SPACE]"]
START_TOKEN = "[START]"
STOP_BIAS = 2.0

# Enough text that BPE learns merges and every Latin character is in the vocabulary.
_CORPUS = """\
the quick brown fox jumps over the lazy dog. a voice is a gift, and speech is its song.
hello world, this is a tiny text to speech model trained on the spot for tests.
she sells sea shells by the sea shore; peter piper picked a peck of pickled peppers!
numbers like one, two, three, four, five, six, seven, eight, nine and ten are read aloud?
à á â ã ä å æ ç è é ê ë ì í î ï ñ ò ó ô õ ö ø ù ú û ü ý ÿ ß œ ą ć ę ł ń ś ź ż č ř š ž ğ ı ş ő ű
0 1 2 3 4 5 6 7 8 9 ' " - : ( ) % & + = / @ # $ * , . ! ? ; ¿ ¡ « »
"""


def build_vocab(path: Path, extra_text: str = "") -> dict:
    """Train a small BPE tokenizer with XTTS's special and language tokens; write vocab.json."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE(unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    lang_tokens = [f"[{'zh-cn' if code == 'zh' else code}]" for code in XTTS_LANGUAGES]
    trainer = trainers.BpeTrainer(
        vocab_size=400, special_tokens=SPECIAL_TOKENS + lang_tokens + [START_TOKEN], show_progress=False
    )
    tokenizer.train_from_iterator((_CORPUS + extra_text).splitlines(), trainer=trainer)
    atomic_write_text(path, tokenizer.to_str(pretty=True))
    return json.loads(tokenizer.to_str())


def tiny_config(vocab_path: Path, model_dim: int = 64, layers: int = 2, heads: int = 4):
    """An `XttsConfig` shaped like the release's, scaled down."""
    from TTS.tts.configs.xtts_config import XttsConfig
    from TTS.tts.models.xtts import XttsArgs

    args = XttsArgs(
        gpt_layers=layers,
        gpt_n_model_channels=model_dim,
        gpt_n_heads=heads,
        gpt_use_perceiver_resampler=True,
        decoder_input_dim=model_dim,
        tokenizer_file="",
    )
    return XttsConfig(model_args=args, languages=list(_release_language_names()))


def _release_language_names():
    return ["zh-cn" if code == "zh" else code for code in XTTS_LANGUAGES]


def make_tiny_xtts(out_dir: str | Path, seed: int = 0, stop_bias: float = STOP_BIAS, **shape) -> Path:
    """Write a tiny random XTTS v2 folder to `out_dir` and return it; `shape` sizes its GPT (see tiny_config),
    `stop_bias` is added to the stop token's logit (lower: longer generations)."""
    from TTS.tts.layers.xtts.dvae import DiscreteVAE
    from TTS.tts.layers.xtts.tokenizer import VoiceBpeTokenizer
    from TTS.tts.models.xtts import Xtts

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    build_vocab(out / "vocab.json")
    config = tiny_config(out / "vocab.json", **shape)

    model = Xtts(config)
    model.tokenizer = VoiceBpeTokenizer(str(out / "vocab.json"))
    model.init_models()
    with torch.no_grad():
        # A random GPT almost never samples the stop token and would always generate the
        # maximum number of audio codes; bias it so tiny generations end after a few dozen.
        model.gpt.mel_head.bias[model.args.gpt_stop_audio_token] += stop_bias
    state = {k: v for k, v in model.state_dict().items() if not k.startswith("gpt.gpt_inference")}
    atomic_torch_save({"model": state}, out / "model.pth")

    # GPTTrainer fixes the DVAE's shape (60 M parameters) and loads it with strict=False. Training
    # only uses the encoder and codebook (audio -> codes), so the tiny file holds those, in fp16.
    dvae = DiscreteVAE(
        channels=80, normalization=None, positional_dims=1, num_tokens=8192, codebook_dim=512,
        hidden_dim=512, num_resnet_blocks=3, kernel_size=3, num_layers=2, use_transposed_convs=False,
    )
    dvae_state = {k: v.half() for k, v in dvae.state_dict().items() if k.split(".")[0] in ("encoder", "codebook")}
    atomic_torch_save(dvae_state, out / "dvae.pth")
    # Per-channel mel normalisation statistics, as in the release's mel_stats.pth.
    atomic_torch_save(torch.full((80,), 1.0) + torch.rand(80), out / "mel_stats.pth")

    latent = torch.randn(1, 32, config.model_args.gpt_n_model_channels) * 0.1
    embedding = torch.nn.functional.normalize(torch.randn(1, 512, 1), dim=1)
    atomic_torch_save(
        {"Tiny Speaker": {"gpt_cond_latent": latent, "speaker_embedding": embedding}}, out / "speakers_xtts.pth"
    )

    config_dict = config.to_dict()
    atomic_write_text(out / "config.json", json.dumps(config_dict, indent=2))
    return out
