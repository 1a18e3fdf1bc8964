"""Peak memory of speaking one long line: the whole waveform in memory, against streamed to file.

    python benchmarks/tts_memory.py --sentences 50 200 800

For each length, two fresh processes speak one line of that many sentences with the shipped
voice (or ``--model``): one the old way (``Speaker.speak``, then ``save_audio``: the line's audio
is held until the end), one as ``speechseq synthesize --text-file`` does now
(``Speaker.speak_to_file``: each batch of sentences written as it is made). Each reports its
peak RSS above what it had once the model was loaded, and the audio it made. Streaming should
stay flat while the in-memory way grows with the audio.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

SENTENCES = [
    "The quick brown fox jumps over the lazy dog.",
    "She sells sea shells by the sea shore.",
    "A journey of a thousand miles begins with a single step.",
    "Every cloud has a silver lining, or so they say.",
]

CHILD = r"""
import json, resource, sys, torch
from speechseq.audio import save_audio
from speechseq.tts.speaker import Speaker

torch.set_num_threads(int(sys.argv[4]))
speaker = Speaker.from_pretrained(sys.argv[3] or None)
text = " ".join(json.loads(sys.argv[2]))
speaker.speak("Warm up.")
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
if sys.argv[1] == "memory":
    result = speaker.speak(text)
    save_audio(sys.argv[5], result.waveform, result.sample_rate)
else:
    result = speaker.speak_to_file(text, sys.argv[5])
growth = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) / 1024  # kB -> MB
print(json.dumps({"audio": result.duration, "base_mb": base / 1024, "growth_mb": growth}))
"""


def measure(way: str, n: int, model: str, threads: int, out: str) -> dict:
    text = [SENTENCES[i % len(SENTENCES)] for i in range(n)]
    args = [sys.executable, "-c", CHILD, way, json.dumps(text), model, str(threads), out]
    done = subprocess.run(args, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    assert __doc__ is not None  # the module docstring above
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sentences", type=int, nargs="+", default=[50, 200, 800])
    parser.add_argument("--model", default="", help="voice checkpoint (default: shipped)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default="/tmp/tts_memory.wav", help="scratch audio file")
    args = parser.parse_args()
    print("| sentences | audio (s) | in memory: RSS growth (MB) | streamed: RSS growth (MB) |")
    print("|---:|---:|---:|---:|")
    for n in args.sentences:
        whole = measure("memory", n, args.model, args.threads, args.out)
        streamed = measure("stream", n, args.model, args.threads, args.out)
        print(
            f"| {n} | {whole['audio']:.0f} | {whole['growth_mb']:.0f} "
            f"| {streamed['growth_mb']:.0f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
