"""Audio identity: landmark (spectral-peak pair) fingerprints, after Wang (2003), "An Industrial-Strength Audio
Search Algorithm" (the scheme of Shazam, audfprint and dejavu). Pure: samples in, hashes out.

Why written here: Chromaprint's Python bindings (pyacoustid) need the ``fpcalc`` binary or libchromaprint,
which no wheel ships, and the landmark packages on PyPI are single-release projects. The scheme fits in this
file on numpy and scipy.

How it works:
1. Audio is resampled to 8 kHz and cut into 64 ms Hann windows every 32 ms; log magnitudes in dB full scale.
2. Peaks: spectrogram cells that are the maximum of their neighbourhood (about 300 Hz x 0.35 s), above an
   absolute floor (so silence and hiss give none), at most ``PEAKS_PER_SECOND`` of the strongest per second.
3. Landmarks: each peak (anchor) is paired with the next ``FAN_OUT`` peaks in a target zone after it; the hash
   packs (anchor frequency, frequency difference, time difference) into 21 bits; the anchor's frame is kept.
4. Matching: two recordings of the same audio share many hashes *at one consistent time offset*; the score
   is the number of shared hashes agreeing on the most common offset (within one frame).

Why it is robust: lossy codecs keep the strongest peaks; a change of volume adds a constant to a log spectrum,
which moves no local maximum; an offset changes absolute times only, and hashes hold time differences.
Distinct audio, speech included, shares only chance hashes, which scatter over offsets, so a different track
never reaches ``MIN_MATCHES``; silence yields no landmarks at all, so silent videos never form a sound.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = [
    "Alignment", "Fingerprint", "align", "fingerprint", "is_same_audio",
]

RATE = 8_000
N_FFT = 512  # 64 ms
HOP = 256  # 32 ms
FRAME_S = HOP / RATE
MIN_BIN, MAX_BIN = 3, 255  # about 50 Hz .. 4 kHz: below is hum, the top bin does not fit the hash
NEIGHBOURHOOD = (19, 11)  # (frequency bins, frames) a peak must dominate
PEAK_FLOOR_DB = -60.0  # a peak quieter than this (dB full scale) is not a landmark: silence, hiss
SILENCE_DB = -55.0  # whole-track RMS below this: silent
PEAKS_PER_SECOND = 24
FAN_OUT = 6
MAX_DT = 63  # frames (2 s) of the target zone; 6 bits
MAX_DF = 63  # bins either side; 7 bits with the sign
MIN_LANDMARKS = 40  # fewer than this: too little sound to identify (a click, a cough)
MIN_MATCHES = 20  # aligned shared hashes that make two recordings the same audio
MIN_MATCH_FRACTION = 0.03  # ... and at least this share of the smaller fingerprint's hashes


@dataclass(frozen=True)
class Fingerprint:
    """Landmark hashes (uint32, 21 bits used) and their anchor frames (int32), sorted by hash."""

    hashes: np.ndarray
    times: np.ndarray
    seconds: float
    status: str  # ok | silent | too_little

    def __len__(self) -> int:
        return int(self.hashes.shape[0])

    @property
    def identifiable(self) -> bool:
        return self.status == "ok"

    def save(self, path: str | os.PathLike) -> None:
        np.savez(path, hashes=self.hashes, times=self.times,
                 meta=np.array([self.seconds], dtype=np.float64), status=np.array(self.status))

    @classmethod
    def load(cls, path: str | os.PathLike) -> Fingerprint:
        with np.load(Path(path), allow_pickle=False) as data:
            return cls(hashes=data["hashes"].astype(np.uint32), times=data["times"].astype(np.int32),
                       seconds=float(data["meta"][0]), status=str(data["status"]))


@dataclass(frozen=True)
class Alignment:
    """How well a query lines up with a reference: aligned shared hashes and the reference's offset."""

    matches: int
    offset_s: float  # where the query starts in the reference (negative: the query starts earlier)


def _spectrogram_db(samples: np.ndarray, sample_rate: int) -> np.ndarray:
    audio = np.asarray(samples, dtype=np.float64)
    if sample_rate != RATE:
        from scipy.signal import resample_poly  # here: scipy.signal costs a second of every app start-up

        g = np.gcd(int(sample_rate), RATE)
        audio = resample_poly(audio, RATE // g, int(sample_rate) // g)
    if audio.shape[0] < N_FFT:
        return np.zeros((N_FFT // 2 + 1, 0))
    window = np.hanning(N_FFT)
    frames = np.lib.stride_tricks.sliding_window_view(audio, N_FFT)[::HOP] * window
    magnitude = np.abs(np.fft.rfft(frames, axis=1)) / (window.sum() / 2)  # a full-scale sine reads 0 dB
    return (20 * np.log10(magnitude + 1e-10)).T  # (bins, frames)


def _peaks(spec: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(frames, bins) of the landmark peaks, in time order."""
    from scipy.ndimage import maximum_filter  # here, as resample_poly

    band = spec[MIN_BIN:MAX_BIN + 1]
    is_peak = (band == maximum_filter(band, size=NEIGHBOURHOOD, mode="constant", cval=-np.inf))
    is_peak &= band > PEAK_FLOOR_DB
    bins, frames = np.nonzero(is_peak)
    strength = band[bins, frames]
    bins = bins + MIN_BIN
    # The strongest few per second, so that loud, busy audio does not swamp the index.
    per_block = max(1, int(round(PEAKS_PER_SECOND * FRAME_S * 32)))
    keep = np.zeros(frames.shape[0], dtype=bool)
    block = frames // 32
    order = np.lexsort((-strength, block))
    sorted_blocks = block[order]
    starts = np.searchsorted(sorted_blocks, sorted_blocks, side="left")
    rank = np.arange(order.shape[0]) - starts
    keep[order[rank < per_block]] = True
    frames, bins = frames[keep], bins[keep]
    by_time = np.lexsort((bins, frames))
    return frames[by_time], bins[by_time]


def fingerprint(samples: np.ndarray, sample_rate: int = 16_000) -> Fingerprint:
    """The landmark fingerprint of mono samples in [-1, 1]."""
    samples = np.asarray(samples, dtype=np.float32).reshape(-1)
    seconds = samples.shape[0] / float(sample_rate) if sample_rate else 0.0
    empty = np.zeros(0, dtype=np.uint32), np.zeros(0, dtype=np.int32)
    rms = float(np.sqrt(np.mean(np.square(samples, dtype=np.float64)))) if samples.size else 0.0
    if rms <= 10 ** (SILENCE_DB / 20):
        return Fingerprint(*empty, seconds=seconds, status="silent")
    frames, bins = _peaks(_spectrogram_db(samples, sample_rate))
    anchors: list[np.ndarray] = []
    targets: list[np.ndarray] = []
    n = frames.shape[0]
    for step in range(1, min(FAN_OUT * 4, n - 1) + 1):  # look a few peaks ahead for the target zone
        dt = frames[step:] - frames[:-step]
        df = bins[step:] - bins[:-step]
        ok = np.nonzero((dt >= 1) & (dt <= MAX_DT) & (np.abs(df) <= MAX_DF))[0]
        anchors.append(ok)
        targets.append(ok + step)
    if anchors:
        anchor, target = np.concatenate(anchors), np.concatenate(targets)
        # The FAN_OUT nearest targets of each anchor (generated in order of distance).
        order = np.lexsort((target, anchor))
        anchor, target = anchor[order], target[order]
        rank = np.arange(anchor.shape[0]) - np.searchsorted(anchor, anchor, side="left")
        anchor, target = anchor[rank < FAN_OUT], target[rank < FAN_OUT]
        packed = ((bins[anchor].astype(np.int64) << 13) | ((bins[target] - bins[anchor] + MAX_DF + 1) << 6)
                  | (frames[target] - frames[anchor]))
        pairs = np.unique(np.stack([packed, frames[anchor].astype(np.int64)], axis=1), axis=0)
    else:
        pairs = np.zeros((0, 2), dtype=np.int64)
    status = "ok" if pairs.shape[0] >= MIN_LANDMARKS else "too_little"
    return Fingerprint(hashes=pairs[:, 0].astype(np.uint32), times=pairs[:, 1].astype(np.int32),
                       seconds=seconds, status=status)


def align(query: Fingerprint, ref_hashes: np.ndarray, ref_times: np.ndarray) -> Alignment:
    """Line the query up against one reference's (hash, time) landmarks."""
    if len(query) == 0 or ref_hashes.size == 0:
        return Alignment(0, 0.0)
    order = np.argsort(ref_hashes, kind="stable")
    ref_h, ref_t = ref_hashes[order].astype(np.int64), ref_times[order].astype(np.int64)
    q_h, q_t = query.hashes.astype(np.int64), query.times.astype(np.int64)
    lo = np.searchsorted(ref_h, q_h, side="left")
    hi = np.searchsorted(ref_h, q_h, side="right")
    counts = hi - lo
    if counts.sum() == 0:
        return Alignment(0, 0.0)
    q_idx = np.repeat(np.arange(q_h.shape[0]), counts)
    # For each query hash, the positions lo..hi-1 of its equals in the reference.
    within = np.arange(q_idx.shape[0]) - np.repeat(np.cumsum(counts) - counts, counts)
    r_idx = np.repeat(lo, counts) + within
    offsets = ref_t[r_idx] - q_t[q_idx]
    base = offsets.min()
    histogram = np.bincount(offsets - base)
    # Offsets that are not a multiple of the hop land peaks in neighbouring frames: count +-1 frame together.
    smoothed = np.convolve(histogram, np.ones(3, dtype=np.int64), mode="same")
    best = int(np.argmax(smoothed))
    return Alignment(matches=int(smoothed[best]), offset_s=round(float((best + base) * FRAME_S), 3))


def is_same_audio(alignment: Alignment, query: Fingerprint, reference_size: int) -> bool:
    """Whether an alignment is strong enough to call query and reference one sound."""
    smaller = max(1, min(len(query), int(reference_size)))
    return alignment.matches >= MIN_MATCHES and alignment.matches >= MIN_MATCH_FRACTION * smaller
