"""Reward models: images + prompts -> one score per image (filled in by the reward issue)."""
