"""Project a generated image whose w is known (docs/use_gan.md): LPIPS before / after and the latent error.

The target is G(w_true) of one seed (truncation 1, constant noise); the projector (lead_hsr.gan.project, its
schedule scaled to --num-steps) starts from w_avg. Prints LPIPS of G(w_avg) and of the projection to the target,
the distances in W (layer 0) of w_avg and of the projected w to w_true, and for scale projector.py's w_std and the
median distance of other seeds' w to w_true.

    PYTHONPATH=$PWD .venv/bin/python bench/bench_projection.py --network NET.pt --num-steps 200
"""
import argparse
import time

from lead_hsr.gan import project
from lead_hsr.gan.generate import seed_ws, synthesise
from lead_hsr.gan.training import load_generator
from lead_hsr.perceptual import make_lpips_distance


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--network", required=True)
    parser.add_argument("--seed", type=int, default=42, help="the seed whose G(w) is the target")
    parser.add_argument("--num-steps", type=int, default=200)
    parser.add_argument("--w-avg-samples", type=int, default=10000)
    parser.add_argument("--lpips", default="lpips-vgg")
    parser.add_argument("--standin", default="random")
    args = parser.parse_args()
    G = load_generator(args.network)
    w_true = seed_ws(G, [args.seed])
    target = synthesise(G, w_true)[0]
    distance = make_lpips_distance(args.lpips, None, args.standin, "cpu", setting="--lpips")
    settings = project.ProjectorSettings(num_steps=args.num_steps, w_avg_samples=args.w_avg_samples)
    started = time.perf_counter()
    result = project.project(G, target, distance, settings)
    elapsed = time.perf_counter() - started
    w_avg, w_std = project.w_statistics(G, args.w_avg_samples)
    others = seed_ws(G, [s for s in range(100, 201) if s != args.seed][:100])[:, 0]
    print(f"projection: {args.num_steps} steps in {elapsed:.0f} s; LPIPS ({args.lpips}, standin {args.standin})")
    print(f"LPIPS start (G(w_avg)) {project.lpips_to_target(G, w_avg.expand(1, G.num_ws, -1), target, distance):.4f}"
          f"  final {project.lpips_to_target(project.with_noise(G, result.noise), result.w, target, distance):.4f}")
    print(f"|w_avg - w_true| {float((w_avg[0, 0] - w_true[0, 0]).norm()):.3f}  "
          f"|w_proj - w_true| {float((result.w[0, 0] - w_true[0, 0]).norm()):.3f}  w_std {w_std:.3f}  "
          f"median |w_seed - w_true| {float((others - w_true[0, 0]).norm(dim=1).median()):.3f}")


if __name__ == "__main__":
    main()
