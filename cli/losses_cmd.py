"""``marginface losses``: list the loss catalogue, draw its curves, run the toy experiment."""

from __future__ import annotations

import argparse
from pathlib import Path

DEFAULT_TOY_LOSSES = "softmax,normface,sphereface,cosface,arcface,x2softmax"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("losses", help="the loss catalogue: list, plot, toy experiment")
    commands = parser.add_subparsers(dest="losses_command", metavar="ACTION")

    show = commands.add_parser("list", help="every loss name with its defaults")
    show.set_defaults(func=list_losses)

    plot = commands.add_parser("plot", help="target logit vs θ and decision margin vs class angle (PNGs)")
    plot.add_argument("--out", type=Path, required=True, help="output directory")
    plot.set_defaults(func=plot_losses)

    toy = commands.add_parser("toy", help="train a 2-D/3-D embedding on sklearn digits with each loss")
    toy.add_argument(
        "--losses", default=DEFAULT_TOY_LOSSES, help=f"comma-separated (default {DEFAULT_TOY_LOSSES})"
    )
    toy.add_argument("--out", type=Path, default=Path("toy.png"), help="output PNG")
    toy.add_argument("--dim", type=int, choices=(2, 3), default=2, help="embedding dimension")
    toy.add_argument("--epochs", type=int, default=60, help="passes over the training split")
    toy.add_argument("--classes", type=int, default=8, help="digits 0..N-1 (2-10)")
    toy.add_argument("--seed", type=int, default=0)
    toy.set_defaults(func=toy_experiment)

    parser.set_defaults(func=lambda args: parser.print_help() or 2)


def list_losses(args: argparse.Namespace) -> int:
    from training.losses import describe_losses

    for name, defaults, summary in describe_losses():
        settings = ", ".join(f"{k}={v}" for k, v in defaults.items()) or "-"
        print(f"{name:18s} {settings:58s} {summary}")
    return 0


def plot_losses(args: argparse.Namespace) -> int:
    from training.losses.plots import plot_margins, plot_target_logits

    args.out.mkdir(parents=True, exist_ok=True)
    for path in (
        plot_target_logits(args.out / "loss_target_logits.png"),
        plot_margins(args.out / "loss_margins.png"),
    ):
        print(path)
    return 0


def toy_experiment(args: argparse.Namespace) -> int:
    import torch
    from tqdm import tqdm

    from models.errors import MarginFaceError
    from training.losses import LOSS_NAMES
    from training.losses.plots import plot_toy
    from training.losses.toy import TOY_SETTINGS, load_digits_split, train_toy

    names = [n.strip() for n in args.losses.split(",") if n.strip()]
    unknown = [n for n in names if n not in LOSS_NAMES]
    if unknown or not names:
        raise MarginFaceError(
            f"unknown loss(es) {', '.join(unknown) or '(none)'}; valid: {', '.join(LOSS_NAMES)}",
            code="bad_argument",
        )
    if not 2 <= args.classes <= 10 or args.epochs < 1:
        raise MarginFaceError("--classes must be 2..10 and --epochs at least 1", code="bad_argument")
    torch.set_num_threads(1)  # a tiny network: extra threads only contend
    data = load_digits_split(args.classes, seed=args.seed)
    batch_size = 128
    steps = max(1, args.epochs * len(data.y_train) // batch_size)
    results = []
    with tqdm(total=steps * len(names), unit="step", desc="toy") as bar:
        for name in names:
            bar.set_postfix_str(name)
            settings = TOY_SETTINGS.get(name, {})
            result = train_toy(
                name, data, dim=args.dim, steps=steps, batch_size=batch_size, seed=args.seed,
                on_step=lambda: bar.update(1), **settings,
            )  # fmt: skip
            label = name + "".join(f" {k}={v}" for k, v in settings.items())
            results.append((label, result.train_features, data.y_train, result.test_accuracy))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with torch.no_grad():
        title = (
            f"{args.dim}-D features of the training split of sklearn digits 0-{args.classes - 1}, "
            f"{args.epochs} epochs; spread = mean angle to the class's mean direction"
        )
        plot_toy(results, args.out, dim=args.dim, title=title)
    print(args.out)
    return 0
