#!/usr/bin/env bash
# Text-to-speech data: one voice of the synthetic corpus (flite slt by default) speaking ~3 h of
# the corpus's train sentences, plus 30 of its dev sentences; none from its test sets.
# About 1-2 minutes on 2 cores.
#
#   bash prepare.sh                                   # stages 1-2
#   bash prepare.sh --voice festival-slt-hts          # another voice of ../asr/local/voices.py
#   bash prepare.sh --train 600                       # less audio (~40 minutes)
#
# Stage 1: the corpus's sentence lists (../asr/prepare.sh stage 1) if they are not there yet
# Stage 2: speak them -> data/wav/{train,dev}/*.wav, data/{train,dev}.jsonl (resumable)
set -euo pipefail
cd "$(dirname "$0")"

stage=1
stop_stage=2
voice=flite-slt
train=2800
dev=30
nj=2
while [ $# -gt 0 ]; do
  case "$1" in
    --stage) stage=$2; shift 2 ;;
    --stop-stage) stop_stage=$2; shift 2 ;;
    --voice) voice=$2; shift 2 ;;
    --train) train=$2; shift 2 ;;
    --dev) dev=$2; shift 2 ;;
    --nj) nj=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done

if [ "$stage" -le 1 ] && [ "$stop_stage" -ge 1 ]; then
  if [ ! -f ../asr/data/text/train.txt ] || [ ! -f ../asr/data/text/dev.txt ]; then
    echo "stage 1: sentence lists from ../asr/prepare.sh"
    bash ../asr/prepare.sh --stage 1 --stop-stage 1
  fi
fi

if [ "$stage" -le 2 ] && [ "$stop_stage" -ge 2 ]; then
  for cmd in flite sox; do
    command -v "$cmd" > /dev/null || { echo "missing $cmd: apt-get install -y flite festival festvox-us-slt-hts sox" >&2; exit 1; }
  done
  echo "stage 2: $voice speaks $train train and $dev dev sentences"
  python local/make_voice.py ../asr/data/text data --voice "$voice" --train "$train" \
    --dev "$dev" --jobs "$nj"
fi
