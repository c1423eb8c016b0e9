"""``python -m prover.cli ...`` (also ``accelerate launch -m prover.cli train-policy ...``)."""

from prover.cli import main

main()
