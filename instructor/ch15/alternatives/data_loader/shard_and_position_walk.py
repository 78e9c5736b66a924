"""build-nanogpt's (current_shard, current_position) state walked shard by shard, with no global offset and no bisect"""

import numpy as np
import torch


class DistributedDataLoader:
    def __init__(self, filenames, B: int, T: int, process_rank: int = 0, num_processes: int = 1):
        self.B, self.T = B, T
        self.process_rank, self.num_processes = process_rank, num_processes
        self.tokens = [read_datafile(f) for f in filenames]
        self.reset()

    def _normalise(self):
        # a position at (or past) the end of a shard belongs to the next shard, skipping empty ones
        while self.current_shard + 1 < len(self.tokens) and self.current_position >= len(
            self.tokens[self.current_shard]
        ):
            self.current_position -= len(self.tokens[self.current_shard])
            self.current_shard += 1

    def reset(self) -> None:
        self.current_shard, self.current_position, self.epoch = 0, 0, 0
        self._normalise()

    def _remaining(self) -> int:
        left = len(self.tokens[self.current_shard]) - self.current_position
        return left + sum(len(t) for t in self.tokens[self.current_shard + 1 :])

    def _read(self, shard, position, skip, count):
        """`count` tokens starting `skip` tokens after (shard, position)."""
        position += skip
        out = []
        while count:
            available = len(self.tokens[shard]) - position
            if available <= 0:
                shard, position = shard + 1, position - len(self.tokens[shard])
                continue
            n = min(available, count)
            out.append(np.array(self.tokens[shard][position : position + n], dtype=np.int64))
            position, count = position + n, count - n
        return np.concatenate(out)

    def next_batch(self):
        B, T = self.B, self.T
        per_step = B * T * self.num_processes
        if self._remaining() < per_step + 1:
            self.current_shard, self.current_position = 0, 0
            self._normalise()
            self.epoch += 1
        buf = torch.tensor(self._read(self.current_shard, self.current_position, self.process_rank * B * T, B * T + 1))
        x, y = buf[:-1].reshape(B, T), buf[1:].reshape(B, T)
        self.current_position += per_step
        self._normalise()
        return x, y

    def state_dict(self) -> dict:
        return {
            "current_shard": int(self.current_shard),
            "current_position": int(self.current_position),
            "epoch": int(self.epoch),
        }

    def load_state_dict(self, state: dict) -> None:
        self.current_shard = int(state["current_shard"])
        self.current_position = int(state["current_position"])
        self.epoch = int(state["epoch"])
