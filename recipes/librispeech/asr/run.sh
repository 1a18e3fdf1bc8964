#!/usr/bin/env bash
# The LibriSpeech recipe: manifests, training (a GPU is assumed), WER on test-clean and test-other.
#
#   LIBRISPEECH_ROOT=/data bash recipes/librispeech/asr/run.sh
#   LIBRISPEECH_ROOT=/data bash recipes/librispeech/asr/run.sh train.epochs=10   # overrides
#
# Extra arguments override hparams/train.yaml (section.key=value). Re-running resumes training
# from exp/bigru_ctc/last.pt; if you override train.out_dir, set EXP_DIR to the same folder so
# evaluation finds the model. TRAIN_SUBSETS="train-clean-100 train-clean-360 train-other-500"
# trains on all 960 h (see prepare.sh).
set -euo pipefail
# prepare.sh makes a relative LIBRISPEECH_ROOT absolute itself, so run it before the cd.
bash "$(dirname "$0")/prepare.sh"
cd "$(dirname "$0")"

exp_dir=${EXP_DIR:-exp/bigru_ctc}
speechseq train asr hparams/train.yaml --resume "$@"

device=$(python -c 'import torch; print("cuda" if torch.cuda.is_available() else "cpu")')
for part in test-clean test-other; do
  echo "== $part"
  speechseq evaluate "$exp_dir/best.pt" "data/librispeech_$part.jsonl" --device "$device" \
    --output "$exp_dir/$part-results.jsonl" --overwrite
done
