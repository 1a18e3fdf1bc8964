"""Pick ordinary English sentences from Debian's fortunes and split them into train/dev/test.

    python local/prepare_text.py /usr/share/games/fortunes data/text      # prepare.sh stage 1

Writes ``{train,dev,test_seen,test_heldout}.txt`` (one sentence a line: the normalised transcript,
a tab, then the text the synthesizers read, which keeps its case and punctuation for prosody) and
``sources.txt`` (the fortune files read, with their sizes and how many sentences each gave).

A sentence is kept only when what a synthesizer will say is exactly its transcript: anything with
digits, symbols, abbreviations (``Mr.``, ``etc.``), acronyms or single letters is dropped rather
than normalised, because speakers and ``normalize_text`` would disagree about how to read it. It
must also look like prose (a capital first, ``.``/``!``/``?`` last, 3-25 words) and nearly all its
words must be in the system word list, which drops Latin, dialect spellings and code.
Sentences are deduplicated on their normalised text, then shuffled with a fixed seed and cut into
splits, so no sentence is in two splits.
"""

import argparse
import random
import re
import sys
from collections import Counter
from pathlib import Path

from speechseq.text import normalize_text

# Pictures, and a file of Latin and other untranslated text.
SKIP_FILES = {"ascii-art", "translate-me"}
SPLITS = {"dev": 300, "test_seen": 300, "test_heldout": 300}  # train takes the rest
MIN_WORDS, MAX_WORDS = 3, 25
MIN_KNOWN = 0.9  # share of words that must be in the word list
# Slurs and strong profanity: the fortunes hold a few, and this text also trains language models.
BLOCKED_WORDS = set(
    """
    nigger niggers nigga negro negroes chink chinks gook gooks spic spics kike kikes wetback
    wetbacks faggot faggots fag fags dyke dykes tranny trannies retard retards retarded coon coons
    darkie darkies jap japs paki pakis raghead ragheads towelhead wop wops dago dagos gyp gypped
    squaw redskin redskins cunt cunts fuck fucks fucked fucking fucker fuckers motherfucker shit
    shits shitty bitch bitches whore whores slut sluts cock cocks dick dicks pussy twat wank
    wanker bastard bastards rape raped rapes raping rapist
    """.split()
)

_ATTRIBUTION = re.compile(r"^\s*-{2,}\s*\S")  # "		-- Mark Twain"
_INLINE_ATTRIBUTION = re.compile(r"\s-{2,}\s*[A-Z][^.!?]*$")  # "... necessity. -- Wilde"
_SPEAKER_TAG = re.compile(r"^\s*[A-Za-z][\w .']{0,20}:\s")  # "Q: ", "Kirk: " (dialogue)
_EDITORIAL = re.compile(r"\[[^\]]*\]")  # "[Ezek. 4:12-15 (KJV)]"
_SENTENCE_END = re.compile(r"(?<=[.!?])['\")]*\s+(?=['\"(]*[A-Z])")
_ALLOWED = re.compile(r"^[A-Za-z ,.;:!?'\-]+$")
_ACRONYM = re.compile(r"[A-Z][A-Za-z]*[A-Z]")  # IBM, McDonald, SHOUTING
_ABBREVIATIONS = re.compile(
    r"\b(mr|mrs|ms|dr|st|jr|sr|prof|rev|gen|col|capt|lt|sgt|gov|sen|rep|inc|ltd|co|corp|vs|etc"
    r"|viz|cf|approx|dept|univ|ave|blvd|mt|ft|oz|lb|lbs|e\.g|i\.e|ok)\b\.?",
    re.IGNORECASE,
)
_SINGLE_LETTER = re.compile(r"(?<![\w'])(?![aAI](?![\w']))[A-Za-z](?![\w'])")


def fortune_files(root: Path) -> list[Path]:
    """The plain-text fortune files directly in ``root`` (not ``off/``, not ``.dat`` indexes,
    not the ``.u8`` links to the same files)."""
    return sorted(
        p
        for p in root.iterdir()
        if p.is_file()
        and not p.is_symlink()
        and p.suffix not in {".dat", ".u8"}
        and p.name not in SKIP_FILES
    )


def read_fortunes(path: Path) -> list[str]:
    text = path.read_bytes().decode("utf-8", errors="replace")
    return [f for f in re.split(r"^%\s*$", text, flags=re.MULTILINE) if f.strip()]


def strip_attribution(fortune: str) -> str | None:
    """The fortune's body, or None for ones that are not prose (overstruck, dialogue, code)."""
    if re.search(r"[\x00-\x08\x0b-\x1f\ufffd]", fortune):  # backspace overstriking, bad bytes
        return None
    lines = fortune.strip("\n").split("\n")
    for i, line in enumerate(lines):
        # An attribution is indented or among the last two lines; an unindented "--" earlier
        # on is a dash inside the text.
        if _ATTRIBUTION.match(line) and (line[:1].isspace() or i >= len(lines) - 2) and i > 0:
            lines = lines[:i]
            break
    if any(_SPEAKER_TAG.match(line) for line in lines):
        return None
    body = " ".join(line.strip() for line in lines)
    body = _EDITORIAL.sub(" ", body)
    body = _INLINE_ATTRIBUTION.sub("", body)
    return re.sub(r"\s+", " ", body).strip()


def split_sentences(body: str) -> list[str]:
    return [s.strip() for s in _SENTENCE_END.split(body) if s.strip()]


def spoken_form(sentence: str, known_words: set[str]) -> str | None:
    """The sentence as a synthesizer should read it, or None if it is not a clean sentence."""
    s = sentence.replace('"', "").strip(" '")  # quotation marks change nothing that is said
    if not _ALLOWED.match(s) or not s[0].isupper() or s[-1] not in ".!?":
        return None
    if "''" in s or "--" in s.replace(" -- ", ""):
        return None
    if _ACRONYM.search(s) or _ABBREVIATIONS.search(s) or _SINGLE_LETTER.search(s):
        return None
    words = normalize_text(s).split()
    if not MIN_WORDS <= len(words) <= MAX_WORDS:
        return None
    if any(w.removesuffix("'s") in BLOCKED_WORDS for w in words):
        return None
    known = sum(w in known_words or w.removesuffix("'s") in known_words for w in words)
    if known < MIN_KNOWN * len(words):
        return None
    return re.sub(r"\s+", " ", s)


def collect(root: Path, known_words: set[str]) -> tuple[dict[str, str], Counter]:
    """Normalised text -> spoken text, first occurrence wins (files in sorted order)."""
    sentences: dict[str, str] = {}
    per_file: Counter = Counter()
    for path in fortune_files(root):
        for fortune in read_fortunes(path):
            body = strip_attribution(fortune)
            if body is None:
                continue
            for sentence in split_sentences(body):
                spoken = spoken_form(sentence, known_words)
                if spoken is None:
                    continue
                key = normalize_text(spoken)
                if key not in sentences:
                    sentences[key] = spoken
                    per_file[path.name] += 1
    return sentences, per_file


def main() -> None:
    assert __doc__ is not None  # the module docstring above
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("fortunes", type=Path, help="folder of fortune files")
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--words", type=Path, default=Path("/usr/share/dict/american-english"))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    known_words = {w.strip().lower() for w in args.words.read_text(encoding="utf-8").split()}
    sentences, per_file = collect(args.fortunes, known_words)
    keys = sorted(sentences)
    random.Random(args.seed).shuffle(keys)

    splits: dict[str, list[str]] = {}
    start = 0
    for name, size in SPLITS.items():
        splits[name] = keys[start : start + size]
        start += size
    splits["train"] = keys[start:]
    seen: set[str] = set()
    for name, part in splits.items():
        assert not seen & set(part), f"{name} shares sentences with another split"
        seen |= set(part)

    args.out_dir.mkdir(parents=True, exist_ok=True)
    for name in ["train", "dev", "test_seen", "test_heldout"]:
        lines = [f"{key}\t{sentences[key]}\n" for key in splits[name]]
        (args.out_dir / f"{name}.txt").write_text("".join(lines), encoding="utf-8")
        words = sum(len(k.split()) for k in splits[name])
        print(f"{name}: {len(splits[name])} sentences, {words} words", file=sys.stderr)
    with (args.out_dir / "sources.txt").open("w", encoding="utf-8") as f:
        f.write("# fortune file\tbytes\tsentences kept\n")
        for path in fortune_files(args.fortunes):
            f.write(f"{path}\t{path.stat().st_size}\t{per_file[path.name]}\n")
        f.write(f"# word list: {args.words}; skipped files: {', '.join(sorted(SKIP_FILES))}\n")


if __name__ == "__main__":
    main()
