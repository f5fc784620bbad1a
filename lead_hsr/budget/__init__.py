"""GPU budget of a configuration, measured before anyone submits it (docs/budget.md).

    python -m lead_hsr.budget --configfile config/config.yaml [--gpu a100-bf16] [--utilisation 0.3]

A planner, run before the workflow, not a metric of its results. It sits above `lead_hsr.metrics` in the import
direction (it builds the metric networks as well as LEAD's and the GAN's). One idea per module:

- `counting`: FLOPs (`torch.utils.flop_counter`) and saved-for-backward bytes of one call of any function;
- `probes`: one step of each rule family's own code (the GAN trainer's phases, BYOL/MoCo, the stage-2
  objectives, the landmark regressor, the metric networks) at the configured shapes on the meta device;
- `dry_run`: the jobs Snakemake plans for a configuration (`snakemake -n`), and the config it merges;
- `costs`: one job's FLOPs and peak memory per GPU, from its rule, wildcards and the config (`Coster`);
- `estimate`: GPU-hours per rule family and per thesis table at a stated GPU, the StyleGAN2-ADA anchor check,
  the Markdown; `__main__`: the command line.
"""
