#!/usr/bin/env bash
# The shipped recognizer, end to end: corpus, training, evaluation on both test parts, export.
#
#   bash recipes/synthetic/asr/run.sh                         # all stages
#   bash recipes/synthetic/asr/run.sh --stage 3 --stop-stage 3  # just evaluate
#   EXP_DIR=/scratch/bigru bash recipes/synthetic/asr/run.sh  # checkpoints elsewhere
#
# Stage 1: bash prepare.sh (the corpus, ~6-9 minutes on 2 cores)
# Stage 2: speechseq train asr hparams/train.yaml --resume (re-running continues a killed run)
# Stage 3: speechseq evaluate on data/test_seen.jsonl and data/test_heldout.jsonl
# Stage 4: export best.pt (weights and configs only) to speechseq/pretrained/asr-default.pt
# Extra arguments after the options go to `speechseq train asr` as overrides (section.key=value).
set -euo pipefail
cd "$(dirname "$0")"

stage=1
stop_stage=4
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
  for part in test_seen test_heldout; do
    echo "== $part"
    speechseq evaluate "$exp_dir/best.pt" "data/$part.jsonl" \
      --output "$exp_dir/$part-results.jsonl" --overwrite
  done
fi

if [ "$stage" -le 4 ] && [ "$stop_stage" -ge 4 ]; then
  python -c 'import sys; from speechseq.checkpoint import export_recognizer as e; print(e(*sys.argv[1:]))' \
    "$exp_dir/best.pt" ../../../speechseq/pretrained/asr-default.pt
fi
