"""nanoGPT's (current_shard, current_position) state, a window carried over by walking the shards, the epoch's end found by counting what is left"""


class DistributedDataLoader:
    def __init__(self, filenames, B, T, process_rank=0, num_processes=1):
        self.B, self.T = B, T
        self.process_rank, self.num_processes = process_rank, num_processes
        self.files = list(filenames)
        self.tokens = [read_datafile(f) for f in self.files]
        if sum(len(t) for t in self.tokens) < B * T * num_processes + 1:
            raise ValueError("not enough tokens for one step")
        self.reset()

    def reset(self):
        self.current_shard = 0
        self.current_position = 0
        self.epoch = 0
        self._normalise()

    def _normalise(self):
        while self.current_shard < len(self.tokens) and self.current_position >= len(self.tokens[self.current_shard]):
            self.current_position -= len(self.tokens[self.current_shard])
            self.current_shard += 1

    def _remaining(self):
        rest = sum(len(t) for t in self.tokens[self.current_shard :])
        return rest - self.current_position

    def _take(self, shard, position, count):
        out = []
        while count > 0:
            chunk = self.tokens[shard][position : position + count]
            out.extend(int(t) for t in chunk)
            count -= len(chunk)
            shard, position = shard + 1, 0
        return out

    def next_batch(self):
        B, T = self.B, self.T
        if self._remaining() < B * T * self.num_processes + 1:
            self.current_shard, self.current_position = 0, 0
            self.epoch += 1
            self._normalise()
        shard, position = self.current_shard, self.current_position + self.process_rank * B * T
        while position >= len(self.tokens[shard]):
            position -= len(self.tokens[shard])
            shard += 1
        buf = torch.tensor(self._take(shard, position, B * T + 1), dtype=torch.long)
        self.current_position += B * T * self.num_processes
        self._normalise()
        return buf[:-1].view(B, T), buf[1:].view(B, T)

    def state_dict(self):
        return {"shard": self.current_shard, "position": self.current_position, "epoch": self.epoch}

    def load_state_dict(self, state):
        self.current_shard = int(state["shard"])
        self.current_position = int(state["position"])
        self.epoch = int(state["epoch"])
