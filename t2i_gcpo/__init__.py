"""t2i-gcpo: GCPO, GRPO and DAPO for text-to-image models that generate discrete image tokens."""

__version__ = "0.1.0"
