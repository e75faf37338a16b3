"""A tiny Whisper in faster-whisper's format (CTranslate2), with the release's vocabulary layout.

The folder holds what a `Systran/faster-whisper-*` repository ships (model.bin, config.json,
vocabulary, tokenizer.json, preprocessor_config.json), so the transcription code path runs on it
unchanged, offline and in seconds on a CPU.

A random decoder would babble until the 448-token limit, so the output layer is wired as a
bigram chain instead: whatever the audio, each 30 s window decodes to
`<|0.00|> hello, this tiny model knows nothing.<|1.00|><|1.00|> it speaks words at random!<|2.00|>`
and language detection says English. Word times come from real cross-attention alignment (DTW)
over the audio, so they are valid but not meaningful.
"""

from __future__ import annotations

import itertools
import json
import shutil
import tempfile
from pathlib import Path

import torch

from xtts_finetune.utils import atomic_write_text

# Whisper's language tokens, in the order of its vocabulary (token ids 50259 onwards).
WHISPER_LANGUAGES = (
    "en zh de es ru ko fr ja pt tr pl ca nl ar sv it id hi fi vi he uk el ms cs ro da hu ta no th ur hr bg "
    "lt la mi ml cy sk te fa lv bn sr az sl kn et mk br eu is hy ne mn bs kk sq sw gl mr pa si km sn yo so "
    "af oc ka be tg sd gu am yi lo uz fo ht ps tk nn mt sa lb my bo tl mg as tt haw ln ha ba jw su yue"
).split()
TASK_TOKENS = [
    "<|translate|>", "<|transcribe|>", "<|startoflm|>", "<|startofprev|>", "<|nospeech|>", "<|notimestamps|>",
]
TEXT_VOCAB_SIZE = 50257  # GPT-2's byte-level vocabulary; <|endoftext|> follows it
TIMESTAMPS = [f"<|{i * 0.02:.2f}|>" for i in range(1501)]  # 0.00 .. 30.00 s

SENTENCES = (" hello, this tiny model knows nothing.", " it speaks words at random!")
CHAIN_LOGIT = 20.0  # wired next-token logit; random ones are ~0.2, 1501 timestamps sum to ~7.5

_CORPUS = """\
hello, this tiny model knows nothing. it speaks words at random! hello this tiny model knows nothing
it speaks words at random. the quick brown fox jumps over the lazy dog; a voice is a gift, and speech
is its song. she sells sea shells by the sea shore? numbers like one, two, three and four are read aloud.
à á â ã ä å æ ç è é ê ë ì í î ï ñ ò ó ô õ ö ø ù ú û ü ý ÿ ß œ ą ć ę ł ń ś ź ż č ř š ž ğ ı ş ő ű
0 1 2 3 4 5 6 7 8 9 ' " - : ( ) % & + = / @ # $ * , . ! ? ; ¿ ¡ « » 你好 こんにちは 안녕하세요 привет مرحبا नमस्ते
"""


def build_tokenizer(path: Path):
    """Write a Whisper-layout `tokenizer.json`: 50257 byte-level BPE text tokens, then the special tokens."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=600, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False
    )
    tokenizer.train_from_iterator(_CORPUS.splitlines(), trainer=trainer)

    # Pad the vocabulary with pronounceable pseudo-words (never produced by encoding, but they
    # decode to text) so every special token sits at the id it has in a real Whisper checkpoint.
    data = json.loads(tokenizer.to_str())
    vocab = data["model"]["vocab"]
    syllables = [c + v for c in "bdfgklmnprstvz" for v in "aeiou"]
    fillers = ("Ġ" + "".join(parts) for n in (2, 3) for parts in itertools.product(syllables, repeat=n))
    for word in fillers:
        if len(vocab) == TEXT_VOCAB_SIZE - 1:
            break
        vocab.setdefault(word, len(vocab))
    # OpenAI's multilingual vocabulary has an empty-string token; CTranslate2 tells a multilingual
    # Whisper from an English-only one by it.
    vocab[""] = TEXT_VOCAB_SIZE - 1
    tokenizer = Tokenizer.from_str(json.dumps(data))

    special = ["<|endoftext|>", "<|startoftranscript|>", *(f"<|{code}|>" for code in WHISPER_LANGUAGES), *TASK_TOKENS]
    tokenizer.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in special])
    tokenizer.add_tokens([AddedToken(t, special=False, normalized=False) for t in TIMESTAMPS])
    assert tokenizer.token_to_id("<|endoftext|>") == TEXT_VOCAB_SIZE
    assert tokenizer.get_vocab_size() == TEXT_VOCAB_SIZE + len(special) + len(TIMESTAMPS) == 51866
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, tokenizer.to_str())
    return tokenizer


def _chain(tokenizer) -> list[tuple[int, int, float]]:
    """The wired transitions (previous token, next token, logit)."""
    ids = tokenizer.token_to_id
    first, second = (tokenizer.encode(s).ids for s in SENTENCES)
    assert len({*first, *second}) == len(first) + len(second), "a bigram chain needs distinct tokens"
    links = [("<|startoftranscript|>", "<|en|>"), ("<|transcribe|>", "<|0.00|>")]
    links += [("<|0.00|>", first[0]), ("<|notimestamps|>", first[0])]  # timestamped decoding; alignment
    links += itertools.pairwise([*first, "<|1.00|>"])
    links += itertools.pairwise(["<|1.00|>", *second, "<|2.00|>", "<|endoftext|>"])
    chain = [(prev, nxt, CHAIN_LOGIT) for prev, nxt in links]
    chain.append(("<|1.00|>", "<|1.00|>", CHAIN_LOGIT - 1))  # a segment's end, then the next one's start
    chain.append((first[-1], second[0], CHAIN_LOGIT - 2))  # text-only scoring (alignment) skips timestamps
    return [(ids(p) if isinstance(p, str) else p, ids(n) if isinstance(n, str) else n, logit) for p, n, logit in chain]


def _wire_chain(model, tokenizer) -> None:
    """Make the decoder a fixed bigram chain: its output depends only on the previous token.

    With every decoder sub-layer's output and the position embeddings zeroed, the final layer
    norm sees only the previous token's embedding. The chain tokens get orthogonal embeddings,
    and a projection row along a token's embedding makes its successor the next token, with no
    crosstalk: anything off the chain stays improbable, so beam search never ends early.
    """
    decoder = model.model.decoder
    for layer in decoder.layers:
        for linear in (layer.self_attn.out_proj, layer.encoder_attn.out_proj, layer.fc2):
            linear.weight.zero_()
            if linear.bias is not None:
                linear.bias.zero_()
    decoder.embed_positions.weight.zero_()
    chain = _chain(tokenizer)
    prev_ids = sorted({prev for prev, _, _ in chain})
    dim = decoder.embed_tokens.weight.shape[1]
    basis = torch.randn(dim, len(prev_ids))
    basis -= basis.mean(dim=0)  # zero-mean columns: layer norm leaves them as they are
    orthogonal = torch.linalg.qr(basis).Q.T * dim**0.5  # rows: unit variance, mutually orthogonal
    embeddings = torch.randn_like(decoder.embed_tokens.weight)
    embeddings[prev_ids] = orthogonal
    decoder.embed_tokens.weight.copy_(embeddings)
    normed = torch.nn.functional.layer_norm(embeddings, (dim,))
    projection = model.proj_out.weight
    projection.copy_(torch.randn_like(projection) * 0.02)
    for prev, nxt, logit in chain:
        projection[nxt] += normed[prev] * (logit / dim)


def _save_transformers_checkpoint(folder: Path) -> None:
    """A random Whisper as a Transformers checkpoint, with a real one's generation settings."""
    from transformers import (
        GenerationConfig, PreTrainedTokenizerFast, WhisperConfig, WhisperFeatureExtractor,
        WhisperForConditionalGeneration,
    )

    tokenizer = build_tokenizer(folder / "tokenizer.json")
    ids = tokenizer.token_to_id
    eot, sot = ids("<|endoftext|>"), ids("<|startoftranscript|>")
    suppress_at_start = [ids("Ġ"), eot]
    config = WhisperConfig(
        vocab_size=tokenizer.get_vocab_size(), num_mel_bins=80, d_model=64,
        encoder_layers=2, encoder_attention_heads=4, encoder_ffn_dim=256,
        decoder_layers=2, decoder_attention_heads=4, decoder_ffn_dim=256,
        max_source_positions=1500, max_target_positions=448, tie_word_embeddings=False,
        pad_token_id=eot, bos_token_id=eot, eos_token_id=eot, decoder_start_token_id=sot,
        begin_suppress_tokens=suppress_at_start, suppress_tokens=[],
    )
    model = WhisperForConditionalGeneration(config).eval()
    with torch.no_grad():
        _wire_chain(model, tokenizer)
    model.generation_config = GenerationConfig(
        decoder_start_token_id=sot, bos_token_id=eot, eos_token_id=eot, pad_token_id=eot,
        max_length=448, is_multilingual=True, return_timestamps=False,
        lang_to_id={f"<|{code}|>": ids(f"<|{code}|>") for code in WHISPER_LANGUAGES},
        task_to_id={"transcribe": ids("<|transcribe|>"), "translate": ids("<|translate|>")},
        no_timestamps_token_id=ids("<|notimestamps|>"), prev_sot_token_id=ids("<|startofprev|>"),
        max_initial_timestamp_index=50, begin_suppress_tokens=suppress_at_start, suppress_tokens=[],
        alignment_heads=[[1, head] for head in range(4)],  # the last layer's heads time the words
    )
    model.save_pretrained(folder)
    PreTrainedTokenizerFast(
        tokenizer_file=str(folder / "tokenizer.json"), bos_token="<|endoftext|>", eos_token="<|endoftext|>",
        unk_token="<|endoftext|>", pad_token="<|endoftext|>",
    ).save_pretrained(folder)
    WhisperFeatureExtractor(feature_size=80).save_pretrained(folder)  # preprocessor_config.json


def make_tiny_whisper(out_dir: str | Path, seed: int = 0, quantization: str = "int8") -> Path:
    """Write a tiny faster-whisper model folder to `out_dir` and return it."""
    from ctranslate2.converters import TransformersConverter
    from transformers.utils import logging as transformers_logging

    out = Path(out_dir)
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    bars = transformers_logging.is_progress_bar_enabled()
    transformers_logging.disable_progress_bar()
    try:
        with tempfile.TemporaryDirectory(prefix="tiny_whisper_hf_") as hf, \
                tempfile.TemporaryDirectory(prefix=f".{out.name}.", dir=out.parent) as staging:
            _save_transformers_checkpoint(Path(hf))
            converted = Path(staging) / "model"
            converter = TransformersConverter(hf, copy_files=["tokenizer.json", "preprocessor_config.json"])
            converter.convert(str(converted), quantization=quantization)
            # Swap the finished folder in: a half-written one is never loaded.
            if out.exists():
                shutil.rmtree(out)
            converted.rename(out)
    finally:
        if bars:
            transformers_logging.enable_progress_bar()
    return out
