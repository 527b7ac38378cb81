"""Tolerances derived from float32 arithmetic, for comparing one quantity computed two ways.

The same log-probabilities computed in two layouts (a prompt alone or left-padded in a batch,
the KV-cached sampling loop or one teacher-forced pass, another thread count or CPU kernel set)
differ only by rounding: every reduction (a dot product over the hidden size, a softmax over the
codebook, attention over the sequence) is summed in another order, and each step contributes
about one float32 epsilon, relative to the magnitudes involved. Through the tiny models' few
layers this stays far below 2**10 eps (measured: at most 1.7e-5 absolute on |log p| <= 10, with
1 and 2 threads and with ATEN_CPU_CAPABILITY=default), while a real bug (a wrong mask, position
id, branch or token) moves log-probs by 1e-2 or more.
"""

import torch

FLOAT32_EPS = torch.finfo(torch.float32).eps
SAME_MATHS = {"rtol": 2**10 * FLOAT32_EPS, "atol": 2**10 * FLOAT32_EPS}
"""assert_close keyword arguments for one float32 quantity computed in two layouts (~1.2e-4)."""
LOGPROB_BOUND = SAME_MATHS["atol"] + SAME_MATHS["rtol"] * 20.0
"""The largest difference allowed between two layouts' log-probs of a token with log p >= -20
(~2.6e-3): also how far from 1 a first-update importance ratio may be."""
