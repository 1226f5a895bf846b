"""A barely trained GPT for the tests of the text tools (preferences, the
reward model, RLHF): they need its sampling and its plumbing, not its
quality. The `tiny_gpt` fixture (conftest.py) pretrains it once a session."""

# The architecture of the tiny GPT: a block of 16 characters.
TINY = {"policy.type": "gpt", "policy.hidden_size": 32, "policy.num_layers": 1, "policy.num_heads": 2,
        "env.context": 16, "env.prompt_len": 16}
# ...and its 20 iterations of pretraining.
TINY_PRETRAIN = {**TINY, "pretrain.batch_size": 32, "pretrain.max_iters": 20, "pretrain.eval_interval": 20,
                 "pretrain.eval_iters": 2, "pretrain.warmup_iters": 5, "pretrain.learning_rate": 3e-3,
                 "pretrain.sample_len": 8}
