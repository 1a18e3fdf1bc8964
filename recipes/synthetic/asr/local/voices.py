"""The voices of the synthetic corpus, and how each one is made to speak.

    python local/voices.py --check data/voice_check     # prepare.sh stage 2: one sentence per voice

Every voice has a stable name (used in file names and manifests), the engine that speaks it, the
engine's own name for it and a role, which says the splits it speaks:

- ``train``: train, dev and test_seen (espeak-ng, flite, festival; Debian main).
- ``extra``: ``train_extra`` only, a second set of train voices from engines in Debian's non-free
  section (SVOX pico, RHVoice's free English voices); the fine-tuning stage adds them.
- ``dev_heldout``: ``dev_heldout`` only, dev sentences spoken by MBROLA voices (through
  espeak-ng). They measure how the recognizer does on voices it never heard without touching
  the test set; MBROLA's licence allows no more than that, so no model trains on them.
- ``test_heldout``: ``test_heldout`` only. Their espeak-ng accent (West Midlands,
  ``en-GB-x-gbcwmd``) and variant (``f4``) occur in no train voice, and ``rms`` and ``ked`` are
  speakers no train voice is built from.

Each utterance also gets a :class:`Prosody` (speaking rate and pitch) drawn from a seeded RNG, so
the same base voice sounds different from one utterance to the next. espeak-ng applies both
itself (``-s``, ``-p``); flite, festival, pico and RHVoice change the rate themselves
(``duration_stretch``, ``Duration_Stretch``, HTS ``-r``, ``<speed level>``, ``-r``) and sox shifts
the pitch. Every file is then converted by sox
to 16 kHz mono 16-bit WAV, with ``-G`` so a pitch shift never clips and ``-R`` so its dither
is the same on every run (without it sox reseeds and no two runs give the same bytes).
"""

from __future__ import annotations

import argparse
import random
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

SAMPLE_RATE = 16000
ENGINES = ("espeak-ng", "flite", "festival", "pico", "rhvoice")
ROLES = ("train", "extra", "dev_heldout", "test_heldout")
# Share of train/dev/test_seen utterances per engine: espeak-ng's 28 voices would otherwise be
# 85 % of the corpus, and its formant speech is the least like the held-out flite/festival voices.
ENGINE_SHARE = {"espeak-ng": 0.5, "flite": 0.3, "festival": 0.2}
SPEED = (0.85, 1.2)  # rate factor, > 1 is faster
PITCH_CENTS = 300  # pitch shift drawn from [-300, +300] cents
ESPEAK_WPM = 175  # espeak-ng's default rate
TIMEOUT = 120  # seconds for one engine call


@dataclass(frozen=True)
class Voice:
    """A base voice.

    Args:
        name: stable name, e.g. ``espeak-en-us-m3``; used in file names.
        engine: ``espeak-ng``, ``flite`` or ``festival``.
        voice: the engine's name for it (``gmw/en-US+m3``, ``slt``, ``kal_diphone``).
        role: ``train``, ``extra``, ``dev_heldout`` or ``test_heldout`` (see the module's doc).
    """

    name: str
    engine: str
    voice: str
    role: str = "train"

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise ValueError(f"{self.name}: role {self.role!r} is not one of {ROLES}")

    @property
    def held_out(self) -> bool:
        """True if it speaks only ``test_heldout``."""
        return self.role == "test_heldout"


@dataclass(frozen=True)
class Prosody:
    """Per-utterance variation: ``speed`` > 1 speaks faster; ``pitch`` in cents."""

    speed: float
    pitch: int

    @classmethod
    def draw(cls, rng: random.Random) -> Prosody:
        return cls(round(rng.uniform(*SPEED), 3), rng.randint(-PITCH_CENTS, PITCH_CENTS))


def _espeak(accent: str, variant: str, role: str = "train") -> Voice:
    # "gmw/en+m3", not "en-gb+m3": espeak-ng silently ignores a variant on the latter.
    return Voice(f"espeak-{accent.lower()}-{variant}", "espeak-ng", f"gmw/{accent}+{variant}", role)


# Train accents each get two male and two female variants; f4 and the West Midlands accent are
# kept for the held-out set.
_TRAIN_ACCENTS = "en en-US en-GB-x-rp en-GB-scotland en-029 en-US-nyc en-GB-x-gbclan".split()
_MALE = ["m1", "m2", "m3", "m4", "m5", "m6", "m7"]
_FEMALE = ["f1", "f2", "f3"]


def _train_variants(i: int) -> list[str]:
    """Variants of the i-th train accent, rotating so every variant is used."""
    return [_MALE[2 * i % 7], _MALE[(2 * i + 1) % 7], _FEMALE[2 * i % 3], _FEMALE[(2 * i + 1) % 3]]


VOICES: list[Voice] = [
    *(
        _espeak(accent, variant)
        for i, accent in enumerate(_TRAIN_ACCENTS)
        for variant in _train_variants(i)
    ),
    Voice("flite-kal16", "flite", "kal16"),
    Voice("flite-awb", "flite", "awb"),
    Voice("flite-slt", "flite", "slt"),
    Voice("festival-kal", "festival", "kal_diphone"),
    Voice("festival-slt-hts", "festival", "cmu_us_slt_arctic_hts"),
    # Extra train voices (fine-tuning): RHVoice's English voices other than its CC-BY-NC-ND
    # ones (evgeniy-eng, lyubov) are LGPL; pico's are Apache-2.0.
    Voice("pico-en-us", "pico", "en-US", "extra"),
    Voice("pico-en-gb", "pico", "en-GB", "extra"),
    Voice("rhvoice-alan", "rhvoice", "alan", "extra"),
    Voice("rhvoice-bdl", "rhvoice", "bdl", "extra"),
    Voice("rhvoice-clb", "rhvoice", "clb", "extra"),
    Voice("rhvoice-slt", "rhvoice", "slt", "extra"),
    # Held-out voices for dev: MBROLA diphone voices, through espeak-ng.
    *(
        Voice(f"mbrola-{v}", "espeak-ng", f"mb-{v}", "dev_heldout")
        for v in "us1 us2 us3 en1".split()
    ),
    # Held out for test.
    _espeak("en-GB-x-gbcwmd", "m4", "test_heldout"),
    _espeak("en-GB-x-gbcwmd", "f2", "test_heldout"),
    _espeak("en-US-nyc", "f4", "test_heldout"),
    Voice("flite-rms", "flite", "rms", "test_heldout"),
    Voice("festival-ked", "festival", "ked_diphone", "test_heldout"),
]
TRAIN_VOICES = [v for v in VOICES if v.role == "train"]
EXTRA_VOICES = [v for v in VOICES if v.role == "extra"]
DEV_HELD_OUT_VOICES = [v for v in VOICES if v.role == "dev_heldout"]
HELD_OUT_VOICES = [v for v in VOICES if v.role == "test_heldout"]
BY_NAME = {v.name: v for v in VOICES}
assert len(BY_NAME) == len(VOICES), "voice names must be unique"

# The corpus's splits, the role of the voices that speak each, and the sentences it reads: the
# two extra splits re-use train's and dev's sentences with other voices.
BASE_SPLITS = ["train", "dev", "test_seen", "test_heldout"]
EXTRA_SPLITS = ["train_extra", "dev_heldout"]
SPLIT_ROLE = {
    "train": "train",
    "dev": "train",
    "test_seen": "train",
    "test_heldout": "test_heldout",
    "train_extra": "extra",
    "dev_heldout": "dev_heldout",
}
SPLIT_TEXT = {"train_extra": "train", "dev_heldout": "dev"}


def split_voices(split: str) -> list[Voice]:
    """The voices that may speak ``split``."""
    return [v for v in VOICES if v.role == SPLIT_ROLE[split]]


def add_splits_option(parser: argparse.ArgumentParser, verb: str) -> None:
    """``--splits``: which splits a stage script works on (default: the base corpus's)."""
    parser.add_argument(
        "--splits",
        nargs="+",
        choices=list(SPLIT_ROLE),
        default=BASE_SPLITS,
        help=f"splits to {verb} (default: the base corpus's)",
    )


def voice_weights(voices: list[Voice]) -> list[float]:
    """Sampling weight of each voice: an engine's share split evenly over its voices."""
    counts = {e: sum(v.engine == e for v in voices) for e in ENGINES}
    return [ENGINE_SHARE[v.engine] / counts[v.engine] for v in voices]


def _sox(raw: Path, out: Path, pitch: int) -> None:
    """Convert ``raw`` to 16 kHz mono 16-bit ``out``, optionally shifting pitch (cents)."""
    effects = ["pitch", str(pitch)] if pitch else []
    cmd = ["sox", "-R", "-G", "-V1", str(raw), "-r", str(SAMPLE_RATE), "-c1", "-b16", str(out)]
    subprocess.run(cmd + effects, check=True, capture_output=True, timeout=TIMEOUT)


def _engine_command(voice: Voice, text: str, prosody: Prosody, raw: Path) -> list[str]:
    if voice.engine == "espeak-ng":
        # -p is espeak's 0-99 pitch scale (50 default); map +-300 cents onto 25-75.
        pitch = round(50 + 25 * prosody.pitch / PITCH_CENTS)
        speed = round(ESPEAK_WPM * prosody.speed)
        options = ["-v", voice.voice, "-s", str(speed), "-p", str(pitch)]
        return ["espeak-ng", *options, "-w", str(raw), text]
    if voice.engine == "flite":
        stretch = f"duration_stretch={1 / prosody.speed:.3f}"
        return ["flite", "-voice", voice.voice, "--setf", stretch, "-t", text, "-o", str(raw)]
    if voice.engine == "pico":
        if "<" in text or ">" in text:
            raise ValueError(f"cannot mark up for pico: {text!r}")
        marked = f"<speed level='{round(100 * prosody.speed)}'>{text}</speed>"
        return ["pico2wave", "-l", voice.voice, "-w", str(raw), marked]
    if voice.engine == "rhvoice":  # reads the text from stdin (see synthesize)
        return [
            "RHVoice-test",
            "-p",
            voice.voice,
            "-r",
            str(round(100 * prosody.speed)),
            "-o",
            str(raw),
        ]
    raise ValueError(f"{voice.engine} has no one-utterance command")


def _festival_script(voice: Voice, jobs: list[tuple[str, Prosody, Path]]) -> str:
    """A Scheme program that speaks every job in one festival process (start-up is ~0.3 s)."""
    hts = voice.voice.endswith("_hts")
    lines = [f"(voice_{voice.voice})"]
    if hts:
        lines.append("(define base_hts_params hts_engine_params)")
    for text, prosody, raw in jobs:
        if '"' in text or "\\" in text:
            raise ValueError(f"cannot quote for festival: {text!r}")
        if hts:  # HTS voices ignore Duration_Stretch; hts_engine's -r sets the rate
            rate = f'(list (list "-r" {prosody.speed}))'
            lines.append(f"(set! hts_engine_params (append base_hts_params {rate}))")
        else:
            lines.append(f"(Parameter.set 'Duration_Stretch {1 / prosody.speed:.3f})")
        lines.append(f'(utt.save.wave (utt.synth (Utterance Text "{text}")) "{raw}" \'riff)')
    return "\n".join(lines) + "\n"


def has_click(audio: np.ndarray) -> bool:
    """True if ``audio`` (float, -1..1) jumps by more than half full scale between two samples
    in an otherwise quiet stretch: a glitch, never speech. festival's diphone voices very rarely
    end a file with one (1 file in ~25,000 here, not reproducible on a rerun)."""
    if len(audio) < 2:
        return False
    jumps = np.abs(np.diff(audio))
    i = int(jumps.argmax())
    around = audio[max(0, i - 800) : max(0, i - 50)]
    return bool(jumps[i] > 0.5 and (len(around) == 0 or np.sqrt(np.mean(around**2)) < 0.01))


def synthesize(
    voice: Voice,
    jobs: list[tuple[str, Prosody, Path]],
    tmp_root: Path | None = None,
    attempts: int = 3,
) -> list[Path]:
    """Speak each ``(text, prosody, out)`` job with ``voice`` into ``out`` (16 kHz WAV).

    Each file is written under a temporary name and renamed, so an interrupted run leaves only
    whole files. Engine output goes to a scratch folder under ``tmp_root`` (default: the system's).
    A file with a click (see :func:`has_click`) is made again, up to ``attempts`` times in all,
    then kept for the manifest stage to drop. Returns the outputs that could not be made.
    """
    failed, clicked = [], []
    with tempfile.TemporaryDirectory(prefix="synth-", dir=tmp_root) as tmp:
        raws = [Path(tmp) / f"{i}.wav" for i in range(len(jobs))]
        if voice.engine == "festival":
            script = Path(tmp) / "batch.scm"
            batch = [(job[0], job[1], raw) for job, raw in zip(jobs, raws, strict=True)]
            script.write_text(_festival_script(voice, batch), encoding="utf-8")
            try:  # a failure shows as missing raw files below
                cmd = ["festival", "-b", str(script)]
                subprocess.run(cmd, capture_output=True, timeout=TIMEOUT * 4)
            except subprocess.TimeoutExpired:
                pass
        for job, raw in zip(jobs, raws, strict=True):
            text, prosody, out = job
            try:
                if voice.engine != "festival":
                    cmd = _engine_command(voice, text, prosody, raw)
                    stdin = text if voice.engine == "rhvoice" else None
                    subprocess.run(
                        cmd,
                        input=stdin,
                        text=True,
                        check=True,
                        capture_output=True,
                        timeout=TIMEOUT,
                    )
                if not raw.is_file() or raw.stat().st_size <= 44:
                    failed.append(out)
                    continue
                pitch = 0 if voice.engine == "espeak-ng" else prosody.pitch
                tmp_out = out.with_name(out.stem + ".tmp.wav")
                _sox(raw, tmp_out, pitch)
                if attempts > 1 and has_click(sf.read(tmp_out, dtype="float32")[0]):
                    tmp_out.unlink()
                    clicked.append(job)
                    continue
                tmp_out.replace(out)
            except (subprocess.CalledProcessError, subprocess.TimeoutExpired):
                failed.append(out)
    if clicked:
        failed += synthesize(voice, clicked, tmp_root, attempts - 1)
    return failed


def check(out_dir: Path, roles: list[str]) -> None:
    """Speak one sentence with every voice of ``roles`` and print its duration and level."""
    out_dir.mkdir(parents=True, exist_ok=True)
    text = "The quick brown fox jumps over the lazy dog, and then it goes home to sleep."
    bad = []
    for voice in (v for v in VOICES if v.role in roles):
        out = out_dir / f"{voice.name}.wav"
        failed = synthesize(voice, [(text, Prosody(1.0, 0), out)])
        if failed:
            bad.append(voice.name)
            print(f"{voice.name:28s} FAILED")
            continue
        audio, rate = sf.read(out)
        rms = float(np.sqrt(np.mean(audio**2)))
        seconds = len(audio) / rate
        ok = rate == SAMPLE_RATE and audio.ndim == 1 and 2.0 < seconds < 8.0 and rms > 0.01
        if not ok:
            bad.append(voice.name)
        print(
            f"{voice.name:28s} {voice.role:12s} {seconds:5.2f} s  rms {rms:.3f}  "
            f"{'ok' if ok else 'BAD'}"
        )
    if bad:
        raise SystemExit(f"voices that did not speak properly: {', '.join(bad)}")
    counts = ", ".join(f"{sum(v.role == r for v in VOICES)} {r}" for r in roles)
    print(f"voices: {counts}; all spoke")


if __name__ == "__main__":
    assert __doc__ is not None  # the module docstring above
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", type=Path, metavar="OUT_DIR", required=True)
    parser.add_argument(
        "--roles",
        nargs="+",
        choices=ROLES,
        default=["train", "test_heldout"],
        help="check the voices of these roles (default: the base corpus's)",
    )
    args = parser.parse_args()
    check(args.check, args.roles)
