"""The order in which training prompts are drawn: seeded, endless and resumable.

Every epoch is a fresh permutation of the records, drawn from (seed, epoch) alone, so the
position (epoch, index) is all a checkpoint needs to continue the same sequence. All processes
hold the same order and each takes its slice of every step's draw.
"""

from __future__ import annotations

import torch


class PromptOrder:
    """An endless stream of indices into `size` records: one seeded permutation per epoch."""

    def __init__(self, size: int, seed: int = 0) -> None:
        if size < 1:
            raise ValueError(f"size={size} must be >= 1 (a prompt set holds at least one prompt)")
        self.size = size
        self.seed = seed
        self.epoch = 0
        self.position = 0
        self._permutation = self._draw(0)

    def _draw(self, epoch: int) -> list[int]:
        """The permutation of epoch `epoch`, from the seed and the epoch only."""
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        return torch.randperm(self.size, generator=generator).tolist()

    def take(self, count: int) -> list[int]:
        """The next `count` indices (crossing into new epochs as needed)."""
        indices = []
        for _ in range(count):
            if self.position == self.size:
                self.epoch, self.position = self.epoch + 1, 0
                self._permutation = self._draw(self.epoch)
            indices.append(self._permutation[self.position])
            self.position += 1
        return indices

    def state_dict(self) -> dict[str, int]:
        """Plain ints: size, seed, epoch and position."""
        return {
            "size": self.size,
            "seed": self.seed,
            "epoch": self.epoch,
            "position": self.position,
        }

    def load_state_dict(self, state: dict[str, int]) -> None:
        """Continue from `state`; raise ValueError if it was drawn over another prompt count."""
        if state["size"] != self.size:
            raise ValueError(
                f"the checkpoint's prompt order covers {state['size']} prompts but prompts.train "
                f"now holds {self.size}; resume with the same training prompts"
            )
        self.seed, self.epoch, self.position = state["seed"], state["epoch"], state["position"]
        self._permutation = self._draw(self.epoch)
