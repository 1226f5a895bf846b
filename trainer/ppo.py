"""PPO with GAE, in the CleanRL style: one file, every step of the algorithm in
order. Collect a rollout of `horizon` steps from every env, compute advantages
with GAE, then run several epochs of clipped policy-gradient updates over
minibatches of it; repeat.

The data path: the env writes observations, rewards and dones into numpy
buffers it owns; `torch.from_numpy` views them without a copy. On CUDA those
same buffers are page-locked in place (cudaHostRegister), so each step's
observations go to the GPU with one non-blocking copy and the actions come
back with one copy into the env's action buffer. On the CPU the same code
copies nothing but the rollout storage itself. All rollout storage is
allocated once, before the loop (tests/test_ppo.py checks that every step
uses it and the env's own buffers).

With the multiprocessing backend's async mode (vec.batch_size < num_envs)
the rollout goes batch by batch: the policy acts on one batch while the
worker processes step the others, overlapping env and inference.
"""
import copy
import json
import os
import time
from collections import deque
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist

import puffer
from puffer.config import as_namespace
from puffer.models import make_policy
from puffer.vector import available_memory
from puffer.trainer.checkpoint import CHECKPOINT_NAME, load_checkpoint, save_checkpoint
from puffer.trainer.dashboard import Dashboard
from puffer.trainer.device import seed_and_device
from puffer.trainer.flops import forward_flops_per_sample, peak_flops, training_flops_per_sample
from puffer.trainer.gae import compute_gae


def host_tensor(array, device):
    """A torch view of a numpy buffer. On CUDA its memory is page-locked in
    place so that copies to and from the GPU can be asynchronous."""
    tensor = torch.from_numpy(array)
    if device.type == "cuda":
        torch.cuda.cudart().cudaHostRegister(tensor.data_ptr(), tensor.numel() * tensor.element_size(), 0)
    return tensor


def make_env(env_name, config):
    vec = config["vec"]
    if vec["backend"] == "multiprocessing":
        return puffer.make(env_name, num_envs=vec["num_envs"], backend="multiprocessing",
                           num_workers=vec["num_workers"] or None, batch_size=vec["batch_size"] or None,
                           timeout=vec["worker_timeout"] or None, **config["env"])
    if vec["num_workers"] or vec["batch_size"]:
        raise ValueError("vec.num_workers and vec.batch_size are for vec.backend = 'multiprocessing'")
    return puffer.make(env_name, num_envs=vec["num_envs"], backend=vec["backend"], **config["env"])


def train(env_name, config, run_dir, resume=None, init=None, live=None):
    """Trains a policy on `env_name` with `config` (see puffer.config), writing
    config.json, metrics.jsonl and checkpoint.pt into `run_dir`. `resume`: a
    checkpoint (or run directory) to continue from. `init`: weights to start
    from (a pretrained language model or a PPO checkpoint); with
    train.kl_coef > 0 a frozen copy of them anchors the policy by a KL
    penalty in the reward, as in RL fine-tuning of language models.
    Returns a summary dict.

    Started by torchrun (`torchrun --nproc_per_node N -m puffer train ENV`),
    it trains data-parallel: every rank steps its own envs (other seeds) and
    computes gradients on its own rollout; the gradients are averaged across
    ranks before each step, so all ranks keep the same parameters; rank 0
    alone writes the run. total_steps counts the steps of all ranks."""
    args = as_namespace(config).train
    world_size, rank = int(os.environ.get("WORLD_SIZE", "1")), int(os.environ.get("RANK", "0"))
    is_main = rank == 0
    run_dir = Path(run_dir)
    # Each rank its own sampling noise (rank 0 of one process: the seed itself).
    device = seed_and_device(args, seed=args.seed * world_size + rank)
    if world_size > 1:
        if device.type == "cuda":
            device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")

    env = make_env(env_name, config)
    try:
        setup = set_up(env, config, args, device, world_size, rank, resume, init)
    except BaseException:
        env.close()  # a failed start leaves no workers and no run directory behind
        raise
    policy, reference, optimizer, split, minibatch_size, num_updates, global_step, update, wall_time = setup
    if is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "config.json").write_text(json.dumps({"env_name": env_name, **config}, indent=2))
    num_envs, horizon = env.num_envs, args.horizon
    # The envs step in batches of rows: one batch of all in-process; several
    # in the multiprocessing backend's async mode, which steps the others
    # while the policy computes one batch's actions.
    batches = [slice(first, first + env.batch_size) for first in range(0, num_envs, env.batch_size)]
    batch_size = num_envs * horizon
    flops_per_sample = training_flops_per_sample(
        forward_flops_per_sample(policy, env.single_observation_space, device), args.update_epochs,
        reference is not None)
    device_peak_flops = peak_flops(device)

    # Rollout storage, allocated once: [horizon, num_envs, ...].
    obs_space, act_space = env.single_observation_space, env.single_action_space
    obs = torch.zeros((horizon, num_envs, *obs_space.shape), dtype=torch.from_numpy(env.observations).dtype, device=device)
    actions = torch.zeros((horizon, num_envs, *act_space.shape), dtype=torch.from_numpy(env.actions).dtype, device=device)
    logprobs = torch.zeros((horizon, num_envs), device=device)
    values = torch.zeros((horizon, num_envs), device=device)
    starts = torch.zeros((horizon, num_envs), device=device)  # 1 where obs[t] begins an episode
    rewards = np.zeros((horizon, num_envs), np.float32)        # host side: written by the env, read by GAE
    dones = np.zeros((horizon, num_envs), np.uint8)
    bootstraps = np.zeros((horizon, num_envs), np.float32)     # gamma * V(final obs) on truncated steps
    kl_penalties = np.zeros((horizon, num_envs), np.float32)   # kl_coef * (log pi - log pi_reference)
    advantages = np.zeros((horizon, num_envs), np.float32)
    values_host = np.zeros((horizon, num_envs), np.float32)

    env_obs = host_tensor(env.observations, device)
    env_actions = host_tensor(env.actions, device)
    # Rank r's envs are envs r * num_envs ... of one large vector env: every
    # env of every rank draws its own seed.
    env.reset(seed=args.seed + update, index_offset=rank * num_envs)
    next_starts = torch.ones(num_envs, device=device)
    state = policy.initial_state(num_envs, device) if policy.is_recurrent else None
    episode_returns = np.zeros(num_envs, np.float64)
    recent_returns = deque(maxlen=100)
    env_log = {}
    timing = dict.fromkeys(("env", "inference", "copies", "learning"), 0.0)
    dashboard = Dashboard(f"puffer train {env_name}", run_dir / "metrics.jsonl", live=live,
                          logger=config["train"].get("logger", "none"),
                          config={"env_name": env_name, **config}) if is_main else None
    metrics = {}
    first_return = None  # the mean episode return of the first episodes: the untrained (or --init) policy's
    last_shown = 0.0
    start = time.perf_counter() - wall_time
    completed = global_step, update
    finished = False
    try:
        while update < num_updates:
            update += 1
            if args.anneal_lr:
                optimizer.param_groups[0]["lr"] = args.learning_rate * (1.0 - (update - 1) / num_updates)

            # 1. Rollout: step every env `horizon` times with the current policy.
            # Pass t acts for step t and records step t - 1 of each batch.
            rollout_state = None if state is None else tuple(s.clone() for s in state)
            with torch.inference_mode():
                for t in range(horizon + 1):
                    for rows in batches:
                        if t > 0:
                            t0 = time.perf_counter()
                            _, batch_rewards, terminals, truncations, infos = env.recv()
                            t1 = time.perf_counter()
                            rewards[t - 1, rows] = batch_rewards
                            np.logical_or(terminals, truncations, out=dones[t - 1, rows], casting="unsafe")
                            next_starts[rows] = torch.from_numpy(dones[t - 1, rows]).to(device, non_blocking=True)
                            bootstraps[t - 1, rows] = 0.0
                            cut = np.flatnonzero(truncations & ~terminals)
                            if cut.size:
                                # A cut-off episode still has a future: bootstrap it from
                                # the value of its last observation (not of the next
                                # episode's first, which is what the env now shows). One
                                # that also terminated (Gymnasium's TimeLimit sets both
                                # when it ends on its last allowed step) has none.
                                final = torch.from_numpy(infos["final_observations"][cut]).to(device)
                                cut_state = None if state is None else tuple(s[rows][cut] for s in state)
                                final_value = policy(final, cut_state, torch.zeros(len(cut), device=device))[1]
                                bootstraps[t - 1, rows][cut] = args.gamma * final_value.cpu().numpy()
                            t2 = time.perf_counter()
                            timing["env"] += t1 - t0
                            timing["inference"] += t2 - t1
                        if t == horizon:
                            continue
                        t0 = time.perf_counter()
                        obs[t, rows].copy_(env_obs[rows], non_blocking=True)
                        starts[t, rows] = next_starts[rows]
                        t1 = time.perf_counter()
                        batch_state = None if state is None else tuple(s[rows] for s in state)
                        params, value, batch_state = policy(obs[t, rows], batch_state, next_starts[rows])
                        if state is not None:
                            for s, new in zip(state, batch_state):
                                s[rows] = new
                        action, logprob = policy.head.sample(params)
                        actions[t, rows], logprobs[t, rows], values[t, rows] = action, logprob, value
                        if reference is not None:
                            ref_logprob = reference.head.log_prob_entropy(reference(obs[t, rows])[0], action)[0]
                            kl_penalties[t, rows] = args.kl_coef * (logprob - ref_logprob).cpu().numpy()
                        t2 = time.perf_counter()
                        env_actions[rows].copy_(action)
                        t3 = time.perf_counter()
                        env.send(env.actions)  # the buffer itself: the backend takes the batch's rows
                        t4 = time.perf_counter()
                        timing["copies"] += (t1 - t0) + (t3 - t2)
                        timing["inference"] += t2 - t1
                        timing["env"] += t4 - t3
                global_step += batch_size * world_size
                next_value = policy(env_obs.to(device), state, next_starts)[1]

            # 2. Advantages by GAE (compiled), returns as their targets.
            tick = time.perf_counter()
            values_host[:] = values.cpu().numpy()
            compute_gae(rewards + bootstraps - kl_penalties, values_host, dones, next_value.cpu().numpy(),
                        args.gamma, args.gae_lambda, advantages)
            b_advantages = torch.from_numpy(advantages).to(device)
            b_returns = b_advantages + values

            # 3. Learning: epochs of clipped PPO over shuffled minibatches.
            stats = []
            for epoch in range(args.update_epochs):
                for index in torch.randperm(split, device=device).split(minibatch_size):
                    def mb(tensor):
                        return minibatch(tensor, index, policy.is_recurrent)
                    if policy.is_recurrent:  # whole sequences of the chosen envs, from the rollout's start state
                        params, new_value, _ = policy.forward_sequence(
                            mb(obs), tuple(s[index] for s in rollout_state), mb(starts))
                    else:
                        params, new_value, _ = policy(mb(obs), None, None)
                    new_logprob, entropy = policy.head.log_prob_entropy(params, mb(actions))
                    log_ratio = new_logprob - mb(logprobs)
                    ratio = log_ratio.exp()
                    mb_advantages = mb(b_advantages)
                    if args.norm_adv:
                        mb_advantages = (mb_advantages - mb_advantages.mean()) / (mb_advantages.std() + 1e-8)
                    policy_loss = torch.max(-mb_advantages * ratio,
                                            -mb_advantages * ratio.clamp(1 - args.clip_coef, 1 + args.clip_coef)).mean()
                    mb_returns, mb_values = mb(b_returns), mb(values)
                    value_loss = (new_value - mb_returns) ** 2
                    if args.clip_vloss:
                        clipped = mb_values + (new_value - mb_values).clamp(-args.clip_coef, args.clip_coef)
                        value_loss = torch.max(value_loss, (clipped - mb_returns) ** 2)
                    value_loss = 0.5 * value_loss.mean()
                    entropy = entropy.mean()
                    loss = policy_loss - args.ent_coef * entropy + args.vf_coef * value_loss
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    if world_size > 1:
                        average_across_ranks([param.grad for param in policy.parameters()], world_size)
                    torch.nn.utils.clip_grad_norm_(policy.parameters(), args.max_grad_norm)
                    optimizer.step()
                    with torch.no_grad():
                        approx_kl = ((ratio - 1) - log_ratio).mean()
                        clip_fraction = ((ratio - 1).abs() > args.clip_coef).float().mean()
                        stats.append(torch.stack([policy_loss, value_loss, entropy, approx_kl, clip_fraction]))
                if args.target_kl:
                    if world_size > 1:  # every rank stops at the same epoch
                        average_across_ranks([approx_kl], world_size)
                    if approx_kl.item() > args.target_kl:
                        break
            timing["learning"] += time.perf_counter() - tick

            # 4. Record: episode statistics, losses, speed and where time went.
            for t in range(horizon):
                episode_returns += rewards[t]
                ended = dones[t].astype(bool)
                if ended.any():
                    recent_returns.extend(episode_returns[ended])
                    episode_returns[ended] = 0.0
            env_log = env.log() or env_log
            if first_return is None:
                first_return = env_log.get("episode_return")
            wall_time = time.perf_counter() - start
            losses = torch.stack(stats).mean(0).tolist()
            returns_np, values_np = b_returns.flatten().cpu().numpy(), values_host.flatten()
            var_returns = returns_np.var()
            metrics = {
                "update": update, "global_step": global_step, "wall_time": wall_time,
                "sps": global_step / max(wall_time, 1e-9),
                "mfu": flops_per_sample * global_step / max(wall_time, 1e-9) / device_peak_flops,
                "flops_per_sample": flops_per_sample, "peak_flops": device_peak_flops,
                **env_log,
                "mean_return_100": float(np.mean(recent_returns)) if recent_returns else None,
                **dict(zip(("policy_loss", "value_loss", "entropy", "approx_kl", "clip_fraction"), losses)),
                "explained_variance": float(1 - (returns_np - values_np).var() / var_returns) if var_returns > 0 else None,
                "learning_rate": optimizer.param_groups[0]["lr"],
                **({"kl_to_reference": float(kl_penalties.mean() / args.kl_coef)} if reference else {}),
                **{k: v / max(sum(timing.values()), 1e-9) for k, v in timing.items()},
            }
            completed = global_step, update  # what a checkpoint written from here on counts
            if world_size > 1 and update == num_updates:
                metrics["rank_divergence"] = rank_divergence(policy, world_size)
            if not is_main:
                continue
            dashboard.write(metrics)
            if wall_time - last_shown >= args.log_interval or update == num_updates:
                dashboard.show(metrics)
                last_shown = wall_time
            if update % args.checkpoint_interval == 0:
                save(run_dir, policy, reference, optimizer, env_name, config, global_step, update, wall_time)
        finished = True
    except KeyboardInterrupt:
        if is_main:
            dashboard.show(metrics)
            print("interrupted: saving a final checkpoint")
    finally:
        checkpoint = run_dir / CHECKPOINT_NAME
        if is_main:
            # Interrupted inside an update, the counts are those of the last
            # whole one, so that a resumed run does that update again.
            save(run_dir, policy, reference, optimizer, env_name, config, *completed, time.perf_counter() - start)
            dashboard.close()
        env.close()
        if world_size > 1:
            if finished:
                dist.barrier()  # rank 0 has saved: all ranks leave together
            dist.destroy_process_group()
    return {"env_name": env_name, "global_step": global_step, "wall_time": metrics.get("wall_time", 0.0),
            "first_episode_return": first_return,
            "sps": metrics.get("sps", 0.0), "episode_return": metrics.get("episode_return"),
            "mean_return_100": metrics.get("mean_return_100"), "score": metrics.get("score"),
            "checkpoint": str(checkpoint), "run_dir": str(run_dir)}


def set_up(env, config, args, device, world_size, rank, resume, init):
    """What training starts from: the policy (from `init`, or `resume`), its
    frozen KL reference, the optimizer, the minibatch split, the number of
    updates and the counters (global step, update, wall time) to go on from."""
    batch_size = env.num_envs * args.horizon
    check_rollout_memory(env, batch_size)
    policy = make_policy(config["policy"], env.single_observation_space, env.single_action_space).to(device)
    split = env.num_envs if policy.is_recurrent else batch_size  # recurrent minibatches hold whole env sequences
    if args.num_minibatches < 1 or split % args.num_minibatches:
        raise ValueError(f"train.num_minibatches ({args.num_minibatches}) must divide "
                         f"{'vec.num_envs' if policy.is_recurrent else 'num_envs * horizon'} ({split})")
    num_updates = max(1, -(-args.total_steps // (batch_size * world_size)))
    optimizer = torch.optim.Adam(policy.parameters(), lr=args.learning_rate, eps=1e-5)
    if init is not None:
        load_initial_weights(policy, init, device)
    # The KL anchor: the policy as it starts (the pretrained model), frozen.
    if args.kl_coef > 0 and policy.is_recurrent:
        raise ValueError("train.kl_coef needs a policy without recurrent state (mlp or gpt)")
    reference = copy.deepcopy(policy).eval().requires_grad_(False) if args.kl_coef > 0 else None
    global_step, update, wall_time = 0, 0, 0.0
    if resume is not None:
        # Loaded to the CPU: torch.set_rng_state takes a CPU tensor, and
        # load_state_dict copies the weights to the policy's device.
        state = load_checkpoint(resume, "cpu")
        policy.load_state_dict(state["policy"])
        optimizer.load_state_dict(state["optimizer"])
        if reference is not None:
            if "reference" not in state:
                raise ValueError(f"{resume} holds no KL reference (train.kl_coef was 0 when it was saved): "
                                 "resume it with --train.kl_coef 0, or start a new run with --init")
            reference.load_state_dict(state["reference"])
        global_step, update, wall_time = state["global_step"], state["update"], state["wall_time"]
        if rank == 0:  # its random state goes on; the others' noise must stay their own
            torch.set_rng_state(state["torch_rng"])
            if device.type == "cuda" and state.get("cuda_rng") is not None:
                torch.cuda.set_rng_state(state["cuda_rng"], device)
        else:
            torch.manual_seed((args.seed + update) * world_size + rank)
    if world_size > 1:  # the same start everywhere, whatever each rank loaded
        for param in policy.parameters():
            dist.broadcast(param.data, src=0)
    return (policy, reference, optimizer, split, split // args.num_minibatches, num_updates,
            global_step, update, wall_time)


def check_rollout_memory(env, batch_size):
    """A ValueError when the rollout storage (observations, actions and eight
    float32 columns of [horizon, num_envs]) would not fit in memory."""
    per_sample = env.observations[0].nbytes + env.actions[0].nbytes + 8 * 4
    needed, available = batch_size * per_sample, available_memory()
    if needed > available:
        raise ValueError(f"the rollout storage of train.horizon x vec.num_envs = {batch_size:,} samples needs "
                         f"{needed / 2**30:.1f} GiB, but only {available / 2**30:.1f} GiB of memory is available")


def load_initial_weights(policy, path, device):
    """Starts `policy` from a pretrained language model (puffer pretrain) or
    from the policy of a PPO checkpoint."""
    saved = load_checkpoint(path, device)
    if "policy" in saved:
        policy.load_state_dict(saved["policy"])
    elif "gpt" in saved and hasattr(policy, "gpt"):
        policy.gpt.load_state_dict(saved["gpt"])
    else:
        raise ValueError(f"{path} holds neither a policy nor a language model this policy can start from")


def average_across_ranks(tensors, world_size):
    """Replaces each tensor by its mean over the ranks, in one all-reduce."""
    flat = torch.cat([t.flatten() for t in tensors])
    dist.all_reduce(flat)
    flat /= world_size
    offset = 0
    for t in tensors:
        t.copy_(flat[offset:offset + t.numel()].view_as(t))
        offset += t.numel()


def rank_divergence(policy, world_size):
    """The largest difference of any parameter between two ranks (0.0 when
    they are in sync, as the averaged gradients should keep them)."""
    flat = torch.cat([param.detach().flatten() for param in policy.parameters()])
    gathered = [torch.empty_like(flat) for _ in range(world_size)]
    dist.all_gather(gathered, flat)
    return max(float((other - gathered[0]).abs().max()) for other in gathered)


def minibatch(tensor, index, recurrent):
    """A minibatch of a [horizon, num_envs, ...] rollout tensor: whole env
    columns (sequences) for a recurrent policy, else flat samples."""
    return tensor[:, index] if recurrent else tensor.flatten(0, 1)[index]


def save(run_dir, policy, reference, optimizer, env_name, config, global_step, update, wall_time):
    """The checkpoint: all that --resume needs to go on as if never stopped,
    the KL reference (the --init weights) included."""
    device = next(policy.parameters()).device
    path = run_dir / CHECKPOINT_NAME
    save_checkpoint(path, {
        "env_name": env_name, "config": config, "policy": policy.state_dict(),
        "reference": None if reference is None else reference.state_dict(),
        "optimizer": optimizer.state_dict(), "global_step": global_step, "update": update,
        "wall_time": wall_time, "torch_rng": torch.get_rng_state(),
        "cuda_rng": torch.cuda.get_rng_state(device) if device.type == "cuda" else None,
    })
    return path
