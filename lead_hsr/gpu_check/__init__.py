"""The first GPU hour: one command that measures what the GPU budget projects (docs/gpu_check.md).

    python -m lead_hsr.gpu_check --out results/gpu_check [--budget-s 480] [--tiny]

Like `lead_hsr.budget` it imports everything and nothing imports it. One idea per module:

- `runner`: sections with their own time slices under one time budget, timing on CUDA or CPU (synchronised,
  peak CUDA memory), the Markdown table and the JSON (written atomically, also when the budget ran out);
- `shapes`: the paper's per-GPU shapes (config/config.yaml) or the tiny CPU shapes the test suite runs;
- `sections`: the measurements: environment, one step of each rule family's own code beside the budget's
  projection, paper256 G+D s/kimg per precision (eager, compiled) beside the StyleGAN2-ADA anchor, NCCL DDP.
"""
