"""Choose the beam search's LM weight, word bonus, beam size and tokens per frame on the dev
set; write them as JSON.

    python local/tune_decoder.py exp/bigru_ctc/best.pt data/dev.jsonl \
        exp/bigru_ctc/lm-default.arpa --out exp/bigru_ctc/decoding.json

The model's log-probs are computed once. First each (weight, bonus) pair of the grid decodes
them with beam search (``--beam-size``, every token tried per frame) and the LM; the pair with
the lowest dev WER (CER breaks ties) is kept. Then each (beam size, tokens per frame) pair of
the second grid decodes them with that weight and bonus, timed, and the fastest pair whose dev
WER is at most ``--wer-slack`` points above the first search's best is kept: the beam's cost
grows with both, and past a point a wider search buys nothing on dev. The choice is written
in the form ``speechseq.asr.transcriber.default_decoding`` reads: ``{"kind": "beam", "beam_size": …,
"lm": "<LM file name, beside the JSON>", "lm_weight": …, "word_bonus": …}`` plus the dev figures.
Only the dev set is looked at: the test sets stay untouched until the final evaluation.
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
from pathlib import Path

import torch
from tqdm import tqdm

from speechseq.asr.beam import BeamSearchDecoder
from speechseq.asr.decoding import greedy_decode
from speechseq.asr.transcriber import Transcriber
from speechseq.audio import load_audio
from speechseq.data import read_manifest
from speechseq.metrics import error_counts


def get_parser() -> argparse.ArgumentParser:
    assert __doc__ is not None  # the module docstring above
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("model", help="recognizer checkpoint")
    parser.add_argument("manifest", help="dev manifest (JSONL)")
    parser.add_argument("lm", help="word n-gram LM (ARPA), e.g. from speechseq lm build")
    parser.add_argument("--out", required=True, help="JSON file to write")
    parser.add_argument("--weights", default="0.5,0.75,1.0,1.5,2.0")
    parser.add_argument("--bonuses", default="-1,0,1,2")
    parser.add_argument("--beam-size", type=int, default=50)
    parser.add_argument("--beam-sizes", default="10,20,30,50", help="second grid: beam sizes")
    parser.add_argument("--beam-tokens", default="4,8,16,32", help="second grid: tokens per frame")
    parser.add_argument("--wer-slack", type=float, default=0.2, help="dev WER points to trade")
    return parser


def dev_log_probs(transcriber: Transcriber, manifest: str) -> tuple[list[torch.Tensor], list[str]]:
    """(T', V) log-probs of every dev utterance, and the reference texts."""
    utterances = read_manifest(manifest)
    log_probs = [
        transcriber.log_probs([load_audio(utt.audio, transcriber.sample_rate)])[0]
        for utt in tqdm(utterances, desc="dev log-probs", unit="utt")
    ]
    return log_probs, [utt.text for utt in utterances]


def score(decode, log_probs: list[torch.Tensor], refs: list[str]) -> tuple[float, float]:
    """Corpus WER and CER (%) of ``decode`` over the utterances, one at a time."""
    hyps = [decode(lp[None], torch.tensor([lp.shape[0]]))[0] for lp in log_probs]
    counts = error_counts(refs, hyps)
    wer = 100 * counts["word_errors"] / counts["words"]
    return wer, 100 * counts["char_errors"] / counts["chars"]


def run(args: argparse.Namespace) -> None:
    transcriber = Transcriber.from_pretrained(args.model, device="cpu")  # greedy
    log_probs, refs = dev_log_probs(transcriber, args.manifest)
    tok = transcriber.tokenizer
    greedy = score(lambda lp, ln: greedy_decode(lp, ln, tok), log_probs, refs)
    print(f"{'lm_weight':>9} {'word_bonus':>10} {'WER %':>7} {'CER %':>7}")
    print(f"{'greedy':>9} {'':>10} {greedy[0]:7.2f} {greedy[1]:7.2f}")
    grid = itertools.product(
        [float(w) for w in args.weights.split(",")], [float(b) for b in args.bonuses.split(",")]
    )
    results = []
    for weight, bonus in grid:
        decoder = BeamSearchDecoder(
            tok, lm=args.lm, lm_weight=weight, word_bonus=bonus, beam_size=args.beam_size
        )
        wer, cer = score(decoder, log_probs, refs)
        results.append((wer, cer, weight, bonus))
        print(f"{weight:9.2f} {bonus:10.2f} {wer:7.2f} {cer:7.2f}", flush=True)
    wer, cer, weight, bonus = min(results)
    print(f"chosen on dev: lm_weight {weight}, word_bonus {bonus}: WER {wer:.2f}, CER {cer:.2f} %")
    print(f"{'beam_size':>9} {'tokens':>6} {'WER %':>7} {'CER %':>7} {'decode s':>8}")
    timed = []
    for size, tokens in itertools.product(
        [int(v) for v in args.beam_sizes.split(",")], [int(v) for v in args.beam_tokens.split(",")]
    ):
        decoder = BeamSearchDecoder(
            tok, args.lm, lm_weight=weight, word_bonus=bonus, beam_size=size, beam_size_token=tokens
        )
        start = time.perf_counter()
        size_wer, size_cer = score(decoder, log_probs, refs)
        seconds = time.perf_counter() - start
        timed.append((seconds, size_wer, size_cer, size, tokens))
        print(f"{size:9d} {tokens:6d} {size_wer:7.2f} {size_cer:7.2f} {seconds:8.2f}", flush=True)
    seconds, wer, cer, size, tokens = min(t for t in timed if t[1] <= wer + args.wer_slack)
    print(f"chosen on dev: beam_size {size}, {tokens} tokens per frame: WER {wer:.2f} %")
    choice = {
        "kind": "beam",
        "beam_size": size,
        "beam_tokens": tokens,
        "lm": Path(args.lm).name,
        "lm_weight": weight,
        "word_bonus": bonus,
        "tuned_on": f"{Path(args.manifest).name}: {len(refs)} utterances",
        "dev_wer": round(wer, 2),
        "dev_cer": round(cer, 2),
        "dev_greedy_wer": round(greedy[0], 2),
        "dev_greedy_cer": round(greedy[1], 2),
    }
    Path(args.out).write_text(json.dumps(choice, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    run(get_parser().parse_args())
