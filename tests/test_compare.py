"""`puffer compare`'s Stable-Baselines3 side, run for real: SB3's PPO on
Gymnasium's CartPole-v1, and its policy played in puffer's CartPole."""
from puffer import compare


def test_sb3_learns_cartpole_and_its_policy_runs_in_ours():
    # A random policy averages about 22; 60 over the last 100 episodes needs learning.
    run = compare.run_sb3("cartpole", seed=0, threshold=60.0)
    assert run["solved"] and 0 < run["steps"] < compare.SB3_ZOO["cartpole"]["max_steps"], run
    returns = compare.transfer("cartpole", run["act"], run["act"], episodes=16)
    assert returns["sb3_in_puffer"] > 40 and returns["puffer_in_gymnasium"] > 40, returns
