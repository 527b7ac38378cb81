"""The synthetic shapes world: scenes, captions, oracle and the tiny models trained on them."""
