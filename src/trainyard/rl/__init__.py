"""Reinforcement learning: PPO and DQN on Gymnasium environments, checkpointed, evaluated, registered and served.

`config` declares every setting, `defaults` holds per-environment hyperparameters (after the RL Zoo's),
`envs` makes and replays environments, `ppo` and `dqn` are the algorithms, `plan` trains one of them with
checkpoints and rollback, `evaluate` scores a policy on held-out seeds, `artifact` is the "rl-policy" kind,
`serving` adds POST /v1/act, `tune` searches hyperparameters within a time budget, and `run` is the driver
that records a run in the store (the one module to swap for the shared run driver).
"""
