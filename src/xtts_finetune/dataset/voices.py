"""Who speaks when, and which clips are the wanted voice.

The transcript's words are grouped into phrases (runs with no pause of `PAUSE_SECONDS` or more:
voices take turns at pauses), each phrase is embedded whole (`voice_encoder.GE2EEncoder`), and the
phrases are clustered into voices (agglomerative, cosine, average linkage: the number of voices is not
known in advance). Runs of phrases of one voice are planned into clips on their own, so no clip holds
two voices. Each clip is then embedded and compared with the wanted voice (a reference recording, or
the voice that speaks most): below `threshold` it is left out with its similarity as the reason.
Thresholds are calibrated on real speech (LibriSpeech test-other, README "Voices").
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np

from xtts_finetune.dataset.segment import Clip, Span
from xtts_finetune.errors import UserError
from xtts_finetune.evaluate.speaker import SpeakerEmbedder

DEFAULT_THRESHOLD = 0.75  # same speaker >= 0.74 on every LibriSpeech pair, another speaker above it on 0.4%
CLUSTER_SIMILARITY = 0.70  # phrases are shorter than utterances: they join a voice at a lower similarity
PAUSE_SECONDS = 0.25  # a gap between words this long may be a change of voice
VOICES_FILE = "voices.json"  # in WORKSPACE/dataset: the voices --diarize has named
RELIABLE_SECONDS = 1.0  # phrases shorter than this are too short to cluster: they take the nearest voice


@dataclass
class Phrase:
    start: float
    end: float
    words: list
    vector: Optional[np.ndarray] = None
    voice: int = 0


def unit(vector: np.ndarray) -> np.ndarray:
    return vector / max(float(np.linalg.norm(vector)), 1e-12)


def phrases(words: Sequence, pause: float = PAUSE_SECONDS) -> list[Phrase]:
    """Words in runs without a pause of `pause` seconds or more."""
    out: list[Phrase] = []
    for word in words:
        if out and word.start - out[-1].end < pause:
            out[-1].words.append(word)
            out[-1].end = max(out[-1].end, word.end)
        else:
            out.append(Phrase(word.start, word.end, [word]))
    return out


def cluster(vectors: np.ndarray, similarity: float = CLUSTER_SIMILARITY) -> np.ndarray:
    """A voice label per vector, 0, 1, ... in order of first appearance."""
    if len(vectors) < 2:
        return np.zeros(len(vectors), dtype=int)
    from scipy.cluster.hierarchy import fcluster, linkage  # scipy's, not scikit-learn's: the same, a lighter import

    labels = fcluster(linkage(vectors, method="average", metric="cosine"), t=1 - similarity, criterion="distance")
    order = {label: n for n, label in enumerate(dict.fromkeys(labels))}
    return np.array([order[label] for label in labels])


def assign_voices(found: list[Phrase], encoder, audio: np.ndarray, rate: int) -> list[np.ndarray]:
    """Embed each phrase, cluster the reliable ones, give the short ones the nearest voice; voice centroids."""
    for p in found:
        p.vector = encoder.embed(audio[int(p.start * rate) : int(np.ceil(p.end * rate))], rate)
    reliable = [p for p in found if p.end - p.start >= RELIABLE_SECONDS] or found
    labels = cluster(np.stack([p.vector for p in reliable])) if reliable else []
    for p, label in zip(reliable, labels):
        p.voice = int(label)
    centroids = [unit(np.mean([p.vector for p in reliable if p.voice == v], axis=0)) for v in range(max(labels, default=-1) + 1)]
    for p in found:
        if p not in reliable and centroids:
            p.voice = int(np.argmax([float(p.vector @ c) for c in centroids]))
    return centroids


def voice_runs(found: list[Phrase]) -> list[tuple[int, list]]:
    """Consecutive phrases of one voice joined: (voice, words)."""
    runs: list[tuple[int, list]] = []
    for p in found:
        if runs and runs[-1][0] == p.voice:
            runs[-1][1].extend(p.words)
        else:
            runs.append((p.voice, list(p.words)))
    return runs


def spoken_seconds(found: list[Phrase]) -> dict[int, float]:
    out: dict[int, float] = {}
    for p in found:
        out[p.voice] = out.get(p.voice, 0.0) + p.end - p.start
    return out


@dataclass
class VoiceMap:
    """Voices `--diarize` has named in this dataset (kept in dataset/voices.json), so a voice met again, in a
    later piece, source or run, gets the same name (speaker_N, or what `dataset rename-speaker` made of it),
    and a new one the next number."""

    centroids: list[np.ndarray] = field(default_factory=list)
    names: list[str] = field(default_factory=list)
    taken: set[str] = field(default_factory=set)  # names the dataset already gives other voices (--speaker)

    def match(self, centroid: np.ndarray, threshold: float) -> str:
        """The name of the known voice this centroid is (similarity >= threshold), or of a new one."""
        sims = [float(centroid @ c) for c in self.centroids]
        if sims and max(sims) >= threshold:
            return self.names[int(np.argmax(sims))]
        self.centroids.append(centroid)
        number = len(self.centroids)
        while f"speaker_{number}" in self.names or f"speaker_{number}" in self.taken:  # after a rename, or --speaker
            number += 1
        self.names.append(f"speaker_{number}")
        return self.names[-1]

    def rename(self, old: str, new: str) -> bool:
        """Call voice `old` by `new` from now on; False if `old` is not a voice of this map."""
        found = old in self.names
        self.names = [new if name == old else name for name in self.names]
        return found

    @classmethod
    def load(cls, path: Path) -> "VoiceMap":
        if not path.is_file():
            return cls()
        try:
            voices = json.loads(path.read_text(encoding="utf-8"))["voices"]
            return cls([unit(np.asarray(v["centroid"], dtype=np.float32)) for v in voices],
                       [str(v.get("name") or f"speaker_{n + 1}") for n, v in enumerate(voices)])
        except (ValueError, KeyError, TypeError, AttributeError) as err:
            raise UserError(f"{path} is damaged ({err})", fix="delete it: --diarize then names voices from speaker_1 again") from err

    def save(self, path: Path) -> None:
        from xtts_finetune.utils import atomic_write_text

        voices = [{"name": name, "centroid": [round(float(x), 5) for x in c]} for name, c in zip(self.names, self.centroids)]
        atomic_write_text(path, json.dumps({"encoder": "ge2e", "voices": voices}))


@dataclass
class VoiceFilter:
    """How a run picks voices: keep one voice (a reference, or each source's main one), and/or name them all."""

    reference: Optional[np.ndarray] = None  # embedding of --speaker-reference
    main_speaker: bool = False
    diarize: bool = False
    threshold: float = DEFAULT_THRESHOLD
    encoder: Optional[SpeakerEmbedder] = None  # the dataset stage's GE2E (voice_encoder.py)
    known: VoiceMap = field(default_factory=VoiceMap)  # voices met in this run, for --diarize names
    wanted: Optional[np.ndarray] = None  # the current source's main voice (--main-speaker), from its first piece

    @property
    def active(self) -> bool:
        return self.reference is not None or self.main_speaker or self.diarize

    def new_source(self) -> None:
        self.wanted = self.reference

    def verdict(self, similarity: float) -> Optional[str]:
        """Why a clip is left out, or None when it is the wanted voice."""
        if similarity >= self.threshold:
            return None
        return f"another voice: similarity {similarity:.2f} below {self.threshold:.2f}"

    def plan(self, words: Sequence, audio: np.ndarray, rate: int, plan_clips: Callable) -> list[VoicedClip]:
        """Clips planned inside each voice's turns, each judged against the wanted voice and named by voice.

        `plan_clips(words, audio)` plans clips of words timed in that audio (the stretch of one turn)."""
        found = phrases(words)
        centroids = assign_voices(found, self.encoder, audio, rate)
        if self.main_speaker and self.wanted is None and centroids:
            spoken = spoken_seconds(found)
            self.wanted = centroids[max(spoken, key=spoken.get)]
        names = {v: self.known.match(c, self.threshold) for v, c in enumerate(centroids)} if self.diarize else {}
        out = []
        for voice, lo, hi, run in _windows(voice_runs(found), len(audio) / rate):
            window = audio[int(lo * rate) : int(round(hi * rate))]
            for clip in plan_clips([Span(w.start - lo, w.end - lo, w.text) for w in run], window):
                clip.start, clip.end = clip.start + lo, clip.end + lo
                out.append(self.judge(clip, audio[int(clip.start * rate) : int(round(clip.end * rate))], rate, names.get(voice)))
        return out

    def judge(self, clip: Clip, audio: np.ndarray, rate: int, speaker: Optional[str] = None) -> VoicedClip:
        """The clip (its `audio`) compared with the wanted voice, if there is one: left out when below the threshold."""
        judged = VoicedClip(clip, speaker)
        if self.wanted is not None and not clip.rejected:
            judged.similarity = round(float(self.encoder.embed(audio, rate) @ self.wanted), 3)
            clip.rejected = self.verdict(judged.similarity)
        return judged


def _windows(runs: list[tuple[int, list]], duration: float) -> list[tuple[int, float, float, list]]:
    """Each run with the stretch of audio it may be cut from: up to half-way to its neighbours' words."""
    out = []
    for n, (voice, words) in enumerate(runs):
        lo = (runs[n - 1][1][-1].end + words[0].start) / 2 if n else 0.0
        hi = (words[-1].end + runs[n + 1][1][0].start) / 2 if n + 1 < len(runs) else duration
        out.append((voice, lo, hi, words))
    return out


@dataclass
class VoicedClip:
    clip: Clip
    speaker: Optional[str] = None  # speaker_N with --diarize
    similarity: Optional[float] = None  # to the wanted voice


@dataclass
class Separation:
    """Same-speaker and other-speaker similarities of a set of labelled embeddings: how to set the threshold."""

    same: np.ndarray
    other: np.ndarray

    @classmethod
    def of(cls, vectors: np.ndarray, speakers: Sequence[str]) -> "Separation":
        labels = np.asarray(speakers)
        sims = vectors @ vectors.T
        pairs = labels[:, None] == labels[None]
        return cls(sims[pairs & ~np.eye(len(labels), dtype=bool)], sims[~pairs])

    def errors(self, threshold: float) -> tuple[float, float]:
        """(share of same-speaker pairs below the threshold, share of other-speaker pairs at or above it)."""
        return float((self.same < threshold).mean()), float((self.other >= threshold).mean())


def check_threshold(threshold: float) -> float:
    if not 0 < threshold < 1:
        raise UserError(f"voice threshold {threshold} must be between 0 and 1",
                        fix=f"e.g. --voice-threshold {DEFAULT_THRESHOLD} (higher keeps fewer, surer clips)")
    return threshold
