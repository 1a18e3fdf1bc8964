#!/usr/bin/env bash
# Build a multi-speaker English ASR corpus (~24 h of train audio) from Debian's speech
# synthesizers speaking sentences from Debian's fortunes. Deterministic: the same packages give
# the same corpus. About 15 minutes on 2 cores.
#
#   bash prepare.sh                          # stages 1-4
#   bash prepare.sh --stage 3 --stop-stage 3 # just (resume) the audio
#   bash prepare.sh --stage 5 --stop-stage 5 # optional: PocketSphinx spot check
#   bash prepare.sh --stage 6 --stop-stage 6 # the extra voices for fine-tuning (non-free packages)
#
# Stage 1: sentences from fortunes -> data/text/{train,dev,test_seen,test_heldout}.txt
# Stage 2: check every voice speaks; give each sentence its voice(s) -> data/plan/*.tsv
# Stage 3: synthesize 16 kHz WAVs -> data/wav/<split>/<voice>/ (resumable, --nj processes)
# Stage 4: manifests data/{train,dev,test_seen,test_heldout}.jsonl and data/voices.json
# Stage 5: recognise a few utterances per voice with PocketSphinx (needs pip install pocketsphinx)
# Stage 6: train_extra (train sentences, pico and RHVoice voices) and dev_heldout (dev sentences,
#          MBROLA voices): check, synthesize, manifests. Needs stage 2's plans and Debian's
#          contrib and non-free components (see README.md).
set -euo pipefail
cd "$(dirname "$0")"

stage=1
stop_stage=4
nj=2
fortunes=/usr/share/games/fortunes
while [ $# -gt 0 ]; do
  case "$1" in
    --stage) stage=$2; shift 2 ;;
    --stop-stage) stop_stage=$2; shift 2 ;;
    --nj) nj=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done

synth_packages="espeak-ng flite festival festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts sox"

need_command() {  # need_command COMMAND PACKAGES
  if ! command -v "$1" > /dev/null; then
    echo "missing $1: apt-get install -y $2" >&2
    exit 1
  fi
}

need_path() {  # need_path PATH PACKAGES
  if [ ! -e "$1" ]; then
    echo "missing $1: apt-get install -y $2" >&2
    exit 1
  fi
}

need_synthesizers() {
  need_command espeak-ng "$synth_packages"
  need_command flite "$synth_packages"
  need_command festival "$synth_packages"
  need_command sox "$synth_packages"
  need_path /usr/share/festival/voices/english/kal_diphone "festvox-kallpc16k"
  need_path /usr/share/festival/voices/english/ked_diphone "festvox-kdlpc16k"
  need_path /usr/share/festival/voices/us/cmu_us_slt_arctic_hts "festvox-us-slt-hts"
}

extra_packages="libttspico-utils rhvoice rhvoice-english mbrola mbrola-us1 mbrola-us2 mbrola-us3 mbrola-en1"

need_extra_synthesizers() {
  need_command espeak-ng "$synth_packages"
  need_command sox "$synth_packages"
  need_command pico2wave "$extra_packages"
  need_command RHVoice-test "$extra_packages"
  need_command mbrola "$extra_packages"
  for voice in us1 us2 us3 en1; do
    need_path "/usr/share/mbrola/$voice" "mbrola-$voice"
  done
}

run_stage() {  # run_stage N: true if N is within [stage, stop_stage]
  [ "$stage" -le "$1" ] && [ "$stop_stage" -ge "$1" ]
}

if run_stage 1; then
  need_path "$fortunes/fortunes" fortunes
  need_path /usr/share/dict/american-english wamerican
  echo "stage 1: sentences from $fortunes"
  python local/prepare_text.py "$fortunes" data/text
fi

if run_stage 2; then
  need_synthesizers
  echo "stage 2: checking every voice, then assigning voices to sentences"
  python local/voices.py --check data/voice_check
  python local/assign_voices.py data/text data/plan
fi

if run_stage 3; then
  need_synthesizers
  echo "stage 3: synthesizing into data/wav with $nj processes"
  start=$SECONDS
  python local/synthesize.py data/plan data/wav --jobs "$nj"
  echo "stage 3 took $((SECONDS - start)) s"
fi

if run_stage 4; then
  echo "stage 4: manifests"
  python local/make_manifests.py data/plan data/wav data | tee data/summary.txt
fi

if run_stage 5; then
  if ! python -c "import pocketsphinx" 2> /dev/null; then
    echo "stage 5 needs PocketSphinx: pip install pocketsphinx" >&2
    exit 1
  fi
  echo "stage 5: PocketSphinx spot check"
  python local/spot_check.py data --per-voice 5
fi

if run_stage 6; then
  need_extra_synthesizers
  need_path data/plan/train_extra.tsv "nothing: run stage 2 first"
  echo "stage 6: extra train voices and held-out dev voices"
  python local/voices.py --check data/voice_check --roles extra dev_heldout
  start=$SECONDS
  python local/synthesize.py data/plan data/wav --jobs "$nj" --splits train_extra dev_heldout
  echo "stage 6 synthesis took $((SECONDS - start)) s"
  python local/make_manifests.py data/plan data/wav data --splits train_extra dev_heldout \
    --voices-json voices_extra.json | tee data/summary_extra.txt
fi
