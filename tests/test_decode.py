"""Our decoding engine against coqui's, on the tiny model: same greedy codes, same audio, ending right, batching."""

from __future__ import annotations

import copy
import shutil

import numpy as np
import pytest
import torch
from torch.nn.utils.parametrize import is_parametrized

from xtts_finetune.decode import GptDecoder, Row, code_cap
from xtts_finetune.devices import choose_precision, precision_for
from xtts_finetune.errors import UserError
from xtts_finetune.synthesis import FADE_SECONDS, SpeechRequest, Synthesizer, _load_model, trim_trailing_silence
from xtts_finetune.vocoder import BlockVocoder

TEXTS = ["hello there, my friend.", "the weather is lovely today, is it not?", "hi."]
STREAM_TOLERANCE = 0.05  # streamed audio vs coqui's inference_stream: RMS difference / RMS, fades excluded


def _model_with_stop_bias(src, dst, delta: float):
    """A copy of the tiny model whose stop token is `delta` less likely (the tiny model's is +1, STOP_BIAS)."""
    dst.mkdir(parents=True)
    for name in ("config.json", "vocab.json", "speakers_xtts.pth"):
        shutil.copy2(src / name, dst / name)
    state = torch.load(src / "model.pth", map_location="cpu", weights_only=True)
    state["model"]["gpt.mel_head.bias"][-1] += delta  # the stop token is the last audio token
    torch.save(state, dst / "model.pth")
    return dst


@pytest.fixture(scope="module")
def talker(tiny_xtts, tmp_path_factory):
    """Greedy decoding of this copy says ~20 codes, then stop (the original stops after 4)."""
    folder = _model_with_stop_bias(tiny_xtts, tmp_path_factory.mktemp("talker") / "xtts", -1.0)
    return Synthesizer(folder, device="cpu", latents_cache_dir=tmp_path_factory.mktemp("latents"))


@pytest.fixture(scope="module")
def voice(talker):
    return tuple(talker.speakers["Tiny Speaker"].values())


def test_greedy_codes_equal_coquis_and_latents_come_from_the_same_pass(talker, voice):
    xtts, (latent, embedding) = talker.model, voice
    rows = [Row(talker.decoder.prefix(latent, xtts.tokenizer.encode(t, lang="en")), 600, top_k=1) for t in TEXTS]
    ours = talker.decoder.complete(rows)  # the three sentences as one batch, of different lengths
    for b, text in enumerate(TEXTS):
        tokens = torch.IntTensor(xtts.tokenizer.encode(text, lang="en"))[None]
        with torch.inference_mode():  # exactly the call Xtts.inference makes
            codes = xtts.gpt.generate(cond_latents=latent, text_inputs=tokens, do_sample=True, top_k=1, top_p=0.85,
                                      temperature=0.75, num_return_sequences=1, num_beams=1, length_penalty=1.0,
                                      repetition_penalty=10.0, output_attentions=False)[0]
        assert len(codes) > 4 and codes[-1] == xtts.gpt.stop_audio_token
        assert torch.equal(ours[b][0], codes)
        reference = xtts.inference(text, "en", latent, embedding, top_k=1)  # its latents: a second GPT pass
        assert np.allclose(ours[b][1].numpy(), reference["gpt_latents"][0], atol=1e-4)


def test_spoken_and_streamed_audio_match_coquis(talker, voice, monkeypatch):
    # Coqui's own copy, as coqui loads it: its vocoder recomputes weight norm each call; ours has it folded.
    xtts, (latent, embedding) = _load_model(talker.model_dir, "cpu")[1], voice
    assert is_parametrized(xtts.hifigan_decoder.waveform_decoder.ups[0])
    assert not is_parametrized(talker.model.hifigan_decoder.waveform_decoder.ups[0])
    text = TEXTS[1]
    whole = xtts.inference(text, "en", latent, embedding, top_k=1)["wav"]
    ours = talker.speak(text, "en", voice="Tiny Speaker", top_k=1)
    fade = int(FADE_SECONDS * talker.sample_rate)
    n = len(ours)
    assert len(whole) - talker.samples_per_code <= n <= len(whole)  # at most a code's worth of silence trimmed
    assert np.abs(ours[fade:n - fade] - whole[fade:n - fade]).max() <= 1e-4 * np.abs(whole).max()

    monkeypatch.setattr(talker, "stream_chunk_codes", 4)
    chunks = list(talker.stream(text, "en", voice="Tiny Speaker", top_k=1))
    assert len(chunks) >= 2  # a block of 4 codes, then the rest
    with torch.inference_mode():
        theirs = torch.cat(list(xtts.inference_stream(text, "en", latent, embedding, stream_chunk_size=4, top_k=1))).numpy()
    streamed = np.concatenate(chunks)
    n = min(len(streamed), len(theirs))
    diff = streamed[fade:n - fade] - theirs[fade:n - fade]
    assert np.sqrt(np.mean(diff**2)) <= STREAM_TOLERANCE * np.sqrt(np.mean(theirs**2))


def test_half_precision_decodes_on_cast_copies_and_leaves_coquis_model_in_fp32(talker, voice):
    # The GPU path (fp16 weights), run on the CPU: coqui's modules keep their fp32 weights, so its own
    # inference still works on the same model, and the fp16 copies say what fp32 says (greedy, to fp16 error).
    gpt, (latent, _) = talker.model.gpt, voice
    before = {k: v.clone() for k, v in gpt.state_dict().items()}
    half = GptDecoder(gpt, dtype=torch.float16)
    tokens = talker.model.tokenizer.encode(TEXTS[0], lang="en")
    [fp16] = half.complete([Row(half.prefix(latent, tokens), 40, top_k=1)])
    [fp32] = talker.decoder.complete([Row(talker.decoder.prefix(latent, tokens), 40, top_k=1)])
    assert all(v.dtype == before[k].dtype and torch.equal(v, before[k]) for k, v in gpt.state_dict().items())
    assert half.own["blocks"][0].attn.c_attn.weight.dtype == torch.float16
    n = min(len(fp16[0]), len(fp32[0]), 4)
    assert torch.equal(fp16[0][:n], fp32[0][:n])
    assert np.allclose(fp16[1][:n].numpy(), fp32[1][:n].numpy(), atol=0.05)


def test_a_gpt_that_never_stops_ends_at_a_cap_proportional_to_the_text(tiny_xtts, tmp_path):
    folder = _model_with_stop_bias(tiny_xtts, tmp_path / "xtts", -1e4)  # stop is never sampled
    synth = Synthesizer(folder, device="cpu", latents_cache_dir=tmp_path / "latents")
    spoken = {}
    for text in ("Hi.", "Hello there, my friend."):
        before = synth.stats.codes
        spoken[text] = synth.speak(text, "en", voice="Tiny Speaker", seed=1)
        cap = code_cap(text, synth.decoder.model_cap)
        assert synth.stats.codes - before == cap < synth.decoder.model_cap
        assert len(spoken[text]) <= cap * synth.samples_per_code + 1
    assert code_cap("Hi.", 600) < code_cap("Hello there, my friend.", 600) < 4 * len("Hello there, my friend.") + 30
    assert len(spoken["Hi."]) < len(spoken["Hello there, my friend."])


def test_trailing_silence_is_trimmed_and_speech_kept():
    sound = np.sin(np.arange(4800, dtype=np.float32) / 5)
    wav = np.concatenate([sound, np.full(9600, 1e-4, dtype=np.float32)])
    trimmed = trim_trailing_silence(wav, peak=1.0, keep=2400)
    last_loud = np.flatnonzero(np.abs(sound) > 0.01)[-1]  # 1% of the peak
    assert last_loud > 4790 and len(trimmed) == last_loud + 1 + 2400
    assert np.array_equal(trimmed[:4800], sound)
    assert len(trim_trailing_silence(sound, peak=1.0, keep=2400)) == len(sound)  # nothing quiet: nothing cut


def test_sentences_batched_together_say_what_they_say_alone(tiny_export, tmp_path):
    synth = Synthesizer(tiny_export, device="cpu", latents_cache_dir=tmp_path)
    text = "Hello there. Lovely day. Fun to build!"  # short: each sentence's audio is decoded five times
    request = synth.prepare(text, "en", "Tiny Speaker", seed=5)
    together = np.concatenate(list(synth.generate(request, stream=False)))
    synth.max_batch = 1
    alone = np.concatenate(list(synth.generate(request, stream=False)))
    assert len(together) == len(alone) and np.allclose(together, alone, atol=1e-5)
    # Two requests at once: each gets its own chunks, in order, as if it were alone.
    synth.max_batch = 8
    other = synth.prepare("Fine?", "en", "ref_a", seed=9)
    got: dict[int, list] = {0: [], 1: []}
    for index, chunk in synth.generate_many([request, other]):
        got[index].append(chunk)
    assert got[0][-1] is None and got[1][-1] is None  # each request's end is said
    streamed_alone = [np.concatenate(list(synth.generate(r))) for r in (request, other)]
    for i in (0, 1):
        assert np.allclose(np.concatenate(got[i][:-1]), streamed_alone[i], atol=1e-5)
    # A request arriving while the first is being spoken joins the batch in flight, and is not changed by it.
    arrivals, order = [[], [other]], []
    for index, chunk in synth.generate_many([request], incoming=lambda: arrivals.pop() if arrivals else []):
        order.append((index, chunk))
    ends = [i for i, c in order if c is None]
    assert ends == [1, 0]  # the short one ended first: its sentence was vocoded before the long one's next
    for i in (0, 1):
        joined = np.concatenate([c for j, c in order if j == i and c is not None])
        assert np.allclose(joined, streamed_alone[i], atol=1e-5)


def test_rows_join_a_batch_in_flight_and_decode_as_alone(talker, voice):
    """Continuous batching: a row added while others decode is prefilled into the cache slots before the
    batch's next one; a shorter prefix joins at the next report, a longer one when it fits."""
    latent = voice[0]

    def row(text, seed):
        tokens = talker.model.tokenizer.encode(text, lang="en")
        return Row(talker.decoder.prefix(latent, tokens), 60, seed=seed, key=text)

    first, short, long = row(TEXTS[1], 1), row(TEXTS[2], 2), row(TEXTS[1] + " " + TEXTS[0], 3)
    assert len(short.prefix) < len(first.prefix) < len(long.prefix)
    alone = {r.key: talker.decoder.complete([r])[0] for r in (first, short, long)}
    added, done, in_flight_with = [[long, short]], {}, set()
    for progress in talker.decoder.generate([first], more=lambda: added.pop() if added else []):
        if first.key in progress.finished:
            in_flight_with |= set(progress.finished) - {first.key}
        done.update({k: (progress.codes[k].clone(), progress.latents[k].clone())
                     for k, f in progress.finished.items() if f})
    assert short.key in in_flight_with  # joined while the first was still decoding
    for key, (codes, latents) in alone.items():
        assert torch.equal(done[key][0], codes) and torch.allclose(done[key][1], latents, atol=1e-5)


def test_a_bf16_vocoder_copy_sounds_like_fp32_and_leaves_coquis_in_fp32(talker, voice):
    # The GPU's half-precision vocoder path (`--precision bf16`), run on the CPU.
    latent, embedding = voice
    tokens = talker.model.tokenizer.encode(TEXTS[1], lang="en")
    [(_, latents)] = talker.decoder.complete([Row(talker.decoder.prefix(latent, tokens), 40, top_k=1)])
    fp32 = talker.vocoder.block(latents, 0, len(latents), None, embedding, 1.0, last=True)[0]
    bf16 = BlockVocoder(talker.model.hifigan_decoder, "cpu", torch.bfloat16).block(latents, 0, len(latents), None,
                                                                                  embedding, 1.0, last=True)[0]
    assert all(p.dtype == torch.float32 for p in talker.model.hifigan_decoder.parameters())
    snr = 10 * np.log10(np.mean(fp32**2) / np.mean((bf16 - fp32) ** 2))
    assert len(bf16) == len(fp32) and snr > 30  # measured ~46 dB on random weights


def test_precision_is_chosen_by_compute_capability_and_a_slow_one_refused(tiny_xtts):
    # Speaking asks devices.py, as training does: `auto` is bf16 where the GPU has it natively (Ampere on),
    # fp16 where fp16 is fast, fp32 on other GPUs and on a CPU (a GPU's `auto` used to be fp16 everywhere).
    assert precision_for("auto", "cpu") == "fp32" and precision_for("fp32", "cpu") == "fp32"
    assert choose_precision("auto", (8, 0)) == "bf16" and choose_precision("auto", (7, 5)) == "fp16"
    assert choose_precision("auto", (6, 1)) == "fp32" and choose_precision("fp32", (9, 0)) == "fp32"
    with pytest.raises(UserError, match="no native bf16"):
        choose_precision("bf16", (7, 5))  # a T4 would emulate it
    for slower in ("fp16", "bf16"):  # measured slower than fp32 on a CPU, even one with AMX
        with pytest.raises(UserError, match="slower than fp32 on a CPU") as err:
            Synthesizer(tiny_xtts, device="cpu", precision=slower)  # refused before the model loads
        assert "--precision auto" in err.value.fix
    with pytest.raises(UserError, match="unknown precision"):
        Synthesizer(tiny_xtts, device="cpu", precision="int4")


def test_bad_sampling_settings_are_refused_before_decoding(talker, voice):
    # On a GPU a top_k of 0 indexed -1: a device-side assert that left the process unable to compute.
    prefix = talker.decoder.prefix(voice[0], talker.model.tokenizer.encode(TEXTS[2], lang="en"))
    bad = dict(top_k=[0, -3, 2.5], temperature=[0.0, float("nan")], top_p=[0.0, 1.5], repetition_penalty=[0.0],
               max_codes=[0])
    for name, values in bad.items():
        for value in values:
            with pytest.raises(UserError, match=f"{name} must be"):
                Row(prefix, **{"max_codes": 12, name: value})
    # A request built by hand through the Python API, past `prepare`'s checks, is refused the same way.
    request = SpeechRequest(["Hello there."], "en", "Tiny Speaker", {"top_k": 0}, seed=1)
    with pytest.raises(UserError, match="top_k must be"):
        list(talker.generate(request))


def test_the_code_cap_follows_the_script_so_cjk_sentences_are_not_cut_short(talker):
    # At a normal pace a hanzi takes ~5.4 codes (20 take ~107), a hangul syllable ~4, a kana ~3, a letter
    # ~1.4; the cap leaves room for a slow speaker (2x) in every script, and stays within the model's own.
    normal_pace = {"我们今天下午一起去公园散步看花听鸟叫吧呀": 5.4, "오늘은날씨가정말좋아서공원에산책하러갔어": 4.0,
                   "きょうはとてもいいてんきですねさんぽしよ": 3.0, "the weather is fine.": 1.4}
    for text, codes in normal_pace.items():
        assert len(text) == 20 and code_cap(text, 10_000) >= 2 * codes * len(text), text
    assert code_cap("我" * 200, 250) == 250
    # The model's cap is what coqui's GPT derives from the config's gpt_max_audio_tokens, never assumed.
    assert talker.decoder.model_cap == talker.model.gpt.max_gen_mel_tokens < talker.config.model_args.gpt_max_audio_tokens


def test_the_kv_cache_is_allocated_once_per_batch_shape_not_at_every_join(talker, voice):
    gpt = copy.deepcopy(talker.model.gpt)
    gpt.mel_head.bias.data[gpt.stop_audio_token] -= 1e4  # never says stop: the batch grows by a row at each join
    decoder = GptDecoder(gpt)  # a cache of its own, empty
    tokens = talker.model.tokenizer.encode(TEXTS[2], lang="en")
    rows = [Row(decoder.prefix(voice[0], tokens), 32, seed=s) for s in range(8)]

    def run() -> list[int]:
        feed, pointers = rows[1:], []
        for _ in decoder.generate(rows[:1], more=lambda: [feed.pop(0)] if feed else []):
            pointers.append(decoder.cache.k.data_ptr())  # 7 joins, one at each report
        return pointers

    first = run()
    moves = sum(a != b for a, b in zip(first, first[1:]))  # a new storage while the old one is still alive
    assert len(first) >= 10 and moves <= 3  # grown geometrically to 2, 4, 8 rows (it was at each of the 7 joins)
    assert decoder.cache.allocations == moves + 1
    again = run()  # the same batch shape: not one allocation
    assert set(again) == {first[-1]} and decoder.cache.allocations == moves + 1


def test_a_batch_that_never_empties_keeps_its_cache_small(talker, voice):
    tokens = talker.model.tokenizer.encode(TEXTS[2], lang="en")
    rows = [Row(talker.decoder.prefix(voice[0], tokens), 12, seed=s) for s in range(12)]  # 12 codes at most
    feed, slots, finished = rows[1:], [], 0
    for progress in talker.decoder.generate(rows[:1], more=lambda: [feed.pop(0)] if feed else []):
        slots.append(progress.slots)
        finished += sum(progress.finished.values())
    # One row joins at each report, so the batch runs ~50 steps without emptying; the slots no row attends
    # to any more are dropped, so the cache holds about a prefix and the longest row in flight.
    assert finished == 12 and len(slots) >= 12
    assert max(slots) <= len(rows[0].prefix) + 2 * (12 + talker.decoder.sync_every)


def test_a_cancelled_request_leaves_the_batch_and_the_others_go_on(talker):
    long = talker.prepare("One. Two. Three. Four. Five.", "en", "Tiny Speaker", seed=1)
    short = talker.prepare("Hello there, my friend.", "en", "Tiny Speaker", seed=2)
    gone, got, before = set(), {0: [], 1: []}, talker.stats.sentences
    for index, chunk in talker.generate_many([long, short], max_batch=2, cancelled=gone.__contains__):
        got[index].append(chunk)
        if index == 0:
            gone.add(0)  # the client left after its first chunk
    assert got[0][-1] is None and sum(c is None for c in got[0]) == 1 and len(got[0]) <= 3  # ended at the next report
    assert talker.stats.sentences - before <= 3  # its other sentences were never decoded
    alone = np.concatenate(list(talker.generate(short)))
    assert got[1][-1] is None and np.allclose(np.concatenate(got[1][:-1]), alone, atol=1e-5)


def test_the_release_token_layout_is_read_from_the_model_not_assumed():
    # The release's GPT has 1026 audio tokens (start 1024, stop 1025), not coqui's default 8194: a small
    # random GPT of that layout decodes the greedy codes coqui's own generate gives.
    from TTS.tts.layers.xtts.gpt import GPT

    torch.manual_seed(0)
    gpt = GPT(layers=1, model_dim=64, heads=2, max_text_tokens=402, max_mel_tokens=40, number_text_tokens=300,
              num_audio_tokens=1026, start_audio_token=1024, stop_audio_token=1025, use_perceiver_resampler=True).eval()
    gpt.init_gpt_for_inference(kv_cache=True)
    decoder, cond, tokens = GptDecoder(gpt), torch.randn(1, 32, 64), [5, 17, 42, 99, 7]
    assert (decoder.start, decoder.stop, decoder.gpt.num_audio_tokens) == (1024, 1025, 1026)
    [(ours, _)] = decoder.complete([Row(decoder.prefix(cond, tokens), decoder.model_cap, top_k=1)])
    with torch.inference_mode():
        theirs = gpt.generate(cond_latents=cond, text_inputs=torch.IntTensor(tokens)[None], do_sample=True, top_k=1,
                              top_p=0.85, temperature=0.75, num_return_sequences=1, num_beams=1, length_penalty=1.0,
                              repetition_penalty=10.0, output_attentions=False)[0]  # at most 37 codes
    n = min(len(ours), len(theirs))
    assert n >= 8 and torch.equal(ours[:n], theirs[:n]) and int(ours.max()) <= 1025
