"""Subtitle files as people have them: every encoding, every quirk, every dropped cue reported."""

from __future__ import annotations

import codecs

import pytest

from xtts_finetune.dataset.subtitles import read_subtitles
from xtts_finetune.errors import UserError

LEGACY = {  # encoding -> (cue texts); enough text for detection, as any real subtitle file has
    "cp1252": ["Ça va très bien, merci beaucoup.", "Le garçon a mangé une pêche à l'école."],
    "cp1250": ["Příliš žluťoučký kůň úpěl ďábelské ódy.", "Zażółć gęślą jaźń, łódź płynie."],
    "gb2312": ["今天天气很好，我们去公园散步吧。", "这是一个简单的中文字幕文件。"],
    "big5": ["今天天氣很好，我們去公園散步吧。", "這是一個簡單的中文字幕檔案。"],
}


def srt_text(texts):
    return "".join(f"{i}\n00:00:0{2 * i - 1},000 --> 00:00:0{2 * i},500\n{t}\n\n" for i, t in enumerate(texts, 1))


@pytest.mark.parametrize("encoding", list(LEGACY))
def test_legacy_encodings_are_detected_and_named(tmp_path, encoding):
    path = tmp_path / "talk.srt"
    path.write_bytes(srt_text(LEGACY[encoding]).encode(encoding))
    subs = read_subtitles(path)
    assert [c.text for c in subs.cues] == LEGACY[encoding]
    assert subs.encoding not in ("utf-8", "utf-8-sig")  # the report says which encoding was used


@pytest.mark.parametrize("bom,codec", [(codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16-le"),
                                       (codecs.BOM_UTF16_BE, "utf-16-be"), (codecs.BOM_UTF32_LE, "utf-32-le")])
def test_byte_order_marks(tmp_path, bom, codec):
    texts = ["Grüße aus Köln.", "日本語もあります。"]
    path = tmp_path / "talk.srt"
    path.write_bytes(bom + srt_text(texts).replace("\n", "\r\n").encode(codec))
    subs = read_subtitles(path)
    assert [c.text for c in subs.cues] == texts and subs.encoding.startswith("utf-")


def test_quirks_of_real_files(tmp_path):
    path = tmp_path / "talk.srt"
    path.write_text(
        "1\n00:00:01,000 --> 00:00:02,000\nNo blank line after me\n"
        "2\n00:00:02,000 --> 00:00:04,000\nTom &amp; Jerry &lt;3 <i>yes</i>\n"
        "00:00:05 --> 00:00:06\nNo milliseconds\n\n"
        "4\n00:00:07,000 --> 00:00:08,000\n\n"
        "5\n100:00:01,000 --> 100:00:02,500\nA very long film\n\n"
        "6\n00:00:09.5 --> 00:00:10.25 X1:100 X2:200\nFirst\\Nsecond\\hthird\n\n"
        "stray words with no timing\n\n"
        "7\n00:00:12,000 --> 00:00:11,000\nBackwards\n",
        encoding="utf-8")
    subs = read_subtitles(path)
    got = [(c.index, c.start, c.end, c.text) for c in subs.cues]
    assert got == [(1, 1.0, 2.0, "No blank line after me"), (2, 2.0, 4.0, "Tom & Jerry <3 yes"),
                   (3, 5.0, 6.0, "No milliseconds"), (6, 9.5, 10.25, "First\nsecond third"),
                   (5, 360001.0, 360002.5, "A very long film")]
    dropped = "\n".join(subs.dropped)
    assert "talk.srt cue 4 at 7.00 s: no text" in dropped
    assert "talk.srt cue 7 at 12.00 s: ends before it starts" in dropped and "Backwards" in dropped
    assert "line 21: text outside any cue 'stray words with no timing'" in dropped


def test_webvtt_blocks_short_timings_and_tags(tmp_path):
    path = tmp_path / "talk.vtt"
    path.write_text(
        "WEBVTT\nKind: captions\nLanguage: en\n\nNOTE written by hand\n00:00.000 --> 00:01.000 is not a cue here\n\n"
        "STYLE\n::cue { color: yellow }\n\nintro\n00:01.000 --> 00:02.000 align:start position:10%\n"
        "<v.loud Roger>Hello <c.red>there</c> <00:01.500>friend</v>\n"
        "00:02.500 --> 00:03.000\n<ruby>漢<rt>kan</rt></ruby> 2<3,5>1\n", encoding="utf-8")
    subs = read_subtitles(path)
    assert [(c.start, c.end, c.text) for c in subs.cues] == [(1.0, 2.0, "Hello there friend"), (2.5, 3.0, "漢kan 2<3,5>1")]


def test_ass_and_microdvd_through_pysubs2(tmp_path):
    ass = tmp_path / "talk.ass"
    ass.write_text("[Script Info]\nScriptType: v4.00+\n\n[Events]\n"
                   "Format: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, Text\n"
                   "Dialogue: 0,0:00:01.00,0:00:02.50,Default,,0,0,0,,{\\i1}Hello\\Nworld{\\i0} &amp; more\n"
                   "Comment: 0,0:00:03.00,0:00:04.00,Default,,0,0,0,,not spoken\n", encoding="utf-8")
    assert [(c.start, c.end, c.text) for c in read_subtitles(ass).cues] == [(1.0, 2.5, "Hello\nworld & more")]
    sub = tmp_path / "talk.sub"
    sub.write_text("{1}{1}25\n{25}{75}Hello|world\n", encoding="utf-8")
    assert [(c.start, c.end, c.text) for c in read_subtitles(sub).cues] == [(1.0, 3.0, "Hello\nworld")]
    sub.write_text("{25}{75}Hello\n", encoding="utf-8")
    with pytest.raises(UserError, match="talk.sub: a MicroDVD file without its frame rate"):
        read_subtitles(sub)


def test_a_false_byte_order_mark_is_named(tmp_path):
    path = tmp_path / "talk.srt"
    path.write_bytes(codecs.BOM_UTF16_LE + b"\x00\xd8")  # a lone surrogate: not UTF-16 after all
    with pytest.raises(UserError, match="talk.srt: starts with a utf-16 byte order mark but is not utf-16"):
        read_subtitles(path)
