"""Tests for speechseq.asr.lm: the ARPA file is well formed, Kneser-Ney sums to one, and KenLM
(inside flashlight-text) reads it and scores it as we do."""

from __future__ import annotations

import random
import re

import pytest

from speechseq.asr.lm import EOS, ArpaLM, arpa_words, build_arpa
from speechseq.errors import SpeechseqError

CORPUS = [
    "The cat sat on the mat.",
    "the dog sat on the log",
    "a cat ate the rat",
    "The rat sat!",
    "dogs and cats",
    "the cat sat",
    "a dog, a cat and a rat",
    "it's 2 cats",  # normalised to "it's two cats"
]


@pytest.fixture(scope="module", params=[(2, 1), (3, 1), (3, 2), (4, 1)], ids=lambda p: f"{p}")
def arpa(request, tmp_path_factory):
    order, min_count = request.param
    path = tmp_path_factory.mktemp("lm") / "lm.arpa"
    build_arpa(CORPUS, path, order=order, min_count=min_count)
    return path, order


def test_arpa_sections_match_data_counts(arpa):
    path, order = arpa
    text = path.read_text()
    assert text.startswith("\\data\\\n") and text.rstrip().endswith("\\end\\")
    declared = {int(n): int(c) for n, c in re.findall(r"^ngram (\d+)=(\d+)$", text, re.M)}
    assert list(declared) == list(range(1, order + 1))
    sections = re.split(r"^\\(\d+)-grams:$", text.split("\\end\\")[0], flags=re.M)[1:]
    for n, body in zip(sections[::2], sections[1::2], strict=True):
        n = int(n)
        lines = [line for line in body.splitlines() if line]
        assert len(lines) == declared[n]
        for line in lines:
            fields = line.split("\t")
            assert len(fields[1].split()) == n
            assert len(fields) in ((2, 3) if n < order else (2,))  # no backoff at the top order
            assert all(float(x) <= 0 for x in (fields[0], *fields[2:3]))
    unigrams = [line.split("\t")[1] for line in sections[1].splitlines() if line]
    assert {"<s>", "</s>", "<unk>", "cat", "it's", "two"} <= set(unigrams)
    assert "Cat" not in unigrams and "2" not in unigrams  # text was normalised


def test_every_context_sums_to_one(arpa):
    path, order = arpa
    lm = ArpaLM(path)
    vocab = lm.vocabulary
    contexts = [g for g in lm.probs if len(g) < order and g[-1] != EOS]
    contexts += [(), ("zebra",), ("dog", "zebra"), ("<s>", "the", "cat")]  # unseen ones back off
    for context in contexts:
        total = sum(10 ** lm.log10_prob(w, context) for w in vocab)
        assert total == pytest.approx(1.0, abs=2e-5), context


def test_corpus_sentence_beats_its_shuffle(arpa):
    lm = ArpaLM(arpa[0])
    words = "the dog sat on the log".split()
    shuffled = words[:]
    random.Random(0).shuffle(shuffled)
    assert shuffled != words
    assert lm.score(" ".join(words)) > lm.score(" ".join(shuffled)) + 1.0


def test_kneser_ney_by_hand(tmp_path):
    # <s> a b </s>, <s> a c </s>, <s> b c </s>: count-of-counts too thin for Chen-Goodman, so the
    # fallback discounts 0.5 / 1 / 1.5 apply. Continuation counts: a 1, b 2, c 2, </s> 2 (sum 7);
    # gamma() = (0.5 + 1 + 1 + 1) / 7 = 0.5 over 5 words (a b c </s> <unk>).
    path = build_arpa(["a b", "a c", "b c"], tmp_path / "lm.arpa", order=2).path
    lm = ArpaLM(path)
    p_a, p_b = 0.5 / 7 + 0.5 / 5, 1 / 7 + 0.5 / 5
    assert 10 ** lm.log10_prob("a") == pytest.approx(p_a, abs=1e-6)
    assert 10 ** lm.log10_prob("<unk>") == pytest.approx(0.5 / 5, abs=1e-6)
    # after "a": b and c once each, gamma(a) = (0.5 + 0.5) / 2.
    assert 10 ** lm.log10_prob("b", ["a"]) == pytest.approx(0.5 / 2 + 0.5 * p_b, abs=1e-6)
    assert 10 ** lm.log10_prob("a", ["a"]) == pytest.approx(0.5 * p_a, abs=1e-6)  # backed off


def test_kenlm_reads_the_arpa_and_agrees(arpa):
    """The ARPA loads in flashlight-text's KenLM (no build_binary needed), with our scores."""
    from flashlight.lib.text.decoder import kenlm
    from flashlight.lib.text.dictionary import create_word_dict

    path, _ = arpa
    ours = ArpaLM(path)
    words = create_word_dict({w: [[w]] for w in ours.vocabulary})
    theirs = kenlm.KenLM(str(path), words)
    for sentence in ["the cat sat on the mat", "mat the on cat", "a rat and a dog sat"]:
        state, total = theirs.start(False), 0.0
        for word in sentence.split():
            state, score = theirs.score(state, words.get_index(word))
            total += score
        total += theirs.finish(state)[1]
        assert total == pytest.approx(ours.score(sentence), abs=1e-4)


def test_pruning_keeps_fewer_ngrams(tmp_path):
    full = build_arpa(CORPUS, tmp_path / "full.arpa", order=3)
    pruned = build_arpa(CORPUS, tmp_path / "pruned.arpa", order=3, min_count=2)
    assert full.ngrams[0] == pruned.ngrams[0]  # every word stays
    assert pruned.ngrams[1] < full.ngrams[1] and pruned.ngrams[2] < full.ngrams[2]
    assert full.sentences == len(CORPUS) and full.words == 36


def test_field_and_file_input(tmp_path):
    corpus = tmp_path / "train.txt"
    corpus.write_text("hello world\tHello, World!\n\n  \nhello there\tHello there.\n")
    summary = build_arpa(corpus, tmp_path / "lm.arpa", order=2, field=0)
    assert summary.sentences == 2
    assert sorted(arpa_words(summary.path)) == ["hello", "there", "world"]


def test_bad_input(tmp_path):
    with pytest.raises(SpeechseqError, match="no such file"):
        build_arpa(tmp_path / "missing.txt", tmp_path / "lm.arpa")
    with pytest.raises(SpeechseqError, match="no sentences"):
        build_arpa(["", "!!!", " "], tmp_path / "lm.arpa")
    with pytest.raises(SpeechseqError, match="order"):
        build_arpa(CORPUS, tmp_path / "lm.arpa", order=0)
    not_arpa = tmp_path / "notes.txt"
    not_arpa.write_text("just some words\n")
    with pytest.raises(SpeechseqError, match="not an ARPA file"):
        arpa_words(not_arpa)
    with pytest.raises(SpeechseqError, match="ARPA"):
        ArpaLM(not_arpa)
