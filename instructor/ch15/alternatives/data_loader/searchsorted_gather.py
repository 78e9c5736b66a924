"""a global offset mapped to shards with np.cumsum / np.searchsorted, the window gathered index by index through a vectorised shard lookup"""

import numpy as np
import torch


class DistributedDataLoader:
    def __init__(self, filenames, B: int, T: int, process_rank: int = 0, num_processes: int = 1):
        self.B, self.T, self.rank, self.world = B, T, process_rank, num_processes
        self.shards = [read_datafile(name) for name in filenames]
        sizes = np.array([len(s) for s in self.shards], dtype=np.int64)
        self.ends = np.cumsum(sizes)  # exclusive end of each shard in the stream
        self.begins = self.ends - sizes
        self.n_tokens = int(self.ends[-1]) if len(sizes) else 0
        self.reset()

    def reset(self) -> None:
        self.pos, self.epoch = 0, 0

    def _gather(self, start, count):
        idx = np.arange(start, start + count)
        which = np.searchsorted(self.ends, idx, side="right")  # first shard that ends after idx
        out = np.empty(count, dtype=np.int64)
        for s in np.unique(which):
            sel = which == s
            out[sel] = np.asarray(self.shards[s])[idx[sel] - self.begins[s]]
        return out

    def next_batch(self):
        bt = self.B * self.T
        if self.n_tokens - self.pos <= bt * self.world:  # fewer than B*T*N + 1 tokens left
            self.pos = 0
            self.epoch += 1
        window = torch.from_numpy(self._gather(self.pos + self.rank * bt, bt + 1))
        self.pos += bt * self.world
        return window[:bt].view(self.B, self.T), window[1:].view(self.B, self.T)

    def state_dict(self) -> dict:
        shard = int(np.searchsorted(self.begins, self.pos, side="right")) - 1
        return {
            "current_shard": shard,
            "current_position": int(self.pos - self.begins[shard]),
            "epoch": int(self.epoch),
        }

    def load_state_dict(self, state: dict) -> None:
        self.pos = int(self.begins[state["current_shard"]]) + int(state["current_position"])
        self.epoch = int(state["epoch"])
