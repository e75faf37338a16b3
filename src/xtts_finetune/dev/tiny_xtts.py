"""A random XTTS v2 with the release's files, config and shape, its GPT scaled down (or not).

The folder is what `coqui/XTTS-v2` ships (config.json, model.pth, dvae.pth, mel_stats.pth,
vocab.json, speakers_xtts.pth) and its config.json is the release's (`release.py`): 1026 audio tokens,
a DVAE of 1024 codes, 6681 text tokens, the release's caps, HiFi-GAN and conditioning encoder. Only the
GPT's depth, width and heads change (and the decoder's input, which is that width): a few layers for the
tests, so every production code path (training, export, loading, synthesis) runs on it unchanged and in
seconds on a CPU; 30 x 1024 x 16 for the release's full shape (`FULL_SHAPE`).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from xtts_finetune.dev.release import FULL_SHAPE, RELEASE_LANGUAGES, RELEASE_MODEL_ARGS, release_config
from xtts_finetune.train.data import dvae_codes, new_dvae
from xtts_finetune.utils import atomic_torch_save, atomic_write_text

SPECIAL_TOKENS = ["[STOP]", "[UNK]", "[SPACE]"]
START_TOKEN = "[START]"
# Added to the stop token's logit. A random GPT almost never samples stop and would always generate the
# maximum number of codes. With the release's 1025 other tokens, this bias ends the tiny model's sampled
# sentences after ~50 codes (greedy: after 4), and 1.0 less after ~150, often at the cap (greedy: ~20).
STOP_BIAS = 1.0

# Enough text that BPE learns merges and every Latin character is in the vocabulary.
_CORPUS = """\
the quick brown fox jumps over the lazy dog. a voice is a gift, and speech is its song.
hello world, this is a tiny text to speech model trained on the spot for tests.
she sells sea shells by the sea shore; peter piper picked a peck of pickled peppers!
numbers like one, two, three, four, five, six, seven, eight, nine and ten are read aloud?
à á â ã ä å æ ç è é ê ë ì í î ï ñ ò ó ô õ ö ø ù ú û ü ý ÿ ß œ ą ć ę ł ń ś ź ż č ř š ž ğ ı ş ő ű
0 1 2 3 4 5 6 7 8 9 ' " - : ( ) % & + = / @ # $ * , . ! ? ; ¿ ¡ « »
"""


def build_vocab(path: Path, size: int = RELEASE_MODEL_ARGS["gpt_number_text_tokens"], extra_text: str = "") -> dict:
    """Write vocab.json: a small BPE tokenizer with XTTS's special and language tokens, `size` ids in all.

    The release's vocabulary is not copied (it ships under the Coqui Public Model License with the weights):
    a few hundred tokens are learned from a short text, and the ids up to `size` are held by tokens that no
    text reaches (no merge makes them), so the GPT's text rows have the release's count.
    """
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE(unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    lang_tokens = [f"[{code}]" for code in RELEASE_LANGUAGES]
    trainer = trainers.BpeTrainer(
        vocab_size=400, special_tokens=SPECIAL_TOKENS + lang_tokens + [START_TOKEN], show_progress=False
    )
    tokenizer.train_from_iterator((_CORPUS + extra_text).splitlines(), trainer=trainer)
    data = json.loads(tokenizer.to_str())
    vocab = data["model"]["vocab"]
    for index in range(len(vocab), size):
        vocab[f"<unused{index}>"] = index
    atomic_write_text(path, json.dumps(data, ensure_ascii=False, indent=2))
    return data


def make_tiny_xtts(out_dir: str | Path, seed: int = 0, stop_bias: float = STOP_BIAS, layers: int = 2,
                   model_dim: int = 64, heads: int = 4) -> Path:
    """Write a random XTTS v2 folder of the release's config with a GPT of `layers` x `model_dim` x `heads`
    (`**FULL_SHAPE`: the release's own) to `out_dir` and return it; `stop_bias` is added to the stop token's
    logit (lower: longer generations)."""
    from TTS.tts.configs.xtts_config import XttsConfig
    from TTS.tts.layers.xtts.tokenizer import VoiceBpeTokenizer
    from TTS.tts.models.xtts import Xtts

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    build_vocab(out / "vocab.json")
    atomic_write_text(out / "config.json", json.dumps(release_config(layers, model_dim, heads), indent=4))
    config = XttsConfig()
    config.load_json(str(out / "config.json"))
    config.model_args.gpt_number_text_tokens = None  # no GPT before the tokenizer: built once, by init_models

    model = Xtts(config)
    model.tokenizer = VoiceBpeTokenizer(str(out / "vocab.json"))
    model.init_models()
    with torch.no_grad():
        model.gpt.mel_head.bias[model.args.gpt_stop_audio_token] += stop_bias
    state = {k: v for k, v in model.state_dict().items() if not k.startswith("gpt.gpt_inference")}
    del model
    atomic_torch_save({"model": state}, out / "model.pth")
    del state
    _write_training_files(out, dvae_codes(config.model_args))

    latent = torch.randn(1, 32, model_dim) * 0.1
    embedding = torch.nn.functional.normalize(torch.randn(1, 512, 1), dim=1)
    atomic_torch_save(
        {"Tiny Speaker": {"gpt_cond_latent": latent, "speaker_embedding": embedding}}, out / "speakers_xtts.pth"
    )
    return out


def _write_training_files(out: Path, codes: int) -> None:
    """dvae.pth of the release's shape (its codes from the config) and mel_stats.pth, as the release ships them.

    Training only uses the DVAE's encoder and codebook (audio -> codes), so the file holds those, in fp16."""
    dvae = new_dvae(codes)
    dvae_state = {k: v.half() for k, v in dvae.state_dict().items() if k.split(".")[0] in ("encoder", "codebook")}
    atomic_torch_save(dvae_state, out / "dvae.pth")
    # Per-channel mel normalisation statistics, as in the release's mel_stats.pth.
    atomic_torch_save(torch.full((80,), 1.0) + torch.rand(80), out / "mel_stats.pth")


def make_full_size_xtts(out_dir: str | Path, seed: int = 0, stop_bias: float = STOP_BIAS) -> Path:
    """A random XTTS v2 of the release's full shape (30 x 1024 x 16; ~1.9 GB on disk, as the release)."""
    return make_tiny_xtts(out_dir, seed, stop_bias, **FULL_SHAPE)
