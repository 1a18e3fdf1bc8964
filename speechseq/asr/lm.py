"""Word n-gram language models in ARPA format: build one from text, read and score one.

The estimator is interpolated modified Kneser-Ney (Chen & Goodman 1998), written out in backoff
form the way KenLM's ``lmplz`` does, so the file loads in KenLM and in flashlight-text's decoder
(``speechseq.asr.beam``). It is written here because no maintained library estimates an ARPA model
without compiled tools: ``pip install kenlm`` builds the query side only (no ``lmplz``), NLTK's
``nltk.lm`` cannot write ARPA, and the pure-Python ``arpabo`` leaves its Kneser-Ney backoff
weights at 1, so its distributions do not sum to one.

Example:
    >>> summary = build_arpa("corpus.txt", "lm.arpa", order=3)
    >>> lm = ArpaLM("lm.arpa")
    >>> lm.score("the cat sat")        # log10 P(<s> the cat sat </s>)
    -4.21
"""

from __future__ import annotations

import math
import shutil
import subprocess
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from speechseq.errors import SpeechseqError
from speechseq.files import atomic_path
from speechseq.text import normalize_text

__all__ = ["build_arpa", "ArpaLM", "LMSummary", "arpa_words", "arpa_to_binary", "BOS", "EOS", "UNK"]

BOS, EOS, UNK = "<s>", "</s>", "<unk>"
# KenLM's --discount_fallback: used when a tiny corpus gives count-of-counts that make the
# Chen-Goodman estimate meaningless (a discount outside (0, k)).
_FALLBACK_DISCOUNTS = (0.5, 1.0, 1.5)

Ngram = tuple[str, ...]


@dataclass(frozen=True)
class LMSummary:
    """What :func:`build_arpa` wrote.

    Attributes:
        path: the ARPA file.
        sentences: normalised, non-empty sentences counted.
        words: running words in them.
        ngrams: n-grams written per order (index 0 = unigrams).
        discounts: (D1, D2, D3+) per order.
    """

    path: Path
    sentences: int
    words: int
    ngrams: tuple[int, ...]
    discounts: tuple[tuple[float, float, float], ...]


def _read_sentences(source: str | Path | Iterable[str], field: int | None) -> list[list[str]]:
    if isinstance(source, str | Path):
        path = Path(source)
        if not path.is_file():
            raise SpeechseqError(f"{path}: no such file")
        lines: Iterable[str] = path.read_text(encoding="utf-8").splitlines()
    else:
        lines = source
    sentences = []
    for line in lines:
        if field is not None:
            parts = line.split("\t")
            line = parts[field] if field < len(parts) else ""
        words = normalize_text(line).split()
        if words:
            sentences.append(words)
    return sentences


def _raw_counts(sentences: list[list[str]], order: int) -> list[Counter]:
    counts = [Counter() for _ in range(order)]
    for words in sentences:
        padded = [BOS, *words, EOS]
        for n in range(1, order + 1):
            for i in range(len(padded) - n + 1):
                counts[n - 1][tuple(padded[i : i + n])] += 1
    del counts[0][(BOS,)]  # <s> is only ever a context, never predicted
    return counts


def _adjusted_counts(raw: list[Counter]) -> list[Counter]:
    """Kneser-Ney counts: below the top order, how many distinct words precede an n-gram
    (n-grams that start with <s> have nothing before them and keep their raw count)."""
    adjusted = [Counter() for _ in raw]
    adjusted[-1] = raw[-1]
    for n in range(len(raw) - 1, 0, -1):
        for gram in raw[n]:
            adjusted[n - 1][gram[1:]] += 1
        for gram, count in raw[n - 1].items():
            if gram[0] == BOS:
                adjusted[n - 1][gram] = count
    return adjusted


def _discounts(counts: Counter) -> tuple[float, float, float]:
    """Chen & Goodman's estimate of D1, D2, D3+ from count-of-counts."""
    t = Counter(c for c in counts.values() if c <= 4)  # t[k]: n-grams seen exactly k times
    if all(t[k] > 0 for k in (1, 2, 3, 4)):
        y = t[1] / (t[1] + 2 * t[2])
        d = tuple(k - (k + 1) * y * t[k + 1] / t[k] for k in (1, 2, 3))
        if all(0 < d[k - 1] < k for k in (1, 2, 3)):
            return d  # type: ignore[return-value]
    return _FALLBACK_DISCOUNTS


def _interpolated(adjusted: list[Counter], discounts: list[tuple], vocab_size: int) -> tuple:
    """Interpolated modified Kneser-Ney probabilities of every n-gram seen, and the weight
    gamma(h) each context gives to its lower order. Returns (probs, gammas) per order."""
    probs: list[dict[Ngram, float]] = []
    gammas: list[dict[Ngram, float]] = []
    for n, counts in enumerate(adjusted, start=1):
        d = discounts[n - 1]
        totals: dict[Ngram, float] = defaultdict(float)
        held: dict[Ngram, float] = defaultdict(float)  # discount mass per context
        for gram, c in counts.items():
            totals[gram[:-1]] += c
            held[gram[:-1]] += d[min(c, 3) - 1]
        gamma = {ctx: held[ctx] / totals[ctx] for ctx in totals}
        p = {}
        for gram, c in counts.items():
            ctx = gram[:-1]
            lower = probs[-1][gram[1:]] if n > 1 else 1.0 / vocab_size
            p[gram] = (c - d[min(c, 3) - 1]) / totals[ctx] + gamma[ctx] * lower
        probs.append(p)
        gammas.append(gamma)
    return probs, gammas


def _backoff_prob(probs: list[dict], backoffs: list[dict], gram: Ngram) -> float:
    """P(last word | the rest) in the backoff model built so far (linear, not log)."""
    weight = 1.0
    while gram not in probs[len(gram) - 1]:
        weight *= backoffs[len(gram) - 2].get(gram[:-1], 1.0)
        gram = gram[1:]
    return weight * probs[len(gram) - 1][gram]


def _prune_and_renormalise(probs: list[dict], raw: list[Counter], min_count: int) -> list[dict]:
    """Drop n-grams (order >= 2) seen fewer than ``min_count`` times and set each context's
    backoff weight so its distribution sums to one:
    b(h) = (1 - sum_kept P(w|h)) / (1 - sum_kept P(w|h'))."""
    for n in range(1, len(probs)):
        probs[n] = {g: p for g, p in probs[n].items() if raw[n][g] >= min_count}
    backoffs: list[dict[Ngram, float]] = []
    for n in range(1, len(probs)):
        kept_mass: dict[Ngram, float] = defaultdict(float)
        lower_mass: dict[Ngram, float] = defaultdict(float)
        for gram, p in probs[n].items():
            kept_mass[gram[:-1]] += p
            lower_mass[gram[:-1]] += _backoff_prob(probs, backoffs, gram[1:])
        contexts = [g for g in probs[n - 1] if g[-1] != EOS]
        if n == 1:
            contexts.append((BOS,))
        backoffs.append(
            {
                h: (1.0 - kept_mass[h]) / (1.0 - lower_mass[h]) if h in kept_mass else 1.0
                for h in contexts
            }
        )
    return backoffs


def _log10(x: float) -> float:
    return math.log10(x) if x > 0 else -99.0


def _write_arpa(path: Path, probs: list[dict], backoffs: list[dict]) -> None:
    order = len(probs)
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        f.write("\\data\\\n")
        unigrams = {(BOS,): None, **probs[0]}
        sections = [unigrams, *probs[1:]]
        for n, section in enumerate(sections, start=1):
            f.write(f"ngram {n}={len(section)}\n")
        for n, section in enumerate(sections, start=1):
            f.write(f"\n\\{n}-grams:\n")
            for gram in sorted(section):
                p = section[gram]
                line = f"{-99.0 if p is None else _log10(p):.6f}\t{' '.join(gram)}"
                if n < order and gram in backoffs[n - 1]:
                    line += f"\t{_log10(backoffs[n - 1][gram]):.6f}"
                f.write(line + "\n")
        f.write("\n\\end\\\n")


def build_arpa(
    text: str | Path | Iterable[str],
    out_path: str | Path,
    order: int = 3,
    min_count: int = 1,
    field: int | None = None,
) -> LMSummary:
    """Estimate a word n-gram LM (interpolated modified Kneser-Ney) and write it as ARPA.

    Each line is one sentence, normalised with :func:`speechseq.text.normalize_text`; empty
    lines are skipped. Every word seen stays in the vocabulary, plus ``<unk>``.

    Args:
        text: a text file (one sentence a line) or the lines themselves.
        out_path: the ARPA file to write (atomically).
        order: the n in n-gram (>= 1).
        min_count: n-grams of order 2 and above seen fewer times are pruned (their mass goes
            to the backoff); 1 keeps everything.
        field: take this tab-separated field of each line (0-based) instead of the whole line.

    Returns:
        what was written.

    Raises:
        SpeechseqError: a missing file, no text left after normalising, or a bad argument.
    """
    if order < 1:
        raise SpeechseqError(f"n-gram order must be at least 1, got {order}")
    if min_count < 1:
        raise SpeechseqError(f"min_count must be at least 1, got {min_count}")
    sentences = _read_sentences(text, field)
    if not sentences:
        raise SpeechseqError(f"{text if isinstance(text, str | Path) else 'text'}: no sentences")
    raw = _raw_counts(sentences, order)
    adjusted = _adjusted_counts(raw)
    discounts = [_discounts(counts) for counts in adjusted]
    vocab_size = len(raw[0]) + 1  # the words seen, </s> and <unk> (never seen: normalised away)
    probs, gammas = _interpolated(adjusted, discounts, vocab_size)
    probs[0][(UNK,)] = gammas[0][()] / vocab_size
    backoffs = _prune_and_renormalise(probs, raw, min_count)
    out = Path(out_path)
    _write_arpa(out, probs, backoffs)
    return LMSummary(
        path=out,
        sentences=len(sentences),
        words=sum(len(s) for s in sentences),
        ngrams=tuple(len(p) + (1 if n == 0 else 0) for n, p in enumerate(probs)),
        discounts=tuple(discounts),
    )


def arpa_words(path: str | Path) -> list[str]:
    """The words of an ARPA file's unigram section, without ``<s>``, ``</s>`` and ``<unk>``."""
    words, in_unigrams = [], False
    try:
        with open(path, encoding="utf-8") as f:
            for line in f:
                line = line.strip()
                if line == "\\1-grams:":
                    in_unigrams = True
                elif line.startswith("\\") and in_unigrams:
                    break
                elif in_unigrams and line:
                    word = line.split("\t")[1] if "\t" in line else line.split()[1]
                    if word not in (BOS, EOS, UNK):
                        words.append(word)
    except (OSError, UnicodeDecodeError, IndexError) as err:
        raise SpeechseqError(f"{path}: not a readable ARPA file ({err})") from None
    if not in_unigrams:
        raise SpeechseqError(f"{path}: not an ARPA file (no \\1-grams: section)")
    return words


def arpa_to_binary(arpa_path: str | Path, out_path: str | Path) -> Path:
    """Convert ARPA to KenLM's binary format with KenLM's ``build_binary`` (faster to load).

    Raises:
        SpeechseqError: ``build_binary`` is not on PATH (the ``kenlm`` pip package lacks it;
            build KenLM from source), or it failed.
    """
    tool = shutil.which("build_binary")
    if tool is None:
        raise SpeechseqError(
            "KenLM's build_binary is not on PATH; the ARPA file loads as it is "
            "(binary only loads faster)"
        )
    done = subprocess.run([tool, str(arpa_path), str(out_path)], capture_output=True, text=True)
    if done.returncode != 0:
        raise SpeechseqError(f"build_binary failed on {arpa_path}: {done.stderr.strip()[-500:]}")
    return Path(out_path)


class ArpaLM:
    """A backoff n-gram model read from an ARPA file, for scoring in Python.

    Args:
        path: the ARPA file.

    Example:
        >>> lm = ArpaLM("lm.arpa")
        >>> lm.log10_prob("sat", ("the", "cat"))
        -0.52
    """

    def __init__(self, path: str | Path) -> None:
        self.probs: dict[Ngram, float] = {}
        self.backoffs: dict[Ngram, float] = {}
        self.counts: dict[int, int] = {}
        section = 0
        try:
            with open(path, encoding="utf-8") as f:
                for line in f:
                    line = line.strip()
                    if not line or line in ("\\data\\", "\\end\\"):
                        continue
                    if line.startswith("ngram "):
                        n, count = line[len("ngram ") :].split("=")
                        self.counts[int(n)] = int(count)
                    elif line.startswith("\\") and line.endswith("-grams:"):
                        section = int(line[1 : -len("-grams:")])
                    else:
                        fields = line.split()
                        gram = tuple(fields[1 : 1 + section])
                        self.probs[gram] = float(fields[0])
                        if len(fields) > 1 + section:
                            self.backoffs[gram] = float(fields[1 + section])
        except (OSError, UnicodeDecodeError, ValueError) as err:
            raise SpeechseqError(f"{path}: not a readable ARPA file ({err})") from None
        if not self.counts or not self.probs:
            raise SpeechseqError(f"{path}: not an ARPA file (no \\data\\ counts)")
        self.order = max(self.counts)

    @property
    def vocabulary(self) -> list[str]:
        """Every word the model predicts (``<s>`` excluded)."""
        return [g[0] for g in self.probs if len(g) == 1 and g[0] != BOS]

    def log10_prob(self, word: str, context: Iterable[str] = ()) -> float:
        """log10 P(word | context), backing off; unknown words score as ``<unk>``."""
        context = tuple(context)
        context = context[max(0, len(context) - self.order + 1) :]
        if (word,) not in self.probs:
            word = UNK
        weight = 0.0
        while (gram := (*context, word)) not in self.probs:
            if not context:
                return -99.0  # no <unk> in the file
            weight += self.backoffs.get(context, 0.0)
            context = context[1:]
        return weight + self.probs[gram]

    def score(self, sentence: str, bos: bool = True, eos: bool = True) -> float:
        """log10 probability of a (normalised) sentence, with ``<s>``/``</s>`` by default."""
        words = [*sentence.split(), *([EOS] if eos else [])]
        context: list[str] = [BOS] if bos else []
        total = 0.0
        for word in words:
            total += self.log10_prob(word, context)
            context.append(word)
        return total
