"""one global offset located in the shards with np.searchsorted over cumulative ends; the window gathered by torch.cat"""


class DistributedDataLoader:
    def __init__(self, filenames, B, T, process_rank=0, num_processes=1):
        self.B, self.T, self.rank, self.world = B, T, process_rank, num_processes
        self.maps = [read_datafile(name) for name in filenames]
        self.ends = np.cumsum([len(m) for m in self.maps])
        self.reset()

    def reset(self):
        self.pos, self.epoch = 0, 0

    def _window(self, start, length):
        parts = []
        while length:
            index = int(np.searchsorted(self.ends, start, side="right"))
            begin = int(self.ends[index - 1]) if index else 0
            piece = torch.from_numpy(self.maps[index][start - begin : start - begin + length].astype(np.int64))
            parts.append(piece)
            start += len(piece)
            length -= len(piece)
        return torch.cat(parts)

    def next_batch(self):
        span = self.B * self.T
        if self.pos + span * self.world + 1 > int(self.ends[-1]):
            self.pos = 0
            self.epoch += 1
        window = self._window(self.pos + self.rank * span, span + 1)
        self.pos += span * self.world
        return window[:span].reshape(self.B, self.T), window[1:].reshape(self.B, self.T)

    def state_dict(self):
        shard = int(np.searchsorted(self.ends, self.pos, side="right"))
        start = int(self.ends[shard - 1]) if shard else 0
        return {"shard_index": shard, "offset_in_shard": self.pos - start, "epoch": self.epoch}

    def load_state_dict(self, state):
        shard = state["shard_index"]
        self.pos = (int(self.ends[shard - 1]) if shard else 0) + state["offset_in_shard"]
        self.epoch = state["epoch"]
