"""`python -m llmcourse.pretrain --config FILE` (or under torchrun with `-m llmcourse.pretrain`)."""

from llmcourse.pretrain.train import main

raise SystemExit(main())
