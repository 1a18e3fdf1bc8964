"""``python -m speechseq`` runs the command line (as torchrun needs)."""

from speechseq.cli import main

main()
