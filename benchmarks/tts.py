"""The shipped voice against its teacher (flite slt), espeak-ng and flite kal16, side by side on
the same unseen sentences: synthesis real-time factor, intelligibility and robustness.

    pip install -e ".[bench]"          # PocketSphinx, the second listener
    python benchmarks/tts.py --json bench-tts.json

    # a quick look at a voice of your own, keeping the audio
    python benchmarks/tts.py --model exp/tacotron/best.pt --limit 5 --threads 1 \
        --save-audio /tmp/bench-tts

The sentences are the lines of ``benchmarks/data/tts_sentences.txt``: 62 test sentences of the
synthetic corpus that neither the voice nor the recognizer trained on, 12 of them 30-40 words
long (two or three sentences joined with "and"; its header says how they were chosen and
checked). Each is normalised (``speechseq.text.normalize_text``), and every system speaks that
text, one sentence at a time, one system after another:

- ``speechseq``: ``speechseq.tts.speaker.Speaker`` on --model (default: the shipped voice) in this
  process, seed 0, its vocoder included (--vocoder to choose); start-up = loading the checkpoint
  and vocoder (torch already imported).
- ``flite-slt`` (the teacher): the voice the model learned from, called as the recipe's
  ``local/make_voice.py`` calls it: ``flite -voice slt --setf duration_stretch=1.000 -t TEXT -o
  OUT.wav`` on the normalised text. (The recipe's sox step leaves slt's 16 kHz mono 16-bit
  output as it is, so it is left out.)
- ``espeak-ng``: ``espeak-ng -v en -w OUT.wav TEXT``, its default English voice (22.05 kHz).
- ``flite-kal16`` (and ``flite-awb`` with ``--references``): called like the teacher.

Speed: each sentence is timed from text in to waveform in memory (speechseq) or written to a
file (the command-line synthesizers: one process per sentence, start-up included). RTF = seconds
/ seconds of audio produced, over all sentences. Every system first speaks one untimed sentence
that is not in the set, so that none pays for cold caches.

Intelligibility: the shipped character recognizer ``asr-char.pt`` (the default recognizer when
the published figures were measured; --recognizer for another; greedy decoding) and PocketSphinx
(its en-us model, fed 16 kHz int16 whole utterances, as in ``benchmarks/asr.py``) transcribe every
system's audio, resampled to their rate; corpus WER and CER against the normalised sentence. The
recognizer was trained on the synthetic corpus, whose voices include flite slt, kal16 and awb
and espeak-ng's ``en`` accent (other variants of it): it knows every reference voice, and
PocketSphinx is the listener from outside.

Stages (``--stages``): where the voice loses to its teacher, stage by stage, each row heard by
both listeners like the others:

1. the teacher's audio (``flite-slt``);
2. Griffin-Lim on the teacher's own mels (copy synthesis, the voice's feature settings);
3. the neural vocoder on the teacher's own mels (if the voice has one, or ``--vocoder FILE``);
4. the acoustic model + Griffin-Lim (``speechseq + griffin-lim``);
5. the acoustic model + the neural vocoder (``speechseq``, the voice as it ships);
5b. a duration voice given the teacher's own character durations instead of its predicted ones
   (measured on the teacher's audio by CTC forced alignment with the recognizer, as its training
   durations were), through its vocoder: what of row 5's loss the duration predictor causes and
   what the mel decoder does. Its RTF leaves out the alignment.

and a table of PESQ (wideband), STOI and mel-cepstral distortion of rows 2 and 3 against row 1
(``benchmarks/voice_quality.py``; ``pesq`` and ``pystoi`` are in the bench extra). A copy row's
RTF is the vocoder's alone.

Robustness: the voice says for each sentence whether its stop token ended it or it ran to the
length cap (``Synthesis.stopped``). It says nothing of stopping early (attention that jumps to
the last character skips words, and the stop token may then fire), so "early stops" counts the
sentences the stop token ended that are shorter than 0.6x the teacher's. Durations compared with
the teacher's are of the speech: each waveform with its quiet edges cut as the training audio
was (40 dB below its loudest frame, 50 ms kept), because flite pads with silence that the model
learned without.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import soundfile as sf
import torch
from voice_quality import PESQ_RATE, copy_synthesis, mel_cepstral_distortion, pesq_wb, stoi

from speechseq.asr.decoding import DecoderConfig
from speechseq.asr.transcriber import Transcriber
from speechseq.audio import load_audio, resample, save_audio
from speechseq.checkpoint import load_synthesizer
from speechseq.data.manifest import read_manifest
from speechseq.data.tts import TtsDataset, trim_silence
from speechseq.errors import SpeechseqError
from speechseq.features import FeatureExtractor
from speechseq.metrics import error_counts
from speechseq.pretrained import char_recognizer_path, default_voice_path
from speechseq.text import CharTokenizer, normalize_text
from speechseq.tts.durations import align_corpus, read_durations
from speechseq.tts.speaker import Speaker
from speechseq.tts.vocoder import (
    GRIFFIN_LIM,
    GriffinLimVocoder,
    NeuralVocoder,
    Vocoder,
    choose_vocoder,
)

SENTENCES = Path(__file__).parent / "data" / "tts_sentences.txt"
POCKETSPHINX_RATE = 16000  # the rate of its default en-us acoustic model
LONG_WORDS = 30  # "long" sentences, the robustness figures' hard case
TARGET_CER_RATIO = 1.5  # recognizer CER on the voice / on the teacher
TARGET_RATIO_RANGE = (0.6, 1.6)  # speech duration / the teacher's, every sentence
TARGET_RTF = 0.1  # the voice, vocoder included
TRIM_DB, TRIM_MARGIN, TRIM_HOP = 40.0, 0.05, 0.0125  # as the voice's training data was trimmed
WARM_UP = "this sentence warms the caches up and is not timed"
TEACHER = "flite-slt"
OURS = "speechseq"
COPY = "griffin-lim on the teacher's mels"
NEURAL_COPY = "neural vocoder on the teacher's mels"
WITH_GRIFFIN_LIM = f"{OURS} + griffin-lim"
ON_TEACHER_DURATIONS = f"{OURS} on the teacher's durations"


def _flite(voice: str) -> Callable[[str, str], list[str]]:
    # make_voice.py's command at its neutral prosody (rate 1.0, no pitch shift).
    return lambda text, out: [
        "flite", "-voice", voice, "--setf", "duration_stretch=1.000", "-t", text, "-o", out
    ]  # fmt: skip


COMMANDS: dict[str, Callable[[str, str], list[str]]] = {
    TEACHER: _flite("slt"),
    "espeak-ng": lambda text, out: ["espeak-ng", "-v", "en", "-w", out, text],
    "flite-kal16": _flite("kal16"),
    "flite-awb": _flite("awb"),
}


@dataclass
class SystemRun:
    """One system's pass over the sentences."""

    name: str
    waveforms: list[torch.Tensor]  # each (T,) at sample_rate
    sample_rate: int
    seconds: list[float]  # synthesis wall clock per sentence
    startup_seconds: float | None = None
    stopped: list[bool] | None = None  # speechseq: the stop token ended the sentence
    speech_seconds: list[float] = field(default_factory=list)
    ratios: list[float] = field(default_factory=list)  # speech duration / the teacher's
    hypotheses: dict[str, list[str]] = field(default_factory=dict)  # listener → texts
    counts: dict[str, dict[str, int]] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return f"{self.name} (teacher)" if self.name == TEACHER else self.name

    @property
    def audio_seconds(self) -> list[float]:
        return [w.numel() / self.sample_rate for w in self.waveforms]

    @property
    def rtf(self) -> float:
        return sum(self.seconds) / max(1e-9, sum(self.audio_seconds))

    def rate(self, listener: str, unit: str) -> float | None:
        c = self.counts.get(listener)
        return c[f"{unit}_errors"] / max(1, c[f"{unit}s"]) if c else None

    def early_stops(self) -> list[int]:
        if self.stopped is None:
            return []
        low = TARGET_RATIO_RANGE[0]
        pairs = zip(self.stopped, self.ratios, strict=True)
        return [i for i, (stopped, ratio) in enumerate(pairs) if stopped and ratio < low]


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="RTF, intelligibility and robustness of the shipped voice and reference "
        "synthesizers on the same unseen sentences."
    )
    parser.add_argument(
        "--model", type=Path, default=None, help="Voice checkpoint (default: the shipped voice)."
    )
    parser.add_argument(
        "--recognizer",
        type=Path,
        default=None,
        help="Listener (default: the character recognizer asr-char.pt).",
    )
    parser.add_argument(
        "--sentences", type=Path, default=SENTENCES, help="One sentence a line; # comments."
    )
    parser.add_argument(
        "--references",
        nargs="*",
        default=["espeak-ng", "flite-kal16"],
        choices=sorted(set(COMMANDS) - {TEACHER}),
        help="Synthesizers beside the voice and its teacher (default: espeak-ng flite-kal16).",
    )
    parser.add_argument(
        "--also",
        type=Path,
        nargs="*",
        default=[],
        help="More voice checkpoints in the same run, e.g. an int8 export of --model "
        "(speechseq export voice -o v8.pt --int8): each is a row named after its file.",
    )
    parser.add_argument(
        "--vocoder",
        default=None,
        help="The voice's vocoder: griffin-lim or a vocoder checkpoint (default: the voice's "
        "own: the neural vocoder it carries, else griffin-lim).",
    )
    parser.add_argument(
        "--stages",
        action="store_true",
        help="Also the vocoders alone on the teacher's own mels (copy synthesis: Griffin-Lim, "
        "and the neural vocoder if the voice has one), with PESQ, STOI and mel-cepstral "
        "distortion against the teacher's audio, the voice with Griffin-Lim, and a duration "
        "voice on the teacher's own durations.",
    )
    parser.add_argument("--limit", type=int, default=None, help="Only the first N sentences.")
    parser.add_argument("--threads", type=int, default=None, help="Torch CPU threads.")
    parser.add_argument("--no-pocketsphinx", action="store_true", help="Skip PocketSphinx.")
    parser.add_argument("--save-audio", type=Path, default=None, help="Keep the wavs here.")
    parser.add_argument("--json", type=Path, default=None, help="Write every figure here.")
    return parser


def read_sentences(path: Path) -> list[str]:
    """The normalised non-comment lines of ``path``."""
    if not path.is_file():
        raise SpeechseqError(f"{path}: no such sentence file")
    lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
    sentences = [normalize_text(line) for line in lines if line and not line.startswith("#")]
    return [s for s in sentences if s]


def run_speechseq(
    model: Path, sentences: Sequence[str], name: str = OURS, vocoder: str | None = None
) -> SystemRun:
    started = time.perf_counter()
    speaker = Speaker.from_pretrained(model, device="cpu", seed=0, vocoder=vocoder)
    loaded = time.perf_counter()
    speaker.speak(WARM_UP)
    waveforms, seconds, stopped = [], [], []
    for text in sentences:
        begun = time.perf_counter()
        result = speaker.speak(text)
        seconds.append(time.perf_counter() - begun)
        if len(result.sentences) != 1:  # normalised text under 300 characters: never
            print(f"warning: the voice cut {text!r} into {len(result.sentences)}", file=sys.stderr)
        waveforms.append(result.waveform)
        stopped.append(all(result.stopped))
    return SystemRun(
        name, waveforms, speaker.sample_rate, seconds, loaded - started, stopped=stopped
    )


def neural_vocoder(model: Path, choice: str | None) -> NeuralVocoder | None:
    """The neural vocoder the voice speaks with (its own, or ``choice``), if any."""
    if choice == GRIFFIN_LIM:
        return None
    config, _, state = load_synthesizer(model, int8_kernels=False)[1:]
    if choice is not None:
        return NeuralVocoder.from_file(choice, config)
    return NeuralVocoder.from_file(state["vocoder"], config) if "vocoder" in state else None


def run_copy_synthesis(
    teacher: SystemRun, model: Path, vocoder: Vocoder | None = None, name: str = COPY
) -> SystemRun:
    """A vocoder (default: Griffin-Lim) on the teacher's own mels (the voice's feature
    settings): stages 2 and 3 of the table, the vocoder without the acoustic model."""
    config = load_synthesizer(model, int8_kernels=False)[1]
    vocoder = vocoder or GriffinLimVocoder(config)
    audio = [resample(w, teacher.sample_rate, config.sample_rate) for w in teacher.waveforms]
    copy_synthesis(audio[:1], vocoder, config)  # warm caches
    waveforms, seconds = copy_synthesis(audio, vocoder, config)
    return SystemRun(name, waveforms, config.sample_rate, seconds)


def run_on_teacher_durations(
    teacher: SystemRun,
    sentences: Sequence[str],
    model: Path,
    recognizer: Path,
    vocoder: str | None,
    scratch: Path,
) -> SystemRun | None:
    """Stage 5b: a duration voice's mels on the teacher's character durations (measured as its
    training durations were: trimmed audio, CTC forced alignment with ``recognizer``), through
    its vocoder; None for a voice that does not take durations."""
    voice, features, tokenizer, state = load_synthesizer(model, int8_kernels=False)
    if voice.config.kind != "duration" or not isinstance(tokenizer, CharTokenizer):
        return None
    manifest, durations = scratch / "teacher.jsonl", scratch / "teacher.durations.jsonl"
    lines = []
    for i, (waveform, text) in enumerate(zip(teacher.waveforms, sentences, strict=True)):
        audio = scratch / f"{i:03d}.wav"
        rate = features.sample_rate
        samples = resample(waveform, teacher.sample_rate, rate)
        save_audio(audio, samples, rate)
        seconds = len(samples) / rate
        lines.append(
            json.dumps({"audio": str(audio), "text": normalize_text(text), "duration": seconds})
        )
    manifest.write_text("\n".join(lines) + "\n")
    align_corpus(manifest, durations, recognizer, features, TRIM_DB, TRIM_MARGIN, progress=False)
    char_frames = read_durations(durations)
    dataset = TtsDataset(
        read_manifest(manifest),
        FeatureExtractor(features),
        tokenizer,
        TRIM_DB,
        TRIM_MARGIN,
        char_frames=char_frames,
    )
    chosen = choose_vocoder(vocoder, state, features)
    waveforms, seconds = [], []
    with torch.no_grad():
        for i in range(len(dataset)):
            item = dataset[i]
            if item is None:  # the alignment failed: the sentence is left out of nothing
                raise SpeechseqError(f"sentence {i + 1}: no teacher durations")
            begun = time.perf_counter()
            tokens = item["tokens"][None]  # (1, L)
            mel = voice(
                tokens,
                torch.tensor([tokens.shape[1]]),
                item["mel"][None],
                item["char_frames"][None],
            )[1][0]  # (T, n_mels)
            waveforms.append(chosen(mel))
            seconds.append(time.perf_counter() - begun)
    return SystemRun(ON_TEACHER_DURATIONS, waveforms, features.sample_rate, seconds)


def copy_quality(teacher: SystemRun, copy: SystemRun, model: Path) -> dict:
    """PESQ (wideband), STOI and MCD of copy synthesis against the teacher's audio."""
    config = load_synthesizer(model, int8_kernels=False)[1]
    pairs = [
        (resample(t, teacher.sample_rate, PESQ_RATE), resample(c, copy.sample_rate, PESQ_RATE))
        for t, c in zip(teacher.waveforms, copy.waveforms, strict=True)
    ]
    return {
        "pesq_wb": statistics.mean(pesq_wb(t, c) for t, c in pairs),
        "stoi": statistics.mean(stoi(t, c, PESQ_RATE) for t, c in pairs),
        "mcd_db": statistics.mean(mel_cepstral_distortion(t, c, config) for t, c in pairs),
    }


def print_copy_quality(scores: dict[str, dict]) -> None:
    print("\n| against the teacher's audio | PESQ (wb) | STOI | MCD dB |\n|---|---:|---:|---:|")
    for name, s in scores.items():
        print(f"| {name} | {s['pesq_wb']:.2f} | {s['stoi']:.3f} | {s['mcd_db']:.2f} |")


def _speak(name: str, text: str, out: Path) -> float:
    """Run ``name``'s command for ``text`` into ``out``; returns its wall-clock seconds."""
    command = COMMANDS[name](text, str(out))
    started = time.perf_counter()
    proc = subprocess.run(command, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    if proc.returncode != 0 or not out.is_file():
        tail = " / ".join(proc.stderr.strip().splitlines()[-2:])
        raise SpeechseqError(f"{name}: {command[0]} exited {proc.returncode} on {text!r}: {tail}")
    return seconds


def run_command(name: str, sentences: Sequence[str], scratch: Path) -> SystemRun:
    _speak(name, WARM_UP, scratch / "warm-up.wav")
    waveforms, seconds, rate = [], [], 0
    for i, text in enumerate(sentences):
        out = scratch / f"{i:04d}.wav"
        seconds.append(_speak(name, text, out))
        rate = sf.info(str(out)).samplerate
        waveforms.append(load_audio(out, check_silence=False))  # (T,) at the engine's rate
    return SystemRun(name, waveforms, rate, seconds)


def measure_durations(runs: Sequence[SystemRun]) -> None:
    """Speech seconds of every waveform (quiet edges cut) and their ratio to the teacher's."""
    for run in runs:
        hop, margin = round(TRIM_HOP * run.sample_rate), round(TRIM_MARGIN * run.sample_rate)
        trimmed = [trim_silence(w, TRIM_DB, hop, margin) for w in run.waveforms]
        run.speech_seconds = [t.numel() / run.sample_rate for t in trimmed]
    teacher = next(run for run in runs if run.name == TEACHER)
    for run in runs:
        pairs = zip(run.speech_seconds, teacher.speech_seconds, strict=True)
        run.ratios = [ours / max(1e-9, theirs) for ours, theirs in pairs]


def listen(runs: Sequence[SystemRun], recognizer: Path, pocketsphinx: bool) -> None:
    # greedy: what the voice's audio says, not what a word LM would guess it says
    greedy = DecoderConfig(kind="greedy")
    transcriber = Transcriber.from_pretrained(recognizer, device="cpu", decoding=greedy)
    decoder = None
    if pocketsphinx:
        # optional bench extra
        from pocketsphinx import Decoder  # pyright: ignore[reportMissingImports]

        decoder = Decoder(samprate=POCKETSPHINX_RATE, loglevel="FATAL")
    for run in runs:
        heard = []
        for waveform in run.waveforms:
            audio = resample(waveform, run.sample_rate, transcriber.sample_rate)
            heard.append(transcriber.transcribe_waveforms([audio])[0])
        run.hypotheses["recognizer"] = heard
        if decoder is None:
            continue
        heard = []
        for waveform in run.waveforms:
            audio = resample(waveform, run.sample_rate, POCKETSPHINX_RATE)  # (T,) in [-1, 1]
            pcm = (audio.clamp(-1.0, 1.0) * 32767.0).round().to(torch.int16).numpy().tobytes()
            decoder.start_utt()
            # full_utt: the whole utterance is here, so cepstral mean normalisation sees all of it.
            decoder.process_raw(pcm, full_utt=True)
            decoder.end_utt()
            hyp = decoder.hyp()
            heard.append(hyp.hypstr if hyp is not None else "")
        run.hypotheses["pocketsphinx"] = heard


def score(runs: Sequence[SystemRun], references: Sequence[str]) -> None:
    for run in runs:
        for listener, texts in run.hypotheses.items():
            run.hypotheses[listener] = [normalize_text(t) for t in texts]
            run.counts[listener] = error_counts(references, run.hypotheses[listener])


def _pct(value: float | None) -> str:
    return f"{100 * value:.1f}" if value is not None else "-"


def ratio_stats(ratios: Sequence[float]) -> dict:
    low, high = TARGET_RATIO_RANGE
    return {
        "min": min(ratios),
        "median": statistics.median(ratios),
        "max": max(ratios),
        "outside": sum(not low <= r <= high for r in ratios),
    }


def print_table(runs: Sequence[SystemRun]) -> None:
    print(
        "\n| system | RTF | × real time | start-up s | audio s | recognizer WER % | CER % "
        "| PocketSphinx WER % | CER % | duration / teacher min | median | max "
        "| outside 0.6-1.6 | length-cap hits | early stops |"
    )
    print("|---|" + "---:|" * 14)
    for run in runs:
        stats = ratio_stats(run.ratios)
        startup = f"{run.startup_seconds:.2f}" if run.startup_seconds is not None else "-"
        caps = str(run.stopped.count(False)) if run.stopped is not None else "-"
        early = str(len(run.early_stops())) if run.stopped is not None else "-"
        print(
            f"| {run.label} | {run.rtf:.4f} | {1 / max(1e-9, run.rtf):.1f} | {startup} "
            f"| {sum(run.audio_seconds):.1f} "
            f"| {_pct(run.rate('recognizer', 'word'))} | {_pct(run.rate('recognizer', 'char'))} "
            f"| {_pct(run.rate('pocketsphinx', 'word'))} "
            f"| {_pct(run.rate('pocketsphinx', 'char'))} "
            f"| {stats['min']:.2f} | {stats['median']:.2f} | {stats['max']:.2f} "
            f"| {stats['outside']} | {caps} | {early} |"
        )


def by_length(runs: Sequence[SystemRun], references: Sequence[str]) -> dict[str, dict]:
    """The recognizer's WER and CER on each system's short and long sentences."""
    long = [len(r.split()) >= LONG_WORDS for r in references]
    groups = {
        f"< {LONG_WORDS} words": [i for i, is_long in enumerate(long) if not is_long],
        f"{LONG_WORDS}+ words": [i for i, is_long in enumerate(long) if is_long],
    }
    table = {}
    for run in runs:
        table[run.label] = {}
        for group, idx in groups.items():
            if not idx:
                continue
            heard = run.hypotheses["recognizer"]
            c = error_counts([references[i] for i in idx], [heard[i] for i in idx])
            table[run.label][group] = {
                "sentences": len(idx),
                "wer": c["word_errors"] / max(1, c["words"]),
                "cer": c["char_errors"] / max(1, c["chars"]),
                "duration_ratio": ratio_stats([run.ratios[i] for i in idx]),
            }
    return table


def print_by_length(table: dict[str, dict]) -> None:
    groups = list(next(iter(table.values())))
    print("\n| system (recognizer) | " + " | ".join(f"{g}: WER % | CER %" for g in groups) + " |")
    print("|---|" + "---:|---:|" * len(groups))
    for name, row in table.items():
        cells = " | ".join(f"{_pct(row[g]['wer'])} | {_pct(row[g]['cer'])}" for g in groups)
        print(f"| {name} | {cells} |")


def verdicts(ours: SystemRun, teacher: SystemRun, long_sentences: int) -> dict:
    """The three targets, each with its figures and PASS/FAIL."""
    cer, teacher_cer = ours.rate("recognizer", "char"), teacher.rate("recognizer", "char")
    assert cer is not None and teacher_cer is not None  # listen() and score() ran on both
    assert ours.stopped is not None  # run_speechseq() records it
    stats = ratio_stats(ours.ratios)
    caps, early = ours.stopped.count(False), len(ours.early_stops())
    return {
        "intelligibility": {
            "cer": cer,
            "teacher_cer": teacher_cer,
            "ratio": cer / teacher_cer if teacher_cer > 0 else None,
            "target": TARGET_CER_RATIO,
            "pass": cer <= TARGET_CER_RATIO * teacher_cer,
        },
        "robustness": {
            "sentences": len(ours.ratios),
            "long_sentences": long_sentences,
            "length_cap_hits": caps,
            "early_stops": early,
            "duration_ratio": stats,
            "target_range": list(TARGET_RATIO_RANGE),
            "pass": caps == 0 and early == 0 and stats["outside"] == 0,
        },
        "speed": {"rtf": ours.rtf, "target": TARGET_RTF, "pass": ours.rtf <= TARGET_RTF},
    }


def print_verdicts(v: dict) -> None:
    def mark(ok: bool) -> str:
        return "PASS" if ok else "FAIL"

    i, r, s = v["intelligibility"], v["robustness"], v["speed"]
    shown = f"{i['ratio']:.2f}×" if i["ratio"] is not None else "n/a (teacher CER 0)"
    print(
        f"\nintelligibility: recognizer CER {_pct(i['cer'])} % on {OURS}, "
        f"{_pct(i['teacher_cer'])} % on {TEACHER}: ratio {shown} "
        f"(target ≤ {i['target']}×): {mark(i['pass'])}"
    )
    d, (low, high) = r["duration_ratio"], r["target_range"]
    print(
        f"robustness: of {r['sentences']} sentences ({r['long_sentences']} of {LONG_WORDS}+ "
        f"words), {r['length_cap_hits']} hit the length cap and {r['early_stops']} stopped early "
        f"(target: none); duration / teacher min {d['min']:.2f}, median {d['median']:.2f}, "
        f"max {d['max']:.2f}, {d['outside']} outside {low}-{high}× (target: none): "
        f"{mark(r['pass'])}"
    )
    print(f"speed: {OURS} RTF {s['rtf']:.4f} (target ≤ {s['target']}): {mark(s['pass'])}")


def machine_info() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    def version_line(command: list[str], marker: str) -> str | None:
        """The first line of ``command``'s output holding ``marker``, from it on."""
        try:
            out = subprocess.run(command, capture_output=True, text=True, check=False).stdout
        except OSError:
            return None
        line = next((line for line in out.splitlines() if marker in line), None)
        return line[line.index(marker) :].split("  ")[0].split(" (")[0].strip() if line else None

    try:
        pocketsphinx = version("pocketsphinx")
    except PackageNotFoundError:  # not installed: --no-pocketsphinx
        pocketsphinx = None
    return {
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": sys.version.split()[0],
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "pocketsphinx": pocketsphinx,
        "espeak-ng": version_line(["espeak-ng", "--version"], "eSpeak NG"),
        "flite": version_line(["flite", "--version"], "flite-"),
    }


def _check_tools(names: Sequence[str], pocketsphinx: bool) -> None:
    for name in names:
        program = COMMANDS[name]("", "")[0]
        if shutil.which(program) is None:
            raise SpeechseqError(f"{name}: {program} is not on PATH (apt-get install {program})")
    if pocketsphinx:
        try:
            # optional bench extra
            import pocketsphinx as _  # noqa: F401  # pyright: ignore[reportMissingImports]
        except ImportError:
            raise SpeechseqError(
                'PocketSphinx is not installed: pip install -e ".[bench]" '
                "(or pip install pocketsphinx), or pass --no-pocketsphinx"
            ) from None


def save_all(runs: Sequence[SystemRun], sentences: Sequence[str], out_dir: Path) -> None:
    for run in runs:
        folder = out_dir / run.name
        for i, waveform in enumerate(run.waveforms):
            save_audio(folder / f"{i + 1:04d}.wav", waveform, run.sample_rate)
    (out_dir / "sentences.txt").write_text("\n".join(sentences) + "\n", encoding="utf-8")
    print(f"\naudio: {out_dir}/<system>/NNNN.wav speaks line NNNN of {out_dir}/sentences.txt")


def report(runs: Sequence[SystemRun], sentences: Sequence[str], lengths: dict, v: dict) -> dict:
    systems = {}
    for run in runs:
        systems[run.name] = {
            "sample_rate": run.sample_rate,
            "real_time_factor": run.rtf,
            "times_real_time": 1 / max(1e-9, run.rtf),
            "seconds": sum(run.seconds),
            "startup_seconds": run.startup_seconds,
            "audio_seconds": sum(run.audio_seconds),
            "speech_seconds": sum(run.speech_seconds),
            "duration_ratio": ratio_stats(run.ratios),
            "length_cap_hits": run.stopped.count(False) if run.stopped is not None else None,
            "early_stops": len(run.early_stops()) if run.stopped is not None else None,
            **{
                listener: {
                    "wer": run.rate(listener, "word"),
                    "cer": run.rate(listener, "char"),
                    **counts,
                }
                for listener, counts in run.counts.items()
            },
            "by_length": lengths[run.label],
        }
    per_sentence = []
    for i, text in enumerate(sentences):
        row = {"text": text, "words": len(text.split()), "systems": {}}
        for run in runs:
            row["systems"][run.name] = {
                "seconds": run.seconds[i],
                "audio_seconds": run.audio_seconds[i],
                "speech_seconds": run.speech_seconds[i],
                "duration_ratio": run.ratios[i],
                **({"stopped": run.stopped[i]} if run.stopped is not None else {}),
                **{listener: texts[i] for listener, texts in run.hypotheses.items()},
            }
        per_sentence.append(row)
    return {"systems": systems, "targets": v, "sentences": per_sentence}


def run(args: argparse.Namespace) -> None:
    if args.threads:
        torch.set_num_threads(args.threads)
    sentences = read_sentences(args.sentences)[: args.limit]
    if not sentences:
        raise SpeechseqError(f"{args.sentences}: no sentences")
    model = args.model or default_voice_path()
    recognizer = args.recognizer or char_recognizer_path()
    for path in (model, recognizer):  # before the first long run, not after it
        if not Path(path).is_file():
            raise SpeechseqError(f"{path}: no such checkpoint")
    references = list(dict.fromkeys(args.references))
    _check_tools([TEACHER, *references], not args.no_pocketsphinx)

    machine = machine_info()
    print(
        f"machine: {machine['cpu_count']} CPUs, torch {machine['torch']} "
        f"({machine['torch_threads']} threads), load average {machine['load_average']}, "
        f"python {machine['python']}, pocketsphinx {machine['pocketsphinx']}, "
        f"{machine['flite']}, {machine['espeak-ng']}"
    )
    long_count = sum(len(s.split()) >= LONG_WORDS for s in sentences)
    print(f"voice: {model}\nrecognizer: {recognizer}")
    print(f"sentences: {args.sentences}: {len(sentences)} ({long_count} of {LONG_WORDS}+ words)")

    runs = [run_speechseq(Path(model), sentences, vocoder=args.vocoder)]
    with tempfile.TemporaryDirectory(prefix="bench-tts-") as scratch:
        for name in [TEACHER, *references]:
            folder = Path(scratch) / name
            folder.mkdir()
            runs.append(run_command(name, sentences, folder))
    runs += [run_speechseq(path, sentences, f"{OURS} ({path.name})") for path in args.also]
    copies = []
    if args.stages:
        copies.append(run_copy_synthesis(runs[1], Path(model)))
        neural = neural_vocoder(Path(model), args.vocoder)
        if neural is not None:
            copies.append(run_copy_synthesis(runs[1], Path(model), neural, NEURAL_COPY))
            runs.append(run_speechseq(Path(model), sentences, WITH_GRIFFIN_LIM, GRIFFIN_LIM))
        runs += copies
        with tempfile.TemporaryDirectory(prefix="bench-tts-") as scratch:
            oracle = run_on_teacher_durations(
                runs[1], sentences, Path(model), Path(recognizer), args.vocoder, Path(scratch)
            )
        runs += [oracle] if oracle is not None else []
    measure_durations(runs)
    listen(runs, Path(recognizer), not args.no_pocketsphinx)
    score(runs, sentences)

    print_table(runs)
    quality = {c.name: copy_quality(runs[1], c, Path(model)) for c in copies} or None
    if quality:
        print_copy_quality(quality)
    lengths = by_length(runs, sentences)
    if long_count and long_count < len(sentences):
        print_by_length(lengths)
    ours, teacher = runs[0], runs[1]
    v = verdicts(ours, teacher, long_count)
    print_verdicts(v)
    assert ours.stopped is not None  # run_speechseq() records it
    for i in [i for i, s in enumerate(ours.stopped) if not s] + ours.early_stops():
        kind = "hit the length cap" if not ours.stopped[i] else "stopped early"
        print(f"  {kind}: sentence {i + 1} ({ours.ratios[i]:.2f}× the teacher): {sentences[i]!r}")
    if args.save_audio:
        save_all(runs, sentences, args.save_audio)
    if args.json:
        out = {"machine": machine, "model": str(model), "recognizer": str(recognizer)}
        out |= {"sentence_file": str(args.sentences), "limit": args.limit}
        out["commands"] = {n: COMMANDS[n]("TEXT", "OUT.wav") for n in [TEACHER, *references]}
        out |= report(runs, sentences, lengths, v)
        if quality is not None:
            out["copy_synthesis"] = quality
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(out, indent=2, ensure_ascii=False) + "\n")
        print(f"\nwrote {args.json}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = get_parser()
    args = parser.parse_args(argv)
    if args.limit is not None and args.limit < 1:
        parser.error("--limit must be at least 1")
    try:
        run(args)
    except SpeechseqError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
