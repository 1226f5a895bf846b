"""PPO with GAE, in the CleanRL style: every step of the algorithm in order.
`train` is the driver:

    rollout = Rollout(env, horizon, device)            # storage allocated once
    for each update:
        state = collect(rollout, env, policy, state)   # act, step, record
        advantages(rollout, gamma, lam)                # compiled GAE
        stats = update(policy, optimizer, rollout)     # epochs x minibatches of clipped PPO
        recorder.record(...)                           # logs, metrics.jsonl, atomic checkpoint

The data path: the env writes observations, rewards and dones into numpy
buffers it owns; `torch.from_numpy` views them without a copy. On CUDA those
same buffers are page-locked in place (cudaHostRegister), so each step's
observations go to the GPU with one non-blocking copy and the actions come
back with one copy into the env's action buffer. On the CPU the same code
copies nothing but the rollout storage itself. (The CUDA path has not run on
a GPU in this project's tests yet: no GPU was lent.)

Every policy has one interface (puffer.models): `initial_state` (None for a
policy without memory), `forward(obs, state, starts)` for one step and
`forward_sequence` for a [horizon, envs] rollout, so the trainer has one code
path. A recurrent policy's minibatches are whole env columns of the rollout
(what its state needs); a feed-forward policy's are single steps from the
whole rollout, as [1, batch] sequences: columns of correlated steps cost it
2-5x the time to solve LunarLander (see update).

The policy's parameters live in one flat tensor (and its gradient in
another), so that the optimizer step, gradient clipping and the data-parallel
all-reduce are a few operations on one tensor instead of a few per parameter:
on a CPU, with small policies, those per-op costs are much of the update.

With the multiprocessing backend's async mode (vec.batch_size < num_envs)
the rollout goes batch by batch: the policy acts on one batch while the
worker processes step the others, overlapping env and inference.
"""
import copy
import json
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

import puffer
from puffer.config import as_namespace
from puffer.models import make_policy
from puffer.trainer.checkpoint import CHECKPOINT_NAME, load_checkpoint, restore_rng, rng_state, save_checkpoint
from puffer.trainer.dashboard import Dashboard
from puffer.trainer.device import seed_and_device
from puffer.trainer.distributed import Distributed
from puffer.trainer.flops import forward_flops_per_sample, peak_flops, training_flops_per_sample
from puffer.trainer.gae import compute_gae
from puffer.vector import available_memory


def make_env(env_name, config):
    vec = config["vec"]
    if vec["backend"] == "multiprocessing":
        return puffer.make(env_name, num_envs=vec["num_envs"], backend="multiprocessing",
                           num_workers=vec["num_workers"] or None, batch_size=vec["batch_size"] or None,
                           timeout=vec["worker_timeout"] or None, **config["env"])
    if vec["num_workers"] or vec["batch_size"]:
        raise ValueError("vec.num_workers and vec.batch_size are for vec.backend = 'multiprocessing'")
    return puffer.make(env_name, num_envs=vec["num_envs"], backend=vec["backend"], **config["env"])


@dataclass
class Progress:
    global_step: int = 0   # env steps of all ranks
    update: int = 0        # updates done
    wall_time: float = 0.0


def train(env_name, config, run_dir, resume=None, init=None, live=None, on_update=None):
    """Trains a policy on `env_name` with `config` (see puffer.config), writing
    config.json, metrics.jsonl and checkpoint.pt into `run_dir`. `resume`: the
    checkpoint to continue from, as load_checkpoint read it (to the CPU). `init`: weights to start
    from (a pretrained language model or a PPO checkpoint); with
    train.kl_coef > 0 a frozen copy of them anchors the policy by a KL
    penalty in the reward, as in RL fine-tuning of language models.
    `on_update`, if given, is called with each update's metrics; when it
    returns True, training ends there (puffer sweep's time limit and pruning).
    Returns a summary dict.

    Started by torchrun (`torchrun --nproc_per_node N -m puffer train ENV`),
    it trains data-parallel (see puffer.trainer.distributed); total_steps
    counts the steps of all ranks, and rank 0 alone writes the run."""
    args = as_namespace(config).train
    distributed = Distributed()
    # Each rank its own sampling noise (one process: the seed itself).
    device = distributed.start(seed_and_device(args, seed=args.seed * distributed.world_size + distributed.rank))
    env = make_env(env_name, config)
    try:
        policy, reference, optimizer, progress = set_up(env, config, args, device, distributed, resume, init)
    except BaseException:
        env.close()  # a failed start leaves no workers and no run directory behind
        distributed.close(finished=False)
        raise
    batch_size = env.num_envs * args.horizon
    num_updates = max(1, -(-args.total_steps // (batch_size * distributed.world_size)))
    run_dir = Path(run_dir)
    if distributed.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "config.json").write_text(json.dumps({"env_name": env_name, **config}, indent=2))
    flops_per_sample = training_flops_per_sample(
        forward_flops_per_sample(policy, env.single_observation_space, device), args.update_epochs,
        reference is not None)
    recorder = Recorder(env_name, config, run_dir, live, env.num_envs, flops_per_sample, peak_flops(device),
                        distributed, progress)

    rollout = Rollout(env, args.horizon, device)
    # Rank r's envs are envs r * num_envs ... of one large vector env: every
    # env of every rank draws its own seed.
    env.reset(seed=args.seed + progress.update, index_offset=distributed.rank * env.num_envs)
    state = policy.initial_state(env.num_envs, device)
    finished = False
    try:
        while progress.update < num_updates:
            if args.anneal_lr:
                optimizer.param_groups[0]["lr"] = args.learning_rate * (1.0 - progress.update / num_updates)
            state = collect(rollout, env, policy, state, reference, args, recorder.timing)
            tick = time.perf_counter()
            advantages(rollout, args.gamma, args.gae_lambda)
            stats = update(policy, optimizer, rollout, args, distributed)
            recorder.timing["learning"] += time.perf_counter() - tick
            progress.update += 1
            progress.global_step += batch_size * distributed.world_size
            recorder.record(rollout, stats, env.log(), optimizer, last=progress.update == num_updates,
                            save=lambda: save(run_dir, policy, reference, optimizer, env_name, config, progress),
                            checkpoint_now=progress.update % args.checkpoint_interval == 0,
                            divergence=lambda: distributed.divergence(policy))
            if on_update is not None and on_update(recorder.metrics):
                break
        finished = True
    except KeyboardInterrupt:
        recorder.interrupted()
    finally:
        if distributed.is_main:
            # Interrupted inside an update, the counts are those of the last
            # whole one, so that a resumed run does that update again.
            save(run_dir, policy, reference, optimizer, env_name, config, recorder.completed())
        recorder.close()
        env.close()
        distributed.close(finished)
    return recorder.summary(run_dir / CHECKPOINT_NAME)


def set_up(env, config, args, device, distributed, resume, init):
    """What training starts from: the policy (from `init`, or `resume`) with
    its parameters in one flat tensor, its frozen KL reference, the optimizer
    and the progress to go on from. `resume` is a checkpoint read to the CPU."""
    check_rollout_memory(env, env.num_envs * args.horizon)
    policy = make_policy(config["policy"], env.single_observation_space, env.single_action_space).to(device)
    if args.num_minibatches > env.num_envs or env.num_envs % args.num_minibatches:
        raise ValueError(f"train.num_minibatches ({args.num_minibatches}) must divide vec.num_envs "
                         f"({env.num_envs}): a minibatch holds whole env columns of the rollout")
    if init is not None:
        load_initial_weights(policy, init, device)
    # The KL anchor: the policy as it starts (the pretrained model), frozen.
    if args.kl_coef > 0 and policy.is_recurrent:
        raise ValueError("train.kl_coef needs a policy without recurrent state (mlp or gpt)")
    reference = copy.deepcopy(policy).eval().requires_grad_(False) if args.kl_coef > 0 else None
    optimizer = torch.optim.Adam([flatten_parameters(policy)], lr=args.learning_rate, eps=1e-5, fused=True)
    progress = Progress()
    if resume is not None:
        policy.load_state_dict(resume["policy"])
        optimizer.load_state_dict(resume["optimizer"])
        if reference is not None:
            if resume.get("reference") is None:
                raise ValueError("the checkpoint to resume holds no KL reference (train.kl_coef was 0 when it "
                                 "was saved): resume it with --train.kl_coef 0, or start a new run with --init")
            reference.load_state_dict(resume["reference"])
        progress = Progress(resume["global_step"], resume["update"], resume["wall_time"])
        if distributed.is_main:  # its random state goes on; the others' noise must stay their own
            restore_rng(resume, device)
        else:
            torch.manual_seed((args.seed + progress.update) * distributed.world_size + distributed.rank)
    distributed.broadcast(optimizer.param_groups[0]["params"][0].data)  # the same start everywhere
    return policy, reference, optimizer, progress


def flatten_parameters(module):
    """Moves `module`'s parameters into one flat tensor, with a flat gradient:
    every parameter (and its .grad) becomes a view into them, and the flat
    tensor, returned, is what the optimizer steps. Gradients accumulate into
    the views in place, so they are zeroed, never set to None."""
    params = list(module.parameters())
    flat = torch.nn.Parameter(torch.cat([p.detach().flatten() for p in params]))
    flat.grad = torch.zeros_like(flat)
    offset = 0
    for p in params:
        p.data = flat.data[offset:offset + p.numel()].view_as(p)
        p.grad = flat.grad[offset:offset + p.numel()].view_as(p)
        offset += p.numel()
    return flat


class Rollout:
    """The storage of one rollout, allocated once: [horizon, num_envs, ...]
    on the policy's device for what the update reads, on the host (numpy) for
    what the env writes and GAE reads. `state` is the policy's state at the
    rollout's first step (None without memory)."""

    def __init__(self, env, horizon, device):
        n, obs_space, act_space = env.num_envs, env.single_observation_space, env.single_action_space
        self.horizon, self.num_envs, self.device = horizon, n, device
        self.obs = torch.zeros((horizon, n, *obs_space.shape), dtype=torch.from_numpy(env.observations).dtype,
                               device=device)
        self.actions = torch.zeros((horizon, n, *act_space.shape), dtype=torch.from_numpy(env.actions).dtype,
                                   device=device)
        self.logprobs = torch.zeros((horizon, n), device=device)
        self.values = torch.zeros((horizon, n), device=device)
        self.starts = torch.zeros((horizon, n), device=device)  # 1 where obs[t] begins an episode
        self.next_starts = torch.ones(n, device=device)
        self.next_value = torch.zeros(n, device=device)
        self.returns = torch.zeros((horizon, n), device=device)
        self.host_advantages = np.zeros((horizon, n), np.float32)   # written by GAE
        self.advantages = torch.from_numpy(self.host_advantages).to(device)  # the same memory on the CPU
        self.rewards = np.zeros((horizon, n), np.float32)
        self.dones = np.zeros((horizon, n), np.uint8)
        self.bootstraps = np.zeros((horizon, n), np.float32)     # gamma * V(final obs) on truncated steps
        self.kl_penalties = np.zeros((horizon, n), np.float32)   # kl_coef * (log pi - log pi_reference)
        self.state = None
        # The env's own buffers as tensors; on CUDA page-locked for async copies.
        self.env_obs, self.env_actions = host_tensor(env.observations, device), host_tensor(env.actions, device)
        # Rows the envs step together: all in-process; one batch each in the
        # multiprocessing backend's async mode.
        self.batches = [slice(first, first + env.batch_size) for first in range(0, n, env.batch_size)]


def host_tensor(array, device):
    """A torch view of a numpy buffer. On CUDA its memory is page-locked in
    place so that copies to and from the GPU can be asynchronous."""
    tensor = torch.from_numpy(array)
    if device.type == "cuda":
        torch.cuda.cudart().cudaHostRegister(tensor.data_ptr(), tensor.numel() * tensor.element_size(), 0)
    return tensor


def rows_of(state, rows):
    return None if state is None else tuple(s[rows] for s in state)


@torch.inference_mode()
def collect(rollout, env, policy, state, reference, args, timing):
    """Steps every env `horizon` times with the policy, recording into
    `rollout`; returns the policy's state after the last step. Pass t acts
    for step t and records step t - 1 of each batch of rows."""
    r, device = rollout, rollout.device
    r.state = None if state is None else tuple(s.clone() for s in state)
    for t in range(r.horizon + 1):
        for rows in r.batches:
            if t > 0:
                t0 = time.perf_counter()
                _, rewards, terminals, truncations, infos = env.recv()
                t1 = time.perf_counter()
                r.rewards[t - 1, rows] = rewards
                np.logical_or(terminals, truncations, out=r.dones[t - 1, rows], casting="unsafe")
                r.next_starts[rows] = torch.from_numpy(r.dones[t - 1, rows]).to(device, non_blocking=True)
                r.bootstraps[t - 1, rows] = 0.0
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
                    r.bootstraps[t - 1, rows][cut] = args.gamma * final_value.cpu().numpy()
                t2 = time.perf_counter()
                timing["env"] += t1 - t0
                timing["inference"] += t2 - t1
            if t == r.horizon:
                continue
            t0 = time.perf_counter()
            r.obs[t, rows].copy_(r.env_obs[rows], non_blocking=True)
            r.starts[t, rows] = r.next_starts[rows]
            t1 = time.perf_counter()
            params, value, batch_state = policy(r.obs[t, rows], rows_of(state, rows), r.next_starts[rows])
            if state is not None:
                for s, new in zip(state, batch_state):
                    s[rows] = new
            action, logprob = policy.head.sample(params)
            r.actions[t, rows], r.logprobs[t, rows], r.values[t, rows] = action, logprob, value
            if reference is not None:
                ref_logprob = reference.head.log_prob_entropy(reference(r.obs[t, rows])[0], action)[0]
                r.kl_penalties[t, rows] = args.kl_coef * (logprob - ref_logprob).cpu().numpy()
            t2 = time.perf_counter()
            r.env_actions[rows].copy_(action)
            t3 = time.perf_counter()
            env.send(env.actions)  # the buffer itself: the backend takes the batch's rows
            t4 = time.perf_counter()
            timing["copies"] += (t1 - t0) + (t3 - t2)
            timing["inference"] += t2 - t1
            timing["env"] += t4 - t3
    r.next_value.copy_(policy(r.env_obs.to(device), state, r.next_starts)[1])
    return state


def advantages(rollout, gamma, lam):
    """GAE (compiled, on the host) over the rollout, with truncated episodes
    bootstrapped and the KL penalty in the reward; returns = advantages + values."""
    r = rollout
    compute_gae(r.rewards + r.bootstraps - r.kl_penalties, r.values.cpu().numpy(), r.dones,
                r.next_value.cpu().numpy(), gamma, lam, r.host_advantages)
    if r.advantages.device.type != "cpu":
        r.advantages.copy_(torch.from_numpy(r.host_advantages), non_blocking=True)
    torch.add(r.advantages, r.values, out=r.returns)


def update(policy, optimizer, rollout, args, distributed):
    """Epochs of clipped PPO over shuffled minibatches; returns the mean losses
    and statistics. A recurrent policy's minibatches are whole env columns,
    each replayed from the rollout's start state; a feed-forward policy's are
    single steps drawn from the whole rollout, as [1, batch] sequences: on
    LunarLander a column minibatch (4 envs of 128 correlated steps) needed
    2-5x the time to solve, or never did, in seeds where steps needed 10-18 s."""
    r = rollout
    flat = optimizer.param_groups[0]["params"][0]
    stats = []
    steps_per_column = r.horizon if r.state is not None else 1
    obs, actions, logprobs, advs, returns, values, starts = (
        x.reshape(steps_per_column, -1, *x.shape[2:])
        for x in (r.obs, r.actions, r.logprobs, r.advantages, r.returns, r.values, r.starts))
    columns = obs.shape[1]
    for _ in range(args.update_epochs):
        for index in torch.randperm(columns, device=r.device).split(columns // args.num_minibatches):
            params, new_value, _ = policy.forward_sequence(obs[:, index], rows_of(r.state, index),
                                                           starts[:, index])
            new_logprob, entropy = policy.head.log_prob_entropy(params, actions[:, index])
            log_ratio = new_logprob - logprobs[:, index]
            ratio = log_ratio.exp()
            mb_advantages = advs[:, index]
            if args.norm_adv:
                mb_advantages = (mb_advantages - mb_advantages.mean()) / (mb_advantages.std() + 1e-8)
            policy_loss = torch.max(-mb_advantages * ratio,
                                    -mb_advantages * ratio.clamp(1 - args.clip_coef, 1 + args.clip_coef)).mean()
            mb_returns, mb_values = returns[:, index], values[:, index]
            value_loss = (new_value - mb_returns) ** 2
            if args.clip_vloss:
                clipped = mb_values + (new_value - mb_values).clamp(-args.clip_coef, args.clip_coef)
                value_loss = torch.max(value_loss, (clipped - mb_returns) ** 2)
            value_loss = 0.5 * value_loss.mean()
            entropy = entropy.mean()
            loss = policy_loss - args.ent_coef * entropy + args.vf_coef * value_loss
            flat.grad.zero_()
            loss.backward()
            distributed.average(flat.grad)
            # clip_grad_norm_ on one tensor, without its per-call overhead (10x these two ops)
            flat.grad.mul_((args.max_grad_norm / (flat.grad.norm() + 1e-6)).clamp_(max=1.0))
            adam_step(optimizer)
            with torch.no_grad():
                approx_kl = ((ratio - 1) - log_ratio).mean()
                clip_fraction = ((ratio - 1).abs() > args.clip_coef).float().mean()
                stats.append(torch.stack([policy_loss, value_loss, entropy, approx_kl, clip_fraction]))
        if args.target_kl:
            distributed.average(approx_kl)  # every rank stops at the same epoch
            if approx_kl.item() > args.target_kl:
                break
    return dict(zip(("policy_loss", "value_loss", "entropy", "approx_kl", "clip_fraction"),
                    torch.stack(stats).mean(0).tolist()))


def adam_step(optimizer):
    """optimizer.step() of the fused Adam over the one flat parameter: the
    same kernel, called directly. At these sizes Adam.step's Python around
    it (hooks, param groups, grouping tensors by device) takes about ten
    times the kernel's 12 us. The first step, which creates the state, goes
    through Adam.step."""
    group = optimizer.param_groups[0]
    flat = group["params"][0]
    state = optimizer.state.get(flat)
    if not state:
        optimizer.step()
        return
    state["step"].add_(1)  # as Adam.step does before the kernel
    beta1, beta2 = group["betas"]
    torch._fused_adam_([flat], [flat.grad], [state["exp_avg"]], [state["exp_avg_sq"]], [], [state["step"]],
                       amsgrad=False, lr=group["lr"], beta1=beta1, beta2=beta2,
                       weight_decay=group["weight_decay"], eps=group["eps"], maximize=False)


class Recorder:
    """What a run keeps of itself: episode returns, where the time went, the
    metrics of each update (dashboard, metrics.jsonl, loggers) and the
    checkpoints. Only rank 0 writes."""

    def __init__(self, env_name, config, run_dir, live, num_envs, flops_per_sample, peak, distributed, progress):
        self.args, self.distributed, self.progress = as_namespace(config).train, distributed, progress
        self.env_name, self.flops_per_sample, self.peak = env_name, flops_per_sample, peak
        self.dashboard = Dashboard(f"puffer train {env_name}", run_dir / "metrics.jsonl", live=live,
                                   logger=config["train"].get("logger", "none"),
                                   config={"env_name": env_name, **config}) if distributed.is_main else None
        self.timing = dict.fromkeys(("env", "inference", "copies", "learning"), 0.0)
        self.episode_returns = np.zeros(num_envs, np.float64)
        self.recent_returns = deque(maxlen=100)
        self.env_log, self.metrics, self.first_return = {}, {}, None
        self.start = time.perf_counter() - progress.wall_time
        self.last_shown = 0.0
        self.whole = Progress(progress.global_step, progress.update, progress.wall_time)

    def record(self, rollout, stats, env_log, optimizer, last, save, checkpoint_now, divergence):
        """Episode statistics, losses, speed and the time split of the update
        just done: shown, written, and checkpointed every checkpoint_interval."""
        for t in range(rollout.horizon):
            self.episode_returns += rollout.rewards[t]
            ended = rollout.dones[t].astype(bool)
            if ended.any():
                self.recent_returns.extend(self.episode_returns[ended])
                self.episode_returns[ended] = 0.0
        self.env_log = env_log or self.env_log
        if self.first_return is None:  # the untrained (or --init) policy's episodes
            self.first_return = self.env_log.get("episode_return")
        progress = self.progress
        progress.wall_time = time.perf_counter() - self.start
        returns, values = rollout.returns.flatten().cpu().numpy(), rollout.values.flatten().cpu().numpy()
        sps = progress.global_step / max(progress.wall_time, 1e-9)
        self.metrics = {
            "update": progress.update, "global_step": progress.global_step, "wall_time": progress.wall_time,
            "sps": sps, "mfu": self.flops_per_sample * sps / self.peak,
            "flops_per_sample": self.flops_per_sample, "peak_flops": self.peak,
            **self.env_log,
            "mean_return_100": float(np.mean(self.recent_returns)) if self.recent_returns else None,
            **stats,
            "explained_variance": float(1 - (returns - values).var() / returns.var()) if returns.var() > 0 else None,
            "learning_rate": optimizer.param_groups[0]["lr"],
            **({"kl_to_reference": float(rollout.kl_penalties.mean() / self.args.kl_coef)}
               if self.args.kl_coef > 0 else {}),
            **{k: v / max(sum(self.timing.values()), 1e-9) for k, v in self.timing.items()},
        }
        self.whole = Progress(progress.global_step, progress.update, progress.wall_time)
        if last and self.distributed.world_size > 1:
            self.metrics["rank_divergence"] = divergence()
        if not self.distributed.is_main:
            return
        self.dashboard.write(self.metrics)
        if progress.wall_time - self.last_shown >= self.args.log_interval or last:
            self.dashboard.show(self.metrics)
            self.last_shown = progress.wall_time
        if checkpoint_now:
            save()

    def completed(self):
        """The progress of the last whole update, with the time until now."""
        return Progress(self.whole.global_step, self.whole.update, time.perf_counter() - self.start)

    def interrupted(self):
        if self.distributed.is_main:
            self.dashboard.show(self.metrics)
            print("interrupted: saving a final checkpoint")

    def close(self):
        if self.dashboard:
            self.dashboard.close()

    def summary(self, checkpoint):
        m = self.metrics
        return {"env_name": self.env_name, "global_step": self.progress.global_step,
                "wall_time": m.get("wall_time", 0.0), "first_episode_return": self.first_return,
                "sps": m.get("sps", 0.0), "episode_return": m.get("episode_return"),
                "mean_return_100": m.get("mean_return_100"), "score": m.get("score"),
                "checkpoint": str(checkpoint), "run_dir": str(checkpoint.parent)}


def check_rollout_memory(env, batch_size):
    """A ValueError when the rollout storage (observations, actions and ten
    float32 columns of [horizon, num_envs]) would not fit in memory."""
    per_sample = env.observations[0].nbytes + env.actions[0].nbytes + 10 * 4
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


def save(run_dir, policy, reference, optimizer, env_name, config, progress):
    """The checkpoint: all that --resume needs to go on as if never stopped,
    the KL reference (the --init weights) included."""
    device = next(policy.parameters()).device
    path = run_dir / CHECKPOINT_NAME
    save_checkpoint(path, {
        "env_name": env_name, "config": config, "policy": policy.state_dict(),
        "reference": None if reference is None else reference.state_dict(),
        "optimizer": optimizer.state_dict(), "global_step": progress.global_step, "update": progress.update,
        "wall_time": progress.wall_time, **rng_state(device),
    })
    return path
