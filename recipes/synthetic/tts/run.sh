#!/usr/bin/env bash
# The shipped voice, end to end: data, training, export.
#
#   bash recipes/synthetic/tts/run.sh                            # all stages
#   bash recipes/synthetic/tts/run.sh --stage 2 --stop-stage 2   # (resume) training only
#   bash recipes/synthetic/tts/run.sh train.max_minutes=2        # a smoke test
#   EXP_DIR=/scratch/tts RECOGNIZER=path/to/asr.pt bash recipes/synthetic/tts/run.sh
#
# Stage 1: bash prepare.sh (~3 h of flite slt, 1-2 minutes on 2 cores)
# Stage 2: speechseq train tts hparams/train.yaml --resume (re-running continues a killed run);
#          each validation logs the recognizer's CER on free-running dev sentences, if
#          RECOGNIZER (default: the shipped recognizer) exists
# Stage 3: export best.pt (weights and configs only) to speechseq/pretrained/tts-default.pt
# Extra arguments after the options go to `speechseq train tts` as overrides (section.key=value).
set -euo pipefail
cd "$(dirname "$0")"

stage=1
stop_stage=3
while [ $# -gt 0 ]; do
  case "$1" in
    --stage) stage=$2; shift 2 ;;
    --stop-stage) stop_stage=$2; shift 2 ;;
    *) break ;;
  esac
done
exp_dir=${EXP_DIR:-exp/tacotron}
recognizer=${RECOGNIZER:-../../../speechseq/pretrained/asr-default.pt}

if [ "$stage" -le 1 ] && [ "$stop_stage" -ge 1 ]; then
  bash prepare.sh
fi

if [ "$stage" -le 2 ] && [ "$stop_stage" -ge 2 ]; then
  listen=()
  if [ -f "$recognizer" ]; then
    listen=("validation.recognizer=$recognizer")
  else
    echo "no recognizer at $recognizer: training without the intelligibility check" >&2
  fi
  speechseq train tts hparams/train.yaml --resume "train.out_dir=$exp_dir" "${listen[@]}" "$@"
fi

if [ "$stage" -le 3 ] && [ "$stop_stage" -ge 3 ]; then
  python -c 'import sys; from speechseq.checkpoint import export_synthesizer as e; print(e(*sys.argv[1:], teacher="flite slt"))' \
    "$exp_dir/best.pt" ../../../speechseq/pretrained/tts-default.pt
fi
