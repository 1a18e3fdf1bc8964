#!/usr/bin/env bash
# The shipped recognizer, end to end: corpus, training, evaluation on both test parts, export.
#
#   bash recipes/synthetic/asr/run.sh                         # all stages
#   bash recipes/synthetic/asr/run.sh --stage 3 --stop-stage 3  # just evaluate
#   EXP_DIR=/scratch/bigru bash recipes/synthetic/asr/run.sh  # checkpoints elsewhere
#
# Stage 1: bash prepare.sh (the corpus, ~6-9 minutes on 2 cores)
# Stage 2: speechseq train asr hparams/train.yaml --resume (re-running continues a killed run)
# Stage 3: speechseq evaluate (greedy) on data/test_seen.jsonl and data/test_heldout.jsonl, and
#          on data/dev_heldout.jsonl if prepare.sh stage 6 made it
# Stage 4: a trigram word LM from the train sentences (speechseq lm build); the int8 release
#          copy of best.pt (speechseq export --int8: what ships); for it, the LM weight, word
#          bonus, beam size and tokens per frame chosen on dev (local/tune_decoder.py) and the
#          no-speech threshold that keeps noise from becoming words (local/no_speech.py), all
#          in int8.decoding.json; the int8 copy evaluated with them on both test parts
# Stage 5: speechseq export of the int8 copy, its ONNX copy (what a short job runs, without
#          torch), its LM and its tuned decoding to speechseq/pretrained/ (asr-default.pt,
#          asr-default.onnx, lm-default.arpa, asr-default.decoding.json)
# Extra arguments after the options go to `speechseq train asr` as overrides (section.key=value).
set -euo pipefail
cd "$(dirname "$0")"

stage=1
stop_stage=5
while [ $# -gt 0 ]; do
  case "$1" in
    --stage) stage=$2; shift 2 ;;
    --stop-stage) stop_stage=$2; shift 2 ;;
    *) break ;;
  esac
done
exp_dir=${EXP_DIR:-exp/bigru_ctc}

if [ "$stage" -le 1 ] && [ "$stop_stage" -ge 1 ]; then
  bash prepare.sh
fi

if [ "$stage" -le 2 ] && [ "$stop_stage" -ge 2 ]; then
  speechseq train asr hparams/train.yaml --resume "train.out_dir=$exp_dir" "$@"
fi

if [ "$stage" -le 3 ] && [ "$stop_stage" -ge 3 ]; then
  parts="test_seen test_heldout"
  if [ -f data/dev_heldout.jsonl ]; then parts="dev_heldout $parts"; fi
  for part in $parts; do
    echo "== $part, greedy"
    speechseq evaluate "$exp_dir/best.pt" "data/$part.jsonl" --decoder greedy \
      --output "$exp_dir/$part-greedy.jsonl" --overwrite
  done
fi

if [ "$stage" -le 4 ] && [ "$stop_stage" -ge 4 ]; then
  # Train sentences only (field 0: the normalised text): no dev or test sentence is in the LM.
  speechseq lm build data/text/train.txt -o "$exp_dir/lm-default.arpa" --field 0 --overwrite
  speechseq export "$exp_dir/best.pt" -o "$exp_dir/int8.pt" --int8 --overwrite
  python local/tune_decoder.py "$exp_dir/int8.pt" data/dev.jsonl "$exp_dir/lm-default.arpa" \
    --out "$exp_dir/int8.decoding.json"
  python local/no_speech.py "$exp_dir/int8.pt" data/dev.jsonl --write "$exp_dir/int8.decoding.json"
  for part in test_seen test_heldout; do
    echo "== $part, int8, beam + LM as tuned in $exp_dir/int8.decoding.json"
    speechseq evaluate "$exp_dir/int8.pt" "data/$part.jsonl" \
      --output "$exp_dir/$part-beam.jsonl" --overwrite
  done
fi

if [ "$stage" -le 5 ] && [ "$stop_stage" -ge 5 ]; then
  pretrained=../../../speechseq/pretrained
  # int8 weights (a quarter of the float32 file) with the LM and tuning beside them; the ONNX
  # copy stores the same int8 weights
  speechseq export "$exp_dir/int8.pt" -o "$pretrained/asr-default.pt" --int8 --onnx --overwrite
fi
