"""Segmentation: pure functions over hand-made word timings, and cuts placed in real silence."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from speech import spoken_recording
from xtts_finetune.dataset.segment import Span, plan_clips


def words_at(spec: str, start: float = 0.0, word: float = 0.3, gap: float = 0.1) -> list[Span]:
    """Words of `spec`, each `word` seconds long with `gap` seconds between them."""
    out, t = [], start
    for w in spec.split():
        out.append(Span(t, t + word, w))
        t += word + gap
    return out


def test_clips_follow_sentence_ends_and_merge_short_ones():
    words = words_at("Hello there, my friend. The weather is lovely today. Yes. Good.")
    clips = plan_clips(words, "en")
    assert [c.text for c in clips] == ["Hello there, my friend.", "The weather is lovely today. Yes. Good."]
    assert all(c.rejected is None for c in clips)
    assert clips[0].start == pytest.approx(0.0) and clips[0].end == pytest.approx(words[3].end + 0.025)


@pytest.mark.parametrize("language,text,expected", [
    ("zh", "今天 天气 很好。 我们 去 公园 吧！ 好的", ["今天天气很好。", "我们去公园吧！", "好的"]),
    ("ja", "今日は いい 天気 です。 散歩 しましょう？ はい", ["今日はいい天気です。", "散歩しましょう？", "はい"]),
    ("am", "ሰላም ነው ወንድሜ። እንዴት ነህ ዛሬ፧", ["ሰላም ነው ወንድሜ።", "እንዴት ነህ ዛሬ፧"]),
    ("hi", "नमस्ते मेरे दोस्त। आप कैसे हैं?", ["नमस्ते मेरे दोस्त।", "आप कैसे हैं?"]),
    ("ar", "كيف حالك يا صديقي؟ أنا بخير", ["كيف حالك يا صديقي؟", "أنا بخير"]),
])
def test_sentence_ends_of_every_script(language, text, expected):
    clips = plan_clips(words_at(text, word=0.5), language, merge_below_seconds=0.5)
    assert [c.text for c in clips] == expected


def test_long_sentence_is_split_at_the_longest_pause_then_commas():
    words = words_at("one two three four five six seven eight nine ten eleven twelve", gap=0.1)
    words += words_at("thirteen fourteen, fifteen sixteen seventeen eighteen nineteen twenty twentyone twentytwo twentythree "
                      "twentyfour twentyfive twentysix twentyseven twentyeight.", start=words[-1].end + 0.8, gap=0.1)
    clips = plan_clips(words, "en", max_seconds=6.0)
    assert all(c.rejected is None and c.duration <= 6.0 for c in clips)
    assert clips[0].text == "one two three four five six seven eight nine ten eleven twelve"  # the 0.8 s pause
    assert clips[1].text.endswith("fourteen,")  # then the comma
    assert " ".join(c.text for c in clips).split() == [w.text for w in words]


def test_clips_outside_the_bounds_are_rejected_with_a_reason():
    words = [Span(0.0, 0.1, "Hm."), Span(3.0, 3.2, "Ok"), Span(8.0, 21.0, "Aaaaah."), Span(30, 30.5, "[music]")]
    clips = plan_clips(words, "en", merge_below_seconds=0)
    assert [c.rejected.split(" (")[0] if c.rejected else None for c in clips] == [
        "too short", "too short", "one word longer than the maximum", "no speech left after cleaning the text"]


def test_unpunctuated_words_split_on_long_pauses():
    words = words_at("alpha beta gamma") + words_at("delta epsilon", start=5.0)
    assert [c.text for c in plan_clips(words, "en")] == ["alpha beta gamma", "delta epsilon"]


def _rms_db(audio, sr, t, half=0.01):
    seg = audio[max(0, int((t - half) * sr)) : int((t + half) * sr)]
    return 10 * np.log10(np.mean(seg.astype(np.float64) ** 2) + 1e-12)


def _assert_cuts_in_silence(clips, layout, audio, sr):
    spans = [(s, e) for sentence in layout for s, e, _ in sentence["words"]]
    for clip in clips:
        for cut in (clip.start, clip.end):
            inside = [(s, e) for s, e in spans if s + 0.005 < cut < e - 0.005]
            assert not inside, f"cut at {cut:.3f} s is inside the word at {inside}"
            assert _rms_db(audio, sr, cut) < -50, f"cut at {cut:.3f} s is not in silence"


def test_cuts_snap_to_silence_despite_wrong_timestamps(tmp_path):
    wav = tmp_path / "rec.wav"
    layout = spoken_recording(wav, ["Hello there, my friend.", "Please read this sentence aloud."], per_word=True)
    audio, sr = sf.read(wav, dtype="float32")
    # ASR-like words: every boundary moved by up to 90 ms and touching neighbours (no gap at all).
    flat = [w for s in layout for w in s["words"]]
    rng = np.random.default_rng(1)
    bounds = [flat[0][0] + 0.09] + [(a[1] + b[0]) / 2 + rng.uniform(-0.04, 0.04) for a, b in zip(flat, flat[1:])]
    bounds += [flat[-1][1] - 0.09]
    words = [Span(bounds[i], bounds[i + 1], w[2]) for i, w in enumerate(flat)]
    clips = plan_clips(words, "en", audio=audio, sample_rate=sr, merge_below_seconds=0)
    assert [c.text for c in clips] == ["Hello there, my friend.", "Please read this sentence aloud."]
    _assert_cuts_in_silence(clips, layout, audio, sr)
    for clip, sentence in zip(clips, layout):  # the clip holds the whole sentence, with a little pad
        assert sentence["start"] - 0.06 <= clip.start <= sentence["start"]  # 30 ms pad + 30 ms of faint sound
        assert sentence["end"] <= clip.end <= sentence["end"] + 0.06


POOL = ("the a voice model learns from every clip we cut, speech timing matters and silence helps; "
        "long recordings become many short sentences while nothing is lost. quiet words stay whole").split()


def test_two_minute_recording_gives_clips_within_bounds_and_no_cut_word(tmp_path):
    rng = np.random.default_rng(7)
    sentences = []
    while len(" ".join(sentences).split()) < 250:
        n = int(rng.choice([2, 5, 9, 14, 30]))  # some sentences run far past the 11.6 s limit
        sentences.append(" ".join(rng.choice(POOL, n)).rstrip(".,;").capitalize() + ".")
    wav = tmp_path / "long.wav"
    layout = spoken_recording(wav, sentences, per_word=True)
    audio, sr = sf.read(wav, dtype="float32")
    assert len(audio) / sr >= 120
    jitter = np.random.default_rng(3)
    words = [Span(s + jitter.uniform(-0.05, 0.05), e + jitter.uniform(-0.05, 0.05), w)
             for sentence in layout for s, e, w in sentence["words"]]
    clips = plan_clips(words, "en", audio=audio, sample_rate=sr)
    assert len(clips) >= 15
    assert all(c.rejected is None and 0.33 <= c.duration <= 11.6 for c in clips), [(c.duration, c.rejected) for c in clips]
    assert any(c.duration > 8 for c in clips)  # long sentences were split near the limit, not into crumbs
    _assert_cuts_in_silence(clips, layout, audio, sr)
    assert " ".join(c.text for c in clips).split() == [w.text for w in words]  # every word in exactly one clip
    assert all(a.end <= b.start for a, b in zip(clips, clips[1:]))
