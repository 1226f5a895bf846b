"""The `puffer` command: train, eval, sweep, bench and the rest (COMMANDS)."""
import argparse
import os
import sys
import time
from pathlib import Path

import puffer
from puffer.config import load_config, read_toml, set_key, training_sections

COMMANDS = {
    "train": "train a policy with PPO: puffer train ENV [--section.key value ...]",
    "eval": "run a checkpoint's policy and print mean return, length and score",
    "plot": "learning curves (return, score, losses, SPS) of runs to a PNG: puffer plot RUN_DIR ...",
    "collect": "write a dataset of episodes of a PPO checkpoint or a random policy (for --algo dt)",
    "list": "the environments with their Gymnasium ids, spaces and autoreset mode",
    "bench": "env-only steps per second, optionally against reference implementations",
    "new": "write a working skeleton env into this checkout (docs/writing-an-env.md)",
    "probe": "the trainer's self-check: PPO (or --algo dt) on the probe envs, a pass/fail table (exit 1 on a failure)",
    "sweep": "hyperparameter search with Optuna for score and time to target: puffer sweep ENV --trials N",
    "compare": "time to solve over several seeds, puffer's PPO against Stable-Baselines3's",
    "pretrain": "next-character training of the GPT on the text corpus: puffer pretrain text",
    "sample": "generate text from a pretrained or fine-tuned GPT checkpoint",
    "prefs": "a scripted judge chooses between pairs of a GPT's continuations: preferences for a reward model",
    "label": "you choose between pairs of a GPT's continuations, one key each: preferences for a reward model",
}


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in COMMANDS:
        print("usage: puffer COMMAND ...\n\ncommands:")
        for name, text in COMMANDS.items():
            print(f"  {name:6}  {text}")
        if argv and argv[0] not in ("-h", "--help"):
            sys.exit(f"\nunknown command {argv[0]!r}")
        return
    try:
        globals()[f"cmd_{argv[0]}"](argv[1:])
    except (ValueError, KeyError, TypeError, FileNotFoundError, ImportError, TimeoutError) as error:
        message = error.args[0] if isinstance(error, KeyError) and error.args else error
        sys.exit(f"puffer {argv[0]}: error: {message}")


def env_name_arg(parser):
    parser.add_argument("env", help=f"one of: {', '.join(puffer.ENVS)}")


def cmd_train(argv):
    parser = argparse.ArgumentParser(
        prog="puffer train", allow_abbrev=False,
        description="Train with PPO. Any config key can be overridden as --section.key value; "
                    "the keys and their values for ENV are listed below.")
    parser.add_argument("env", nargs="?", help=f"one of: {', '.join(puffer.ENVS)}; or gym:ID, any "
                                               "Gymnasium env id (multiprocessing backend by default)")
    parser.add_argument("--seed", type=int, help="train.seed")
    parser.add_argument("--device", help="train.device: cpu, cuda, cuda:N")
    parser.add_argument("--total-steps", type=int, help="train.total_steps")
    parser.add_argument("--logger", help="train.logger: none, tensorboard, wandb")
    parser.add_argument("--config", metavar="FILE", help="a TOML file of config sections over ENV's own "
                                                         "(one that puffer sweep --apply wrote, say)")
    parser.add_argument("--run-dir", help="where to write config, metrics and checkpoints "
                                          "(default runs/ENV-TIME)")
    parser.add_argument("--resume", metavar="PATH", help="continue from a checkpoint or run directory")
    parser.add_argument("--init", metavar="PATH", help="start from these weights: a `puffer pretrain` "
                                                       "checkpoint or a PPO checkpoint (see train.kl_coef)")
    parser.add_argument("--algo", choices=["ppo", "dt", "rm"], default="ppo",
                        help="ppo, or dt: the decision transformer ([dt] keys), from --data or --online, "
                             "or rm: a reward model of text ([reward_model] keys) from --prefs")
    parser.add_argument("--data", metavar="FILE", help="--algo dt: a dataset written by puffer collect")
    parser.add_argument("--online", action="store_true", help="--algo dt: learn from its own rollouts")
    parser.add_argument("--prefs", metavar="FILE", help="--algo rm: a preference file of labelled pairs "
                                                        "(JSON lines); --init starts from a pretrained model")
    parser.add_argument("--reward-model", metavar="RM", help="text: PPO of the --init GPT against this reward "
                                                             "model (puffer train text --algo rm) with a KL "
                                                             "penalty to the --init model ([rlhf] keys)")
    args, rest = parser.parse_known_args(argv)
    help_asked = "-h" in argv or "--help" in argv
    if args.env is None or help_asked:
        parser.print_help()
        config = load_config(args.env, config_file=args.config) if args.env else {
            **training_sections(read_toml("defaults")), "env": {}}
        print(f"\nconfig keys{' of ' + args.env if args.env else ' (defaults; name an ENV for its own)'}:")
        for section, values in config.items():
            for key, value in values.items():
                print(f"  --{section}.{key} {value!r}")
        return
    overrides = parse_overrides(rest)
    for key, value in (("seed", args.seed), ("device", args.device), ("total_steps", args.total_steps),
                       ("logger", args.logger)):
        if value is not None:
            overrides[f"train.{key}"] = value
    if (args.algo == "rm") != (args.prefs is not None):
        raise ValueError("--algo rm trains from --prefs FILE, and --prefs is for --algo rm only")
    if args.algo == "rm":
        return train_rm(args, overrides)
    resume = None
    if args.resume and args.algo == "ppo":  # read once: its kind says which trainer goes on
        from puffer.trainer.checkpoint import load_checkpoint
        resume = load_checkpoint(args.resume, env_name=args.env)
    if args.reward_model or (resume is not None and resume.get("kind") == "rlhf"):
        return train_rlhf(args, overrides, resume)
    if args.algo == "dt":
        return train_dt(args, overrides)
    if args.data or args.online:
        raise ValueError("--data and --online are for --algo dt")
    if resume is not None:
        if args.config:
            raise ValueError("--resume goes on with the checkpoint's config; --config is for a new run")
        config = resumed_config(resume, overrides)
        run_dir = resumed_run_dir(args)
    else:
        config = load_config(args.env, overrides, args.config)
        run_dir = Path(args.run_dir or f"runs/{args.env}-{time.strftime('%Y%m%d-%H%M%S')}")
    from puffer.trainer.ppo import train
    if args.init and config["policy"]["type"] == "gpt":
        print_samples("before training (the --init model)", args.init)
    summary = train(args.env, config, run_dir, resume=resume, init=args.init)
    if "RANK" in os.environ:  # under torchrun: rank 0 reports, then every rank leaves at once
        if os.environ["RANK"] == "0":
            print_summary(summary)
        sys.stdout.flush()
        sys.stderr.flush()
        # Skips the interpreter's teardown, where gloo's worker threads can
        # still abort a finished process ("terminate called without an
        # active exception"), failing a run that completed and saved.
        os._exit(0)
    if args.init and config["policy"]["type"] == "gpt":
        print_samples("after training", summary["checkpoint"])
    print_summary(summary)


def print_summary(summary):
    print(f"\ntrained {summary['env_name']}: {summary['global_step']:,} steps in {summary['wall_time']:.1f} s "
          f"({summary['sps']:,.0f} steps/s)")
    print(f"  episode return {fmt(summary['episode_return'])} (last 100: {fmt(summary['mean_return_100'])}; "
          f"first episodes: {fmt(summary['first_episode_return'])}), score {fmt(summary['score'])}")
    print(f"  checkpoint: {summary['checkpoint']}")


def train_dt(args, overrides):
    if args.resume or args.init:
        raise ValueError("--algo dt takes neither --resume nor --init")
    config = load_config(args.env, overrides, args.config)
    run_dir = Path(args.run_dir or f"runs/{args.env}-dt-{time.strftime('%Y%m%d-%H%M%S')}")
    from puffer.trainer.dt import train
    summary = train(args.env, config, run_dir, data=args.data, online=args.online)
    print(f"\ntrained {args.env} (decision transformer{', online' if args.online else ''}): "
          f"{summary['steps']:,} gradient steps, {summary['episodes']:,} episodes, {summary['wall_time']:.1f} s")
    print_dt_evaluation(summary["evaluation"])
    print(f"  checkpoint: {summary['checkpoint']}")


def train_rm(args, overrides):
    if args.env != "text" or args.resume or args.data or args.online:
        raise ValueError("--algo rm trains on the text env (puffer train text --algo rm --prefs FILE) "
                         "and takes no --resume, --data or --online")
    config = load_config(args.env, overrides, args.config)
    run_dir = Path(args.run_dir or f"runs/{args.env}-rm-{time.strftime('%Y%m%d-%H%M%S')}")
    from puffer.trainer.reward_model import format_accuracy, train_reward_model
    summary = train_reward_model(config, args.prefs, run_dir, init=args.init)
    print(f"\ntrained a reward model on {summary['train_comparisons']} comparisons in {summary['seconds']:.1f} s: "
          f"held-out accuracy {format_accuracy(summary['accuracy'])} on {summary['holdout_comparisons']}")
    print(f"  checkpoint: {summary['checkpoint']} (epoch {summary['epoch']} of {summary['epochs']}, "
          "the lowest held-out loss)")


def resumed_config(saved, overrides):
    """The config of the checkpoint `saved`, with the command line's overrides."""
    config = saved["config"]
    for dotted, value in overrides.items():  # parsed and checked against the saved config
        set_key(config, dotted, value, "the command line")
    return config


def resumed_run_dir(args):
    """--run-dir, or the run directory of the --resume checkpoint."""
    resume = Path(args.resume)
    return Path(args.run_dir) if args.run_dir else (resume if resume.is_dir() else resume.parent)


def train_rlhf(args, overrides, resume):
    """puffer train text --init GPT --reward-model RM, or --resume of such a
    run (`resume`: its checkpoint, read)."""
    from puffer.trainer.reward_model import load_reward_model
    from puffer.trainer.rlhf import train_rlhf as train
    if args.env != "text" or args.algo != "ppo" or args.data or args.online:
        raise ValueError("--reward-model is for PPO on the text env: puffer train text --init GPT --reward-model RM")
    if resume is not None:
        if args.config or args.init:
            raise ValueError("--resume goes on with the run's config, --init and reward model; it takes no "
                             "--config or --init")
        config, init = resumed_config(resume, overrides), resume["init"]
        reward_model_path = args.reward_model or resume["reward_model"]
        run_dir = resumed_run_dir(args)
    else:
        if not args.init:
            raise ValueError("--reward-model fine-tunes a pretrained GPT: give it with --init (puffer pretrain text)")
        config, init, reward_model_path = load_config("text", overrides, args.config), args.init, args.reward_model
        run_dir = Path(args.run_dir or f"runs/text-rlhf-{time.strftime('%Y%m%d-%H%M%S')}")
    reward_model, reward_tokenizer = load_reward_model(reward_model_path)
    print_samples("before training (the --init model)", init)
    summary = train(config, run_dir, init, reward_model, reward_tokenizer, reward_model_path=reward_model_path,
                    resume=resume)
    print_samples("after training", summary["checkpoint"])
    last = summary["history"][-1] if summary["history"] else {}
    print(f"\nfine-tuned against {reward_model_path}: {summary['seconds']:.1f} s; last update: reward-model "
          f"score {fmt(last.get('rm_score'))}, judge score {fmt(last.get('judge_score'))}, "
          f"KL {fmt(last.get('kl'))} nats a character")
    print(f"  checkpoint: {summary['checkpoint']}")


def print_dt_evaluation(results):
    for r in results:
        print(f"  target {r['target']:g}: achieved {r['mean_return']:.3f} ± {r['std_return']:.3f}, "
              f"length {r['mean_length']:.1f}, score {fmt(r['score'])}, action entropy {fmt(r['entropy'])}")


def print_samples(title, checkpoint, count=3, length=120):
    """A few continuations of corpus prompts by the language model in `checkpoint`."""
    from puffer.tokenizer import load_corpus_tokens
    from puffer.trainer.pretrain import load_language_model, sample
    model, tokenizer = load_language_model(checkpoint)
    _, _, held_out = load_corpus_tokens()
    print(f"samples {title}:")
    for i in range(count):
        prompt = tokenizer.decode(held_out[i * 5000:i * 5000 + model.block_size])
        print(f"  ...{prompt[-40:]!r} -> {sample(model, tokenizer, prompt, length)!r}")


def fmt(value):
    return "n/a" if value is None else f"{value:.3f}"


def parse_overrides(rest):
    """["--train.seed", "3", "--env.hard=true"] -> {"train.seed": "3", "env.hard": "true"}."""
    overrides = {}
    i = 0
    while i < len(rest):
        arg = rest[i]
        if not arg.startswith("--") or "." not in arg:
            raise ValueError(f"unexpected argument {arg!r}: overrides look like --section.key value")
        if "=" in arg:
            key, value = arg[2:].split("=", 1)
            i += 1
        elif i + 1 < len(rest):
            key, value = arg[2:], rest[i + 1]
            i += 2
        else:
            raise ValueError(f"{arg} needs a value")
        overrides[key] = value
    return overrides


def parse_env_overrides(rest, command):
    """parse_overrides for a command that takes env options only."""
    overrides = parse_overrides(rest)
    for dotted in overrides:
        if not dotted.startswith("env."):
            raise ValueError(f"puffer {command} takes env options only (--env.KEY VALUE), got --{dotted}")
    return overrides


def cmd_eval(argv):
    parser = argparse.ArgumentParser(prog="puffer eval", allow_abbrev=False)
    env_name_arg(parser)
    parser.add_argument("--checkpoint", required=True, help="checkpoint file or run directory")
    parser.add_argument("--episodes", type=int, default=100)
    parser.add_argument("--sample", action="store_true", help="sample actions instead of taking the most likely")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--target", type=float, action="append",
                        help="decision transformer checkpoints: a target return to condition on (repeatable)")
    parser.add_argument("--render", choices=["gif", "ansi"],
                        help="also show the first env's episode: an animated GIF, or text frames here")
    parser.add_argument("--out", help="where --render gif writes (default: ENV.gif beside the checkpoint)")
    parser.add_argument("--judge", help="text: the win rate of the checkpoint's samples against --against's "
                                        "under this scripted judge (puffer.judges), on held-out prompts")
    parser.add_argument("--against", metavar="GPT", help="--judge: the model to beat (the pretrained one)")
    parser.add_argument("--prompts", type=int, default=500, help="--judge: held-out prompts compared")
    parser.add_argument("--prompt-len", type=int, default=32, help="--judge: characters of each prompt")
    parser.add_argument("--gen-len", type=int, default=32, help="--judge: characters each model writes")
    args = parser.parse_args(argv)
    if (args.judge is None) != (args.against is None):
        raise ValueError("--judge and --against go together: puffer eval text --checkpoint RUN --judge NAME "
                         "--against PRETRAINED")
    if args.judge:
        return print_win_rate(args)
    if args.render and args.target:
        raise ValueError("--render shows a PPO checkpoint's episode; it does not take --target")
    if args.target:
        from puffer.trainer.dt import evaluate, load_model
        model, saved = load_model(args.checkpoint, args.device, args.env)
        print(f"{args.env}: {args.episodes} episodes per target ({'sampled' if args.sample else 'greedy'}):")
        print_dt_evaluation(evaluate(model, args.env, saved["config"]["env"], args.target, args.episodes, args.seed,
                                     temperature=1.0 if args.sample else None))
        return
    from puffer.trainer.evaluate import evaluate
    result = evaluate(args.env, args.checkpoint, episodes=args.episodes, deterministic=not args.sample,
                      seed=args.seed, device=args.device, render=args.render)
    if args.render:
        show_episode(args, result)
    print(f"{args.env}: {result['episodes']} episodes ({'sampled' if args.sample else 'greedy'}): "
          f"mean return {result['mean_return']:.3f} ± {result['std_return']:.3f}, "
          f"mean length {result['mean_length']:.1f}, score {fmt(result['score'])}")


def print_win_rate(args):
    from puffer.judges import get_judge
    from puffer.tokenizer import load_corpus_tokens
    from puffer.trainer.pretrain import load_language_model
    from puffer.trainer.rlhf import win_rate
    if args.env != "text":
        raise ValueError(f"--judge compares text models: puffer eval text ..., not {args.env}")
    judge = get_judge(args.judge)
    model, _ = load_language_model(args.checkpoint)
    baseline, _ = load_language_model(args.against)
    _, _, held_out = load_corpus_tokens()
    result = win_rate(model, baseline, judge, held_out, args.prompts, args.prompt_len, args.gen_len, args.seed)
    for prompt, text, other in result["samples"][:3]:
        print(f"--- prompt ---\n{prompt}\n--- {args.checkpoint} ---\n{text}\n--- {args.against} ---\n{other}\n")
    print(f"win rate under the {args.judge} judge against {args.against}: {result['win_rate']:.1%} "
          f"(95% CI {result['low']:.1%} to {result['high']:.1%}; {result['wins']} wins, {result['ties']} ties, "
          f"{result['losses']} losses on {args.prompts} held-out prompts); KL to it "
          f"{result['kl']:.3f} nats a character")


def show_episode(args, result):
    """The rendered first episode of `puffer eval`: a GIF file, the text a
    text env wrote, or text frames."""
    from puffer.render import play, save_gif
    summary = f"episode 0: {len(result['frames'])} steps, return {result['first_return']:.3f}"
    if args.render == "gif":
        checkpoint = Path(args.checkpoint)
        path = args.out or (checkpoint if checkpoint.is_dir() else checkpoint.parent) / f"{args.env}.gif"
        save_gif(result["frames"], path, result["fps"])
        print(f"{summary}; wrote {path}")
    elif "generated" in result:
        print(f"prompt:\n{result['prompt']}\n\ngenerated:\n{result['generated']}\n\n{summary}")
    else:
        play(result["frames"], result["fps"], live=sys.stdout.isatty())
        print(summary)


def cmd_collect(argv):
    parser = argparse.ArgumentParser(
        prog="puffer collect", allow_abbrev=False,
        description="Roll out a PPO checkpoint (or, without one, a random policy) and write whole "
                    "episodes to one .npz for puffer train ENV --algo dt --data FILE. Env options: --env.KEY VALUE.")
    env_name_arg(parser)
    parser.add_argument("--checkpoint", help="a PPO checkpoint or run directory; default: random actions")
    parser.add_argument("--episodes", type=int, required=True)
    parser.add_argument("--epsilon", type=float, nargs="+",
                        help="chance of a random action instead of the policy's; several values are "
                             "spread over the envs, for data of mixed quality (default 0)")
    parser.add_argument("--out", help="default runs/ENV-data-TIME.npz")
    parser.add_argument("--num-envs", type=int, default=256)
    parser.add_argument("--seed", type=int, default=0)
    args, rest = parser.parse_known_args(argv)
    env_config = load_config(args.env, parse_env_overrides(rest, "collect"))["env"]
    from puffer.trainer.collect import collect, episode_returns, save_dataset
    data = collect(args.env, args.episodes, env_config, args.checkpoint, args.epsilon, args.num_envs, args.seed)
    out = Path(args.out or f"runs/{args.env}-data-{time.strftime('%Y%m%d-%H%M%S')}.npz")
    out.parent.mkdir(parents=True, exist_ok=True)
    save_dataset(out, data, args.env, env_config)
    returns = episode_returns(data)
    print(f"{args.env}: {len(returns)} episodes, {len(data['rewards']):,} steps, return mean {returns.mean():.2f} "
          f"(min {returns.min():.2f}, max {returns.max():.2f}) -> {out}")


def cmd_plot(argv):
    parser = argparse.ArgumentParser(prog="puffer plot", allow_abbrev=False,
                                     description="Learning curves of one or more runs (their metrics.jsonl).")
    parser.add_argument("run_dirs", nargs="+", metavar="RUN_DIR")
    parser.add_argument("--out", help="the PNG to write (default: curves.png in the first RUN_DIR)")
    from puffer.plot import X_AXES, plot_runs
    parser.add_argument("--x", default="global_step", choices=X_AXES,
                        help="draw against env steps (default) or wall-clock seconds")
    args = parser.parse_args(argv)
    print(f"wrote {plot_runs(args.run_dirs, args.out, args.x)}")


def cmd_list(argv):
    argparse.ArgumentParser(prog="puffer list").parse_args(argv)
    from puffer.gymnasium_env import gymnasium_id
    print(f"{'env':18} {'Gymnasium id':27} {'observation space':40} {'action space':28} autoreset")
    for name in puffer.ENVS:
        env = puffer.make(name)
        print(f"{name:18} {gymnasium_id(name):27} {str(env.single_observation_space):40} "
              f"{str(env.single_action_space):28} {env.metadata['autoreset_mode'].value}")
        env.close()
    print("\nautoreset: SameStep here (puffer.make, what the trainers take); NextStep, Gymnasium's default, "
          "from gymnasium.make_vec(ID) or puffer.make(..., autoreset_mode=\"NextStep\")")


def cmd_bench(argv):
    parser = argparse.ArgumentParser(prog="puffer bench", allow_abbrev=False)
    parser.add_argument("env", nargs="?", help=f"one of: {', '.join(puffer.ENVS)}")
    parser.add_argument("--all", action="store_true",
                        help="every env against every reference installed here, in one table")
    parser.add_argument("--num-envs", type=int, default=4096)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--compare", action="append", default=[],
                        help="a reference to measure in the same run: gymnasium, envpool, numpy, pufferlib")
    parser.add_argument("--train", action="store_true",
                        help="instead, train with ENV's config (any --section.key value overrides it) and "
                             "print training SPS, where the time went and the policy's MFU")
    args, rest = parser.parse_known_args(argv)
    if args.all:
        if args.env or args.compare or args.train or rest:
            raise ValueError("puffer bench --all takes no env, --compare, --train or options")
        from puffer.bench import bench_all
        bench_all(args.num_envs, args.seconds)
        return
    if args.env is None:
        parser.error("name an env, or use --all")
    if args.train:
        from puffer.bench import bench_training
        bench_training(args.env, parse_overrides(rest))
        return
    env_kwargs = parse_env_overrides(rest, "bench")
    # Parsed and checked as by puffer train; only what differs from the env's defaults is passed.
    defaults = puffer.env_options(args.env)
    env_kwargs = {k: v for k, v in load_config(args.env, env_kwargs)["env"].items() if v != defaults[k]}
    from puffer.bench import main_bench
    main_bench(args.env, args.num_envs, args.seconds, args.compare, env_kwargs=env_kwargs)


def cmd_new(argv):
    from puffer.scaffold import main as new_main
    new_main(argv)


def cmd_compare(argv):
    parser = argparse.ArgumentParser(
        prog="puffer compare", allow_abbrev=False,
        description="Trains puffer (and Stable-Baselines3, when installed) on the same seeds and "
                    "prints time and steps until solved, and SPS. Config overrides apply to puffer.")
    env_name_arg(parser)
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--no-sb3", action="store_true", help="run puffer only")
    parser.add_argument("--config", action="append", metavar="FILE",
                        help="puffer with this config file over ENV's own (see puffer train --config); "
                             "repeated, each file in turn, interleaved seed by seed")
    args, rest = parser.parse_known_args(argv)
    from puffer.compare import main_compare
    main_compare(args.env, seeds=args.seeds, sb3=not args.no_sb3, overrides=parse_overrides(rest),
                 config_files=args.config)


def cmd_sweep(argv):
    parser = argparse.ArgumentParser(
        prog="puffer sweep", allow_abbrev=False,
        description="Optuna over the [sweep.space] of ENV's config for two objectives, the score at a trial's end "
                    "and the seconds to reach a target ([sweep] keys, set as --sweep.KEY VALUE); any other "
                    "--section.key value stays fixed in every trial. Rerun the same command to continue a sweep.")
    parser.add_argument("env", nargs="?", help=f"one of: {', '.join(puffer.ENVS)}")
    parser.add_argument("--trials", type=int, help="run until the study holds this many trials")
    parser.add_argument("--budget-s", type=float, help="start no trial after this many seconds")
    parser.add_argument("--storage", help="an Optuna storage URL (default sqlite:///runs/sweep-ENV.db)")
    parser.add_argument("--study", help="the study's name (default: ENV; with --show/--apply, the only one there)")
    parser.add_argument("--jobs", type=int, help="trials at a time, each in its own process (default: one a core)")
    parser.add_argument("--config", metavar="FILE", help="a config file over ENV's own: its keys stay fixed, "
                                                         "its [sweep] and [sweep.space] replace ENV's")
    parser.add_argument("--show", metavar="STUDY", help="print the Pareto front of STUDY (a .db file or URL) "
                                                        "and plot it")
    parser.add_argument("--apply", metavar="STUDY", help="write a trial's values of STUDY as a config file "
                                                         "for puffer train ENV --config FILE")
    parser.add_argument("--trial", type=int, help="--apply: this trial (default: the fastest to the target "
                                                  "on the Pareto front)")
    parser.add_argument("--out", help="--show: the PNG (default: beside the .db); --apply: the config file "
                                      "(default runs/sweep-ENV-trialN.toml)")
    args, rest = parser.parse_known_args(argv)
    from puffer import sweep
    if args.show or args.apply:
        if args.env or args.trials or rest or (args.show and args.apply):
            raise ValueError("--show STUDY and --apply STUDY take no ENV, --trials or --section.key options, "
                             "and not each other")
        if args.show:
            sweep.show(args.show, args.study, args.out)
        else:
            sweep.apply(args.apply, args.trial, args.out, args.study)
        return
    if args.env is None or args.trials is None:
        parser.error("name an ENV and --trials N (or use --show STUDY / --apply STUDY)")
    if args.trial is not None or args.out:
        raise ValueError("--trial and --out are for --show and --apply")
    try:
        sweep.sweep(args.env, args.trials, args.storage, args.study, args.jobs, args.budget_s,
                    parse_overrides(rest), args.config)
    except KeyboardInterrupt:
        sys.exit(130)
    sweep.show(args.storage or sweep.default_storage(args.env), args.study or args.env)


def cmd_probe(argv):
    from puffer.probe import ALGOS, POLICIES, PROBES, run_probes
    parser = argparse.ArgumentParser(
        prog="puffer probe", allow_abbrev=False,
        description="Trains PPO (or the decision transformer) on each probe env for a fixed budget and "
                    "checks the known answer; "
                    "a failure names the capability and what usually breaks it. Exits 1 on any failure.")
    parser.add_argument("--algo", default="ppo", choices=ALGOS, help="the trainer to probe")
    parser.add_argument("--policy", default="mlp", choices=POLICIES,
                        help="PPO's policy to probe with (lstm adds the memory probe)")
    parser.add_argument("--only", nargs="+", metavar="PROBE",
                        help=f"run only these: {', '.join(p.name for p in PROBES)}")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    results = run_probes(args.policy, args.only, args.seed, args.algo)
    if not all(r["passed"] for r in results):
        sys.exit(1)


def cmd_pretrain(argv):
    parser = argparse.ArgumentParser(
        prog="puffer pretrain", allow_abbrev=False,
        description="Next-character pretraining of the [policy] GPT on the corpus of a text env; "
                    "[pretrain] keys (and any other) can be overridden as --section.key value.")
    parser.add_argument("env", choices=["text"])
    parser.add_argument("--run-dir", help="default runs/pretrain-ENV-TIME")
    args, rest = parser.parse_known_args(argv)
    config = load_config(args.env, parse_overrides(rest))
    from puffer.trainer.pretrain import pretrain
    run_dir = Path(args.run_dir or f"runs/pretrain-{args.env}-{time.strftime('%Y%m%d-%H%M%S')}")
    summary = pretrain(config, run_dir)
    print(f"\nbest validation loss {summary['val_loss']:.4f} after {summary['seconds']:.0f} s "
          f"({summary['tokens_per_second']:,.0f} tokens/s); {summary['parameters']:,} parameters; "
          f"checkpoint: {summary['checkpoint']}")


def cmd_sample(argv):
    parser = argparse.ArgumentParser(
        prog="puffer sample", allow_abbrev=False,
        description="Generate text from a GPT checkpoint. With --reward-model, each sample comes with the "
                    "reward model's probability that it beats a sample of --baseline for the same prompt.")
    parser.add_argument("--checkpoint", required=True, help="a puffer pretrain or puffer train text checkpoint")
    parser.add_argument("--prompt", default="\n")
    parser.add_argument("--length", type=int, default=500)
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument("--top-k", type=int)
    parser.add_argument("--seed", type=int)
    parser.add_argument("--samples", type=int, default=1, help="how many samples to print")
    parser.add_argument("--reward-model", metavar="RM",
                        help="a puffer train text --algo rm checkpoint: print P(sample beats baseline) = "
                             "sigmoid(r_sample - r_baseline), the rewards of the last block_size characters "
                             "of prompt + sample")
    parser.add_argument("--baseline", metavar="GPT", help="--reward-model: the model whose sample, one per "
                                                          "sample printed, each is compared with (default: an "
                                                          "independent sample of --checkpoint; name the pretrained "
                                                          "model to compare a fine-tuned one with it)")
    args = parser.parse_args(argv)
    if args.baseline and not args.reward_model:
        raise ValueError("--baseline is for --reward-model")
    from puffer.trainer.pretrain import load_language_model, sample
    import torch
    if args.seed is not None:
        torch.manual_seed(args.seed)
    model, tokenizer = load_language_model(args.checkpoint)
    if args.reward_model:
        from puffer.trainer.reward_model import load_reward_model, win_probability
        reward_model, rm_tokenizer = load_reward_model(args.reward_model)
        baseline = load_language_model(args.baseline)[0] if args.baseline else model
    for i in range(args.samples):
        text = sample(model, tokenizer, args.prompt, args.length, args.temperature, args.top_k)
        if args.reward_model:
            other = sample(baseline, tokenizer, args.prompt, args.length, args.temperature, args.top_k)
            p = win_probability(reward_model, rm_tokenizer, args.prompt, text, other)
            print(f"sample {i + 1}: P(beats the baseline's sample) = {p:.3f}")
        print(args.prompt + text)


def preference_parser(prog, description):
    """The options puffer prefs and puffer label share."""
    parser = argparse.ArgumentParser(prog=prog, allow_abbrev=False, description=description)
    parser.add_argument("--checkpoint", required=True, help="a puffer pretrain or puffer train text checkpoint "
                                                            "(file or run directory): the model sampled")
    parser.add_argument("--out", help="the preference file (JSON lines) to append to; rerun with the same one "
                                      "to go on where it stopped (default: prefs.jsonl in the checkpoint's folder)")
    parser.add_argument("--seed", type=int, default=0, help="pair i of a seed is always the same prompt and "
                                                            "continuations; keep it when resuming")
    parser.add_argument("--prompt-len", type=int, default=32, help="characters in each prompt")
    parser.add_argument("--gen-len", type=int, default=32, help="characters in each continuation: with the "
                                                                "prompt, the episodes of rlhf.prompt_len + "
                                                                "rlhf.gen_len that PPO against the reward model plays")
    return parser


def open_preferences(args, labeller, stop=None):
    """The pairs `labeller` has yet to label (a generator, from the next pair
    on, up to pair `stop` if given), the file and its records so far."""
    from puffer.preferences import next_pair, read_preferences, sample_pairs
    from puffer.tokenizer import load_corpus_tokens
    from puffer.trainer.pretrain import load_language_model
    checkpoint = Path(args.checkpoint)
    out = Path(args.out) if args.out else (checkpoint if checkpoint.is_dir() else checkpoint.parent) / "prefs.jsonl"
    records = read_preferences(out) if out.exists() else []
    model, tokenizer = load_language_model(checkpoint)
    _, _, held_out = load_corpus_tokens()  # prompts the model was not trained on
    pairs = sample_pairs(model, tokenizer, held_out, args.prompt_len, args.gen_len, args.seed,
                         next_pair(records, labeller), stop)
    return pairs, out, records


def labelled_summary(records, labeller, out):
    """"judge:fluency: 20 pairs (first 9, second 10, tie 1, skip 0) in FILE"."""
    from collections import Counter
    from puffer.preferences import CHOICES
    counts = Counter(r["choice"] for r in records if r["labeller"] == labeller)
    return (f"{labeller}: {sum(counts.values())} pairs "
            f"({', '.join(f'{choice} {counts[choice]}' for choice in CHOICES)}) in {out}")


def cmd_prefs(argv):
    from puffer.judges import JUDGES
    parser = preference_parser(
        "puffer prefs", "A scripted judge (a stand-in for a person) chooses between two continuations of each "
                        "held-out prompt: first with probability sigmoid((score1 - score2) / noise).")
    parser.add_argument("--judge", required=True, help=f"one of: {', '.join(JUDGES)}")
    parser.add_argument("--pairs", type=int, required=True, help="label until the file holds this many of "
                                                                 "the judge's pairs")
    parser.add_argument("--noise", type=float, default=0.2, help="the Bradley-Terry temperature: small, the "
                                                                 "higher score nearly always wins")
    args = parser.parse_args(argv)
    if args.pairs < 1 or args.noise <= 0:
        raise ValueError(f"--pairs must be at least 1 and --noise positive, got {args.pairs} and {args.noise}")
    import numpy as np
    from puffer.judges import choose, get_judge
    from puffer.preferences import append_preference
    judge, labeller = get_judge(args.judge), f"judge:{args.judge}"
    pairs, out, records = open_preferences(args, labeller, stop=args.pairs)
    for pair in pairs:
        rng = np.random.default_rng([args.seed, pair["pair"], 1])  # not the stream that drew the pair
        record = {**pair, "model": args.checkpoint,
                  "choice": choose(judge, pair["prompt"], pair["first"], pair["second"], rng, args.noise),
                  "labeller": labeller}
        append_preference(out, record)
        records.append(record)
    print(labelled_summary(records, labeller, out))


LABEL_KEYS = {"1": "first", "2": "second", "t": "tie", "s": "skip"}


def read_key():
    """The next key pressed, or None at the end of input. On a terminal a
    single keypress (raw mode, restored at once, Ctrl-C included); otherwise
    one line, so a script can pipe the choices in."""
    if not sys.stdin.isatty():
        line = sys.stdin.readline()
        return line.strip().lower() if line else None
    import termios
    import tty
    fd = sys.stdin.fileno()
    saved = termios.tcgetattr(fd)
    try:
        tty.setraw(fd)  # TCSAFLUSH: keys pressed before this pair was shown are dropped, not taken for it
        key = os.read(fd, 1).decode("utf-8", "replace").lower()
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)
    if key == "\x03":  # raw mode turns Ctrl-C into a character
        raise KeyboardInterrupt
    return None if key in ("", "\x04") else key  # Ctrl-D: the end of input


def show_pair(pair, labelled):
    """The prompt and the two continuations, each indented under its header."""
    print(f"\n=== pair {pair['pair']} ({labelled} labelled) ===")
    for header, text in (("prompt", pair["prompt"]), ("1", pair["first"]), ("2", pair["second"])):
        print(f"--- {header} ---\n    " + text.replace("\n", "\n    "))


def cmd_label(argv):
    parser = preference_parser(
        "puffer label", "Shows you a held-out prompt and two continuations of it, marked 1 and 2; press 1 or 2 "
                        "for the better one, t a tie, s skip, q quit. Each choice is saved at once.")
    args = parser.parse_args(argv)
    from puffer.preferences import append_preference
    pairs, out, records = open_preferences(args, "human")
    print(f"labelling into {out}")
    try:
        for pair in pairs:
            show_pair(pair, sum(r["labeller"] == "human" for r in records))
            key = ask_choice()
            if key is None or key == "q":
                break
            record = {**pair, "model": args.checkpoint, "choice": LABEL_KEYS[key], "labeller": "human"}
            append_preference(out, record)
            records.append(record)
    except KeyboardInterrupt:
        print(f"\ninterrupted; {labelled_summary(records, 'human', out)}")
        sys.exit(130)
    print(labelled_summary(records, "human", out))


def ask_choice():
    """A key of LABEL_KEYS, "q", or None at the end of input; asks again after any other key."""
    while True:
        print("1 first, 2 second, t tie, s skip, q quit: ", end="", flush=True)
        key = read_key()
        print(key or "")
        if key is None or key == "q" or key in LABEL_KEYS:
            return key
        print(f"{key!r} is not a choice")


if __name__ == "__main__":
    main()
