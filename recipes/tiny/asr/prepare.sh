#!/usr/bin/env bash
# Build the tiny espeak-ng corpus and its manifests.
#
#   bash prepare.sh                      # all stages
#   bash prepare.sh --stage 2 --stop-stage 2
#
# Stage 1: synthesize ~80 short utterances with espeak-ng (needs: apt-get install espeak-ng).
# Stage 2: write data/{train,dev,test}.jsonl with `speechseq data manifest`.
set -euo pipefail
cd "$(dirname "$0")"

stage=1
stop_stage=2
while [ $# -gt 0 ]; do
  case "$1" in
    --stage) stage=$2; shift 2 ;;
    --stop-stage) stop_stage=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done

if [ "$stage" -le 1 ] && [ "$stop_stage" -ge 1 ]; then
  if ! command -v espeak-ng > /dev/null; then
    echo "stage 1 needs espeak-ng: apt-get install -y espeak-ng" >&2
    exit 1
  fi
  echo "stage 1: synthesizing the corpus into data/"
  python local/make_data.py data
fi

if [ "$stage" -le 2 ] && [ "$stop_stage" -ge 2 ]; then
  echo "stage 2: manifests"
  for part in train dev test; do
    speechseq data manifest "data/$part" --output "data/$part.jsonl" --overwrite
  done
fi
