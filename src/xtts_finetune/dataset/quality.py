"""How clean a clip is: estimated signal-to-noise ratio, clipped samples, loudness, and a flag for music
or heavy noise under the speech, so bad clips can be found and left out before training.

SNR is estimated from the clip's own 10 ms frames: speech is its loud frames (95th percentile of
energy), noise its quiet ones (10th percentile: the pauses between words). A clip whose quiet frames
are loud is noisy; whether that sound is noise or music is told by its spectral flatness (noise is flat,
music is made of tones). Loudness is ITU-R BS.1770-4 integrated loudness (LUFS, the EBU R128 measure)
through pyloudnorm.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from xtts_finetune.dataset.segment import frame_energy_db

NOISY_SNR_DB = 15.0  # below this the noise is plainly audible under speech
MUSIC_FLATNESS = 0.25  # quiet frames this tonal (flatness below) hold music or tones, not noise
FULL_SCALE = 0.999  # a sample this close to full scale, beside another, is clipped


@dataclass
class ClipQuality:
    snr: float  # dB, estimated
    clipped: int  # samples at full scale in runs of two or more
    lufs: Optional[float]  # integrated loudness; None for clips too short to gate (< 0.4 s) or silent
    flag: Optional[str] = None  # why the clip may be unfit: music or heavy noise under the speech


def clipped_samples(audio: np.ndarray) -> int:
    """Samples at full scale whose neighbour is too: a flattened peak, not one loud sample."""
    high = np.abs(audio) >= FULL_SCALE
    return int((high & (np.roll(high, 1) | np.roll(high, -1))).sum()) if len(audio) > 1 else 0


def snr_db(audio: np.ndarray, rate: int) -> float:
    energy = frame_energy_db(audio, rate)
    if len(energy) < 4:
        return 0.0
    return float(np.percentile(energy, 95) - np.percentile(energy, 10))


def loudness(audio: np.ndarray, rate: int) -> Optional[float]:
    import pyloudnorm

    if len(audio) < int(0.4 * rate):  # BS.1770 gates 400 ms blocks: a shorter clip has no measure
        return None
    value = pyloudnorm.Meter(rate).integrated_loudness(np.asarray(audio, dtype=np.float64))
    return None if not np.isfinite(value) else round(float(value), 1)


def quiet_flatness(audio: np.ndarray, rate: int) -> float:
    """Spectral flatness (geometric over arithmetic mean of power) of the clip's quietest quarter of frames."""
    frame = int(0.032 * rate)
    if len(audio) < 4 * frame:
        return 1.0
    frames = np.lib.stride_tricks.sliding_window_view(audio, frame)[:: frame // 2]
    power = np.abs(np.fft.rfft(frames * np.hanning(frame), axis=1)) ** 2 + 1e-12
    quiet = power[np.argsort(power.sum(axis=1))[: max(1, len(power) // 4)]]
    return float(np.mean(np.exp(np.log(quiet).mean(axis=1)) / quiet.mean(axis=1)))


def measure(audio: np.ndarray, rate: int) -> ClipQuality:
    snr = round(snr_db(audio, rate), 1)
    quality = ClipQuality(snr, clipped_samples(audio), loudness(audio, rate))
    if snr < NOISY_SNR_DB:
        kind = "music or tones" if quiet_flatness(audio, rate) < MUSIC_FLATNESS else "heavy noise"
        quality.flag = f"{kind} under the speech (SNR {snr:.0f} dB)"
    return quality


@dataclass
class Limits:
    """What the user will not train on; None leaves a measure unchecked."""

    snr_below: Optional[float] = None
    clipped_above: Optional[int] = None
    lufs_below: Optional[float] = None
    lufs_above: Optional[float] = None
    cer_above: Optional[float] = None
    flagged: bool = False  # music or heavy noise
    suspect: bool = False  # `dataset verify` heard other words (its own CER threshold)

    def reason(self, seg) -> Optional[str]:
        """Why a measured clip falls outside the limits, or None."""
        checks = [
            (self.snr_below is not None and seg.snr is not None and seg.snr < self.snr_below, f"SNR {seg.snr} dB below {self.snr_below}"),
            (self.clipped_above is not None and (seg.clipped or 0) > self.clipped_above, f"{seg.clipped} clipped samples"),
            (self.lufs_below is not None and seg.lufs is not None and seg.lufs < self.lufs_below, f"{seg.lufs} LUFS below {self.lufs_below}"),
            (self.lufs_above is not None and seg.lufs is not None and seg.lufs > self.lufs_above, f"{seg.lufs} LUFS above {self.lufs_above}"),
            (self.cer_above is not None and seg.cer is not None and seg.cer > self.cer_above, f"CER {seg.cer} above {self.cer_above}"),
            (self.flagged and bool(seg.quality), str(seg.quality)),
            (self.suspect and bool(seg.suspect), f"suspect: {seg.suspect}"),
        ]
        return "; ".join(why for hit, why in checks if hit) or None


SUSPECT = Limits(clipped_above=0, flagged=True, suspect=True)  # what `dataset list --suspect` and the UI's filter show


def is_suspect(seg) -> bool:
    """Worth a look before training: Whisper heard other words, music or noise under it, or clipped peaks."""
    return SUSPECT.reason(seg) is not None


def exclude_by(workspace, limits: Limits) -> list[tuple[str, str]]:
    """Exclude every usable clip outside `limits`, in one manifest write; (id, why) of each."""
    from xtts_finetune.dataset.manifest import load_manifest, save_manifest

    manifest = load_manifest(workspace)
    hits = [(seg, limits.reason(seg)) for seg in manifest.segments if seg.active]
    hits = [(seg, why) for seg, why in hits if why]
    for seg, _ in hits:
        seg.excluded, seg.edited = True, True
    if hits:
        save_manifest(workspace, manifest)
    return [(seg.id, why) for seg, why in hits]
