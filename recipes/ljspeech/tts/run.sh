#!/usr/bin/env bash
# A Tacotron-2-sized voice on LJSpeech-1.1, end to end: manifests, training (a GPU is assumed),
# export. Nothing is downloaded.
#
#   LJSPEECH_ROOT=/data/LJSpeech-1.1 bash recipes/ljspeech/tts/run.sh         # all stages
#   bash recipes/ljspeech/tts/run.sh --stage 2 --stop-stage 2                 # (resume) training
#   bash recipes/ljspeech/tts/run.sh --stage 3 --export ~/voices/lj.pt        # export only
#   LJSPEECH_ROOT=/data bash recipes/ljspeech/tts/run.sh train.epochs=100     # overrides
#
# LJSPEECH_ROOT (or --root) is LJSpeech-1.1/ (or the folder holding it), as unpacked from
# https://keithito.com/LJ-Speech-Dataset: metadata.csv and wavs/LJ001-0001.wav ...
# Stage 1: speechseq data prepare ljspeech ROOT data -> data/ljspeech_{all,train,dev,test}.jsonl
#          (a fixed split: 500 test, 100 dev, the rest train; cached: delete a manifest to redo it)
# Stage 2: speechseq train tts hparams/train.yaml --resume (re-running continues a killed run);
#          each validation logs a recognizer's CER on free-running dev sentences if RECOGNIZER
#          (default: the LibriSpeech recipe's best.pt) exists
# Stage 3: speechseq export of best.pt (float16 weights and configs only) to --export PATH
#          (EXPORT; default $EXP_DIR/ljspeech.pt)
# Extra arguments after the options go to `speechseq train tts` as overrides (section.key=value).
# If you override train.out_dir, set EXP_DIR to the same folder so stage 3 finds the model.
set -euo pipefail

stage=1
stop_stage=3
root=${LJSPEECH_ROOT:-}
export_path=${EXPORT:-}
while [ $# -gt 0 ]; do
  case "$1" in
    --stage) stage=$2; shift 2 ;;
    --stop-stage) stop_stage=$2; shift 2 ;;
    --root) root=$2; shift 2 ;;
    --export) export_path=$2; shift 2 ;;
    *) break ;;
  esac
done
# Made absolute before the cd below, so paths relative to where you ran this still work.
if [ -n "$root" ] && [ -d "$root" ]; then
  root=$(cd "$root" && pwd)
fi
if [ -n "$export_path" ]; then
  export_path=$(realpath -m "$export_path")
fi
cd "$(dirname "$0")"
exp_dir=${EXP_DIR:-exp/tacotron2}
recognizer=${RECOGNIZER:-../../librispeech/asr/exp/bigru_ctc/best.pt}
export_path=${export_path:-$exp_dir/ljspeech.pt}

if [ "$stage" -le 1 ] && [ "$stop_stage" -ge 1 ]; then
  if [ -z "$root" ] || [ ! -d "$root" ]; then
    echo "stage 1 needs your LJSpeech copy: LJSPEECH_ROOT=/path/to/LJSpeech-1.1 bash $0" \
      "(or --root PATH; now: '${root}'). Download it from https://keithito.com/LJ-Speech-Dataset" \
      "first; this recipe downloads nothing." >&2
    exit 1
  fi
  echo "stage 1: manifests of $root into data/"
  speechseq data prepare ljspeech "$root" data
fi

if [ "$stage" -le 2 ] && [ "$stop_stage" -ge 2 ]; then
  listen=()
  if [ -f "$recognizer" ]; then
    listen=("validation.recognizer=$recognizer")
  else
    echo "no recognizer at $recognizer: training without the intelligibility check" \
      "(best.pt goes by dev loss)" >&2
  fi
  speechseq train tts hparams/train.yaml --resume "train.out_dir=$exp_dir" "${listen[@]}" "$@"
fi

if [ "$stage" -le 3 ] && [ "$stop_stage" -ge 3 ]; then
  echo "stage 3: $exp_dir/best.pt -> $export_path"
  speechseq export "$exp_dir/best.pt" -o "$export_path" --note dataset=LJSpeech-1.1 --overwrite
fi
