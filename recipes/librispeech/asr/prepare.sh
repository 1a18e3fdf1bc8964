#!/usr/bin/env bash
# LibriSpeech manifests from a copy you have already downloaded (this script downloads nothing).
#
#   LIBRISPEECH_ROOT=/data bash recipes/librispeech/asr/prepare.sh            # all stages
#   bash recipes/librispeech/asr/prepare.sh --root /data/LibriSpeech --stage 1 --stop-stage 1
#   TRAIN_SUBSETS="train-clean-100 train-clean-360 train-other-500" \
#     LIBRISPEECH_ROOT=/data bash recipes/librispeech/asr/prepare.sh        # 960 h of training data
#
# LIBRISPEECH_ROOT (or --root) is the folder holding LibriSpeech/ (or LibriSpeech/ itself), as
# unpacked from https://www.openslr.org/12: at least train-clean-100, dev-clean, test-clean and
# test-other.
# Stage 1: data/librispeech_<subset>.jsonl for every subset found (speechseq.data.preparers;
#          cached: a manifest that exists is kept, delete it to rebuild).
# Stage 2: data/train.jsonl = the training subsets chosen (default train-clean-100, about 100 h).
set -euo pipefail

stage=1
stop_stage=2
root=${LIBRISPEECH_ROOT:-}
train_subsets=${TRAIN_SUBSETS:-train-clean-100}
while [ $# -gt 0 ]; do
  case "$1" in
    --stage) stage=$2; shift 2 ;;
    --stop-stage) stop_stage=$2; shift 2 ;;
    --root) root=$2; shift 2 ;;
    --train-subsets) train_subsets=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
# Made absolute before the cd below, so a path relative to where you ran this still works.
if [ -n "$root" ] && [ -d "$root" ]; then
  root=$(cd "$root" && pwd)
fi
cd "$(dirname "$0")"

if [ "$stage" -le 1 ] && [ "$stop_stage" -ge 1 ]; then
  if [ -z "$root" ]; then
    echo "stage 1 needs your LibriSpeech copy:" \
      "LIBRISPEECH_ROOT=/path/to/folder/holding/LibriSpeech bash $0 (or --root PATH)." \
      "Download it from https://www.openslr.org/12 first; this recipe downloads nothing." >&2
    exit 1
  fi
  if [ ! -d "$root" ]; then
    echo "stage 1: LIBRISPEECH_ROOT=$root: no such folder (download LibriSpeech from" \
      "https://www.openslr.org/12 and unpack it there)" >&2
    exit 1
  fi
  echo "stage 1: manifests of $root into data/"
  python - "$root" data <<'PY'
import sys

from speechseq.data import read_manifest
from speechseq.data.preparers import prepare_librispeech
from speechseq.errors import SpeechseqError

try:
    manifests = prepare_librispeech(sys.argv[1], sys.argv[2])
except SpeechseqError as err:
    sys.exit(f"error: {err}")
for subset, path in manifests.items():
    utterances = read_manifest(path)
    hours = sum(u.duration for u in utterances) / 3600
    print(f"  {path}: {len(utterances)} utterances, {hours:.1f} h")
PY
fi

if [ "$stage" -le 2 ] && [ "$stop_stage" -ge 2 ]; then
  echo "stage 2: data/train.jsonl from $train_subsets"
  parts=()
  for subset in $train_subsets dev-clean test-clean test-other; do
    if [ ! -f "data/librispeech_$subset.jsonl" ]; then
      echo "stage 2: data/librispeech_$subset.jsonl is missing: is $subset unpacked under" \
        "LIBRISPEECH_ROOT? (then re-run stage 1)" >&2
      exit 1
    fi
  done
  for subset in $train_subsets; do
    parts+=("data/librispeech_$subset.jsonl")
  done
  # All manifests sit in data/, so relative audio paths stay valid in the concatenation.
  cat "${parts[@]}" > data/train.jsonl.tmp
  mv data/train.jsonl.tmp data/train.jsonl
  echo "  data/train.jsonl: $(wc -l < data/train.jsonl) utterances"
fi
