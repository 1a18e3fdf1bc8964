#!/usr/bin/env bash
# The shipped voice, end to end: data, durations, training, export.
#
#   bash recipes/synthetic/tts/run.sh                              # all stages (duration model)
#   bash recipes/synthetic/tts/run.sh --stage 3 --stop-stage 3     # (resume) training only
#   FINETUNE= bash recipes/synthetic/tts/run.sh                    # without the phone fine-tune
#   bash recipes/synthetic/tts/run.sh train.max_minutes=2          # a smoke test
#   CONFIG=hparams/train.yaml EXP_DIR=exp/tacotron bash recipes/synthetic/tts/run.sh  # attention
#   EXP_DIR=/scratch/tts RECOGNIZER=path/to/asr.pt bash recipes/synthetic/tts/run.sh
#
# Stage 1: bash prepare.sh (~3 h of flite slt, 1-2 minutes on 2 cores)
# Stage 2: per-character durations of every train and dev utterance, by CTC forced alignment
#          with RECOGNIZER, a recognizer of characters (default: the package's asr-char.pt;
#          speechseq tts durations; only for a config with model kind: duration); then, for
#          the fine-tune, those durations aligned to flite's own phone timings
#          (local/phone_durations.py -> data/*.phone.durations.jsonl)
# Stage 3: speechseq train tts CONFIG --resume (re-running continues a killed run); each
#          validation logs RECOGNIZER's CER on free-running dev sentences, if it exists. With the
#          default CONFIG, its best.pt is then fine-tuned on the phone durations (FINETUNE,
#          default hparams/duration_phone.yaml -> EXP_DIR_phone; FINETUNE= skips it)
# Stage 4: speechseq export of the last run's best.pt (float16 weights and configs only) to
#          speechseq/pretrained/tts-default.pt
# Stage 5: the neural vocoder on the recordings' own mels (hparams/vocoder.yaml -> exp/vocoder;
#          needs pip install 'speechseq[bench]' for its PESQ validation)
# Stage 6: fine-tuned on the shipped voice's own mels of the same recordings, half of each
#          batch on their own mels (hparams/vocoder_finetune.yaml -> exp/vocoder_finetune)
# Stage 7: the shipped voice carries the vocoder (speechseq export --vocoder; default stage 6's,
#          VOCODER=... for another)
# Extra arguments after the options go to `speechseq train tts` as overrides (section.key=value).
set -euo pipefail
cd "$(dirname "$0")"

stage=1
stop_stage=7
while [ $# -gt 0 ]; do
  case "$1" in
    --stage) stage=$2; shift 2 ;;
    --stop-stage) stop_stage=$2; shift 2 ;;
    *) break ;;
  esac
done
config=${CONFIG:-hparams/duration.yaml}
exp_dir=${EXP_DIR:-exp/duration}
if [ "$config" = hparams/duration.yaml ]; then
  finetune=${FINETUNE-hparams/duration_phone.yaml}
else
  finetune=${FINETUNE-}
fi
final_dir=$exp_dir
if [ -n "$finetune" ]; then final_dir=${exp_dir}_phone; fi
recognizer=${RECOGNIZER:-../../../speechseq/pretrained/asr-char.pt}

if [ "$stage" -le 1 ] && [ "$stop_stage" -ge 1 ]; then
  bash prepare.sh
fi

if [ "$stage" -le 2 ] && [ "$stop_stage" -ge 2 ]; then
  if grep -q '^ *kind: *duration' "$config"; then
    if [ ! -f "$recognizer" ]; then
      echo "error: the duration model's durations need a recognizer; none at $recognizer" >&2
      exit 2
    fi
    for part in train dev; do
      if [ -f "data/$part.durations.jsonl" ]; then
        echo "data/$part.durations.jsonl exists; delete it to measure again"
      else
        speechseq tts durations "data/$part.jsonl" "data/$part.durations.jsonl" \
          --recognizer "$recognizer" --config "$config"
      fi
      # the fine-tune's durations, aligned to the teacher's phone timings
      if [ -n "$finetune" ] && [ ! -f "data/$part.phone.durations.jsonl" ]; then
        python local/phone_durations.py "data/$part.durations.jsonl" \
          "data/$part.phone.durations.jsonl"
      fi
    done
  fi
fi

if [ "$stage" -le 3 ] && [ "$stop_stage" -ge 3 ]; then
  listen=()
  if [ -f "$recognizer" ]; then
    listen=("validation.recognizer=$recognizer")
  else
    echo "no recognizer at $recognizer: training without the intelligibility check" >&2
  fi
  speechseq train tts "$config" --resume "train.out_dir=$exp_dir" "${listen[@]}" "$@"
  if [ -n "$finetune" ]; then
    speechseq train tts "$finetune" --resume "train.out_dir=$final_dir" \
      "train.init_from=$exp_dir/best.pt" "${listen[@]}" "$@"
  fi
fi

if [ "$stage" -le 4 ] && [ "$stop_stage" -ge 4 ]; then
  speechseq export "$final_dir/best.pt" -o ../../../speechseq/pretrained/tts-default.pt \
    --note teacher="flite slt" --overwrite
fi

shipped=../../../speechseq/pretrained/tts-default.pt
# the vocoder stage 7 ships: stage 6's (RESULTS.md, 2026-12-04); VOCODER=exp/vocoder/best.pt
# ships stage 5's instead.
vocoder=${VOCODER:-exp/vocoder_finetune/best.pt}
if [ "$stage" -le 5 ] && [ "$stop_stage" -ge 5 ]; then
  speechseq train vocoder hparams/vocoder.yaml --resume "data.voice=$shipped"
fi

if [ "$stage" -le 6 ] && [ "$stop_stage" -ge 6 ]; then
  for part in train dev; do
    if [ ! -f "data/$part.phone.durations.jsonl" ]; then
      echo "error: data/$part.phone.durations.jsonl is missing: run stage 2 first" >&2
      exit 2
    fi
  done
  speechseq train vocoder hparams/vocoder_finetune.yaml --resume "data.voice=$shipped"
fi

if [ "$stage" -le 7 ] && [ "$stop_stage" -ge 7 ]; then
  speechseq export "$shipped" --float32 --vocoder "$vocoder" -o "$shipped" --overwrite
fi
