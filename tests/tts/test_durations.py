"""Tests for speechseq.tts.durations: TTS frames per character from CTC forced alignment."""

from __future__ import annotations

import json
import random
import shutil
from dataclasses import replace

import pytest
import torch

from speechseq.asr.alignment import word_timings
from speechseq.asr.decoding import DecoderConfig
from speechseq.asr.transcriber import Transcriber
from speechseq.checkpoint import asr_state, save_checkpoint
from speechseq.data import TtsDataset, Utterance, read_manifest, write_manifest
from speechseq.errors import SpeechseqError
from speechseq.features import FeatureConfig, FeatureExtractor
from speechseq.files import TEMP_GLOB
from speechseq.models.asr import Recognizer, RecognizerConfig
from speechseq.text import CharTokenizer, train_piece_tokenizer
from speechseq.tts.config import tts_feature_config
from speechseq.tts.durations import (
    align_corpus,
    character_durations,
    read_durations,
    utterance_durations,
)

TOK = CharTokenizer()


def _path(chars: str) -> list[int]:
    """Frame ids from a string where "_" is the blank."""
    return [0 if ch == "_" else TOK.encode(ch)[0] for ch in chars]


def _peaky(chars: str, seed: int = 0) -> torch.Tensor:
    """(T, V) log-probs whose best symbol per frame spells ``chars`` ("_" = blank)."""
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(len(chars), len(TOK), generator=g)
    logits[torch.arange(len(chars)), torch.tensor(_path(chars))] += 10.0
    assert logits.argmax(-1).tolist() == _path(chars)
    return logits.log_softmax(dim=-1)


def _durations(chars: str, text: str, n_frames: int, asr: float, hop: float) -> list[int]:
    return character_durations(_peaky(chars), TOK.encode(text), 0, asr, n_frames, hop)


# --- (a) hand-made alignments ------------------------------------------------------------------


def test_blank_gaps_split_at_their_midpoint_and_edges_go_to_the_end_tokens():
    # Recognizer frames of 40 ms, TTS frames of 10 ms: recognizer frame t is centred on TTS
    # frame 4t, so the edge between recognizer frames e - 1 and e falls before TTS frame 4e - 2.
    #   a: frames 0-2 (two leading blanks)       edge 3   → TTS 10
    #   b: frame 3 and half of the 3-blank gap   edge 5.5 → TTS 20
    #   c: half the gap, frame 7, half a blank   edge 8.5 → TTS 32
    #   d: half a blank, frame 9, trailing blanks, to the end (45)
    assert _durations("__ab___c_d__", "abcd", 45, 0.04, 0.01) == [10, 10, 12, 13]


def test_a_doubled_letter_is_two_tokens_split_in_its_blank():
    assert _durations("_l_l__", "ll", 24, 0.04, 0.01) == [8, 16]


def test_boundaries_follow_the_frame_centres_at_a_non_integer_rate():
    # 40 ms recognizer frames, 12.5 ms TTS frames: check against assigning each TTS frame to
    # the token whose recognizer-time span holds its centre.
    chars, text, asr, hop, n = "___h_e__l_l__o___", "hello", 0.04, 0.0125, 53
    ids = _path(chars)
    starts = [t for t, i in enumerate(ids) if i and (t == 0 or ids[t - 1] != i)]
    ends = [t + 1 for t, i in enumerate(ids) if i and (t + 1 == len(ids) or ids[t + 1] != i)]
    cuts = [((e + s) / 2 - 0.5) * asr for e, s in zip(ends, starts[1:], strict=False)]
    expected = [0] * len(text)
    for j in range(n):
        expected[sum(j * hop >= c for c in cuts)] += 1
    assert _durations(chars, text, n, asr, hop) == expected


def test_durations_sum_to_the_frames_even_when_the_alignment_runs_past_them():
    # The boundaries 10, 20, 32 are clamped to 15; the two emptied tokens borrow a frame each.
    assert _durations("__ab___c_d__", "abcd", 15, 0.04, 0.01) == [10, 3, 1, 1]
    # Fewer frames than tokens: no minimum, but still the right sum.
    assert _durations("__ab___c_d__", "abcd", 2, 0.04, 0.01) == [2, 0, 0, 0]


def test_an_empty_token_takes_a_frame_from_its_longer_neighbour():
    # Recognizer frames of 10 ms, TTS frames of 40 ms: "b" (one recognizer frame) lands between
    # two TTS frame centres and gets none of its own.
    chars = "aaaaaabccccc"
    assert _durations(chars, "abc", 3, 0.01, 0.04) == [1, 1, 1]
    assert _durations(chars, "abc", 5, 0.01, 0.04) == [2, 1, 2]  # from c (3), not a (2)


def test_random_alignments_give_one_positive_duration_per_token_summing_to_the_frames():
    rng = random.Random(0)
    for trial in range(200):
        tokens = [rng.randrange(1, len(TOK)) for _ in range(rng.randint(1, 12))]
        repeats = sum(a == b for a, b in zip(tokens, tokens[1:], strict=False))
        frames = len(tokens) + repeats + rng.randint(0, 20)  # enough to align
        log_probs = torch.randn(frames, len(TOK), generator=torch.Generator().manual_seed(trial))
        n_frames = rng.randint(0, 80)
        hop = rng.choice([0.01, 0.0125, 0.02, 0.05])
        durations = character_durations(log_probs.log_softmax(-1), tokens, 0, 0.04, n_frames, hop)
        assert len(durations) == len(tokens)
        assert sum(durations) == n_frames
        assert min(durations) >= (1 if n_frames >= len(tokens) else 0)


# --- (b) impossible alignments -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("frames", "text"),
    [(3, "abcd"), (3, "aab")],  # "aab" needs a blank between the a's: 4 frames
)
def test_too_few_recognizer_frames_is_an_error(frames, text):
    with pytest.raises(SpeechseqError, match="cannot align"):
        character_durations(_peaky("_" * frames), TOK.encode(text), 0, 0.04, 40, 0.0125)


def test_a_text_the_recognizer_gives_no_probability_is_an_error():
    log_probs = _peaky("_a_b_c_")
    log_probs[:, TOK.encode("b")[0]] = -float("inf")
    with pytest.raises(SpeechseqError, match="no path"):
        character_durations(log_probs, TOK.encode("abc"), 0, 0.04, 40, 0.0125)


def test_no_tokens_is_an_error():
    with pytest.raises(SpeechseqError, match="nothing to align"):
        character_durations(_peaky("____"), [], 0, 0.04, 40, 0.0125)


# --- (c) the trained recognizer on real speech -------------------------------------------------


@pytest.fixture(scope="module")
def transcriber(model_path) -> Transcriber:
    return Transcriber.from_pretrained(model_path, decoding=DecoderConfig(kind="greedy"))


@pytest.mark.parametrize("index", [0, 2])
def test_character_spans_hold_their_words_emitting_frames(transcriber, speech_manifest, index):
    utt = read_manifest(speech_manifest)[index]
    fc = tts_feature_config(transcriber.sample_rate, normalize="none")
    # Untrimmed: the tiny recognizer has memorised these files with their silences, and only
    # reads them right (so that its greedy path is the forced alignment) as they are.
    dataset = TtsDataset([utt], FeatureExtractor(fc), TOK, trim_db=None)
    item = dataset[0]
    assert item is not None
    waveform, n_frames = dataset.waveform(0), item["mel"].shape[0]
    durations = utterance_durations(transcriber, waveform, utt.text, n_frames, fc.frame_seconds)
    assert len(durations) == len(TOK.encode(utt.text))
    assert sum(durations) == n_frames
    assert min(durations) >= 1

    # The words' emitting frames on the greedy path (the path is the forced alignment when the
    # transcript is right).
    with torch.no_grad():
        features = transcriber.extractor(waveform)  # (T, n_mels)
        log_probs, _ = transcriber.model(features[None], torch.tensor([features.shape[0]]))
    # With no shifts and 1 s frames, word_timings gives each word's first emitting frame and
    # the frame after its last.
    bare = word_timings(log_probs[0].argmax(-1), log_probs[0], TOK, 1.0, start_lead=0.0)
    assert " ".join(w.word for w in bare) == utt.text
    frames = [(w.start, w.end - 1) for w in bare]  # each word's first and last frame

    # Each word's characters, in seconds: TTS boundary b lies between frames b - 1 and b, and
    # recognizer frame t is centred at t × asr.
    asr, hop, tol = transcriber.frame_seconds, fc.frame_seconds, fc.frame_seconds + 1e-6
    bounds = [sum(durations[:k]) for k in range(len(durations) + 1)]
    first = 0
    for w, word in enumerate(utt.text.split()):
        start, end = (bounds[first] - 0.5) * hop, (bounds[first + len(word)] - 0.5) * hop
        # the span holds the word's emitting frames...
        assert start <= frames[w][0] * asr + tol
        assert end >= frames[w][1] * asr - tol
        # ...and stops short of the neighbouring words'.
        if w > 0:
            assert start >= frames[w - 1][1] * asr - tol
        if w + 1 < len(frames):
            assert end <= frames[w + 1][0] * asr + tol
        first += len(word) + 1  # and the space


# --- (d) a corpus --------------------------------------------------------------------------------


def test_align_corpus_writes_what_training_sees_and_skips_bad_utterances(
    model_path, speech_manifest, tmp_path
):
    good = read_manifest(speech_manifest)
    (tmp_path / "wav").mkdir()
    copy = tmp_path / "wav" / "copy.wav"
    shutil.copy(good[0].audio, copy)  # below the output's folder: written relative to it
    good.append(Utterance(str(copy), good[0].text, good[0].duration))
    bad = [
        Utterance(str(tmp_path / "missing.wav"), "yes no", 1.0),  # no audio
        Utterance(good[0].audio, "yes " * 60, good[0].duration),  # too long for its audio
    ]
    manifest = write_manifest([*good, *bad], tmp_path / "train.jsonl")
    # 22.05 kHz TTS features against a 16 kHz recognizer: the trimmed audio is resampled.
    fc = tts_feature_config(22050)  # global normalisation, statistics not computed yet
    with pytest.warns(UserWarning, match="skipping utterance"):
        summary = align_corpus(
            manifest, tmp_path / "train.durations.jsonl", model_path, fc, progress=False
        )
    assert summary["utterances"] == 7
    assert (summary["written"], summary["skipped"]) == (5, 2)
    assert 2.0 < summary["frames_per_character"] < 20.0

    lines = (tmp_path / "train.durations.jsonl").read_text().splitlines()
    assert json.loads(lines[-1])["audio"] == "wav/copy.wav"
    durations = read_durations(tmp_path / "train.durations.jsonl")
    utterances = read_manifest(manifest)[:5]
    assert set(durations) == {u.audio for u in utterances}
    assert durations[utterances[0].audio] == durations[utterances[4].audio]  # same audio

    # Frame counts as training computes them: with corpus statistics, global normalisation.
    stats = replace(fc, mean=(0.0,) * fc.n_mels, std=(1.0,) * fc.n_mels)
    dataset = TtsDataset(utterances, FeatureExtractor(stats), TOK)
    for i, utt in enumerate(utterances):
        item = dataset[i]
        assert item is not None
        assert len(durations[utt.audio]) == item["tokens"].numel()
        assert sum(durations[utt.audio]) == item["mel"].shape[0]
    assert not list(tmp_path.glob(TEMP_GLOB))  # the temporary file is gone


def test_read_durations_refuses_durations_that_do_not_sum_to_the_frames(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text(json.dumps({"audio": "a.wav", "text": "ab", "frames": 9, "durations": [4, 4]}))
    with pytest.raises(SpeechseqError, match="sum to 8"):
        read_durations(path)
    with pytest.raises(SpeechseqError, match="no such durations file"):
        read_durations(tmp_path / "none.jsonl")


def test_align_corpus_refuses_a_recognizer_of_word_pieces(speech_manifest, tmp_path):
    pieces = train_piece_tokenizer(["yes no stop", "red green blue"] * 5, vocab_size=20)
    model = Recognizer(RecognizerConfig(vocab_size=len(pieces), hidden_size=8, num_layers=1))
    checkpoint = save_checkpoint(asr_state(model, FeatureConfig(), pieces), tmp_path / "bpe.pt")
    with pytest.raises(SpeechseqError, match="word pieces"):
        align_corpus(speech_manifest, tmp_path / "d.jsonl", checkpoint, tts_feature_config())
    assert not (tmp_path / "d.jsonl").exists()
