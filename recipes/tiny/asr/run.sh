#!/usr/bin/env bash
# The whole tiny recipe: data, training (a few minutes on 2 CPU cores), evaluation.
#
#   bash recipes/tiny/asr/run.sh                 # from anywhere
#   bash recipes/tiny/asr/run.sh train.epochs=5  # extra arguments override hparams/train.yaml
#
# Re-running resumes training from exp/tiny/last.pt.
set -euo pipefail
cd "$(dirname "$0")"

bash prepare.sh
speechseq train asr hparams/train.yaml --resume "$@"
speechseq evaluate exp/tiny/best.pt data/test.jsonl --output exp/tiny/test-results.jsonl --overwrite
