"""Pretraining a GPT for real, with chapter 15's code: `python -m llmcourse.pretrain --config FILE`.

`config` reads the settings (a TOML file and `--key value` overrides), `throughput` knows the
peak FLOP/s that MFU is measured against, and `train` runs the loop, under `torchrun` as well
as in one process. `python -m llmcourse.pretrain_data` writes the shards it trains on.
"""
