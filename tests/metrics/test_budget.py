"""GPU budget (lead_hsr.metrics.budget): FLOP and memory counts of small known layers against hand-computed
values, the dry-run parser, and the table's arithmetic."""
import pytest
import torch

from lead_hsr.metrics import budget as B


def test_linear_forward_backward_flops_by_hand():
    # y = x W^T: 2*N*I*O forward; backward: dX (2*N*I*O) and dW (2*N*I*O) -> 6*N*I*O
    n, i, o = 8, 32, 16
    layer = torch.nn.Linear(i, o, bias=False, device="meta")
    x = torch.zeros(n, i, device="meta", requires_grad=True)
    m = B.measure(lambda: layer(x).sum().backward(), list(layer.parameters()))
    assert m.flops == 6 * n * i * o
    assert m.saved_bytes == n * i * 4   # the input is saved for dW; W itself is a parameter, not counted


def test_conv_forward_flops_by_hand():
    # 3x3 conv, stride 1, padding 1: 2 * N * H * W * C_out * C_in * 9
    n, c_in, c_out, h = 2, 3, 8, 10
    conv = torch.nn.Conv2d(c_in, c_out, 3, padding=1, bias=False, device="meta")
    x = torch.zeros(n, c_in, h, h, device="meta")
    with torch.no_grad():
        m = B.measure(lambda: conv(x))
    assert m.flops == 2 * n * h * h * c_out * c_in * 9
    assert m.saved_bytes == 0   # no grad: nothing saved


def test_grad_of_grad_is_counted_without_module_hooks():
    # R1-style penalty (autograd.grad w.r.t. a leaf input, create_graph) broke FlopCounterMode's module tracker
    n, i = 4, 5
    layer = torch.nn.Linear(i, 1, bias=False, device="meta")
    x = torch.zeros(n, i, device="meta", requires_grad=True)

    def penalty():
        (g,) = torch.autograd.grad(layer(x).sum(), x, create_graph=True)
        g.square().sum().backward()

    assert B.measure(penalty).flops > 2 * n * i


def test_meta_scalars_restore_item():
    with B._meta_scalars():
        assert torch.zeros(1, device="meta").item() == 0.0
    assert torch.ones(1).item() == 1.0
    with pytest.raises(RuntimeError):
        torch.zeros(1, device="meta").item()


def test_state_bytes_counts_grads_and_moments():
    layer = torch.nn.Linear(10, 10)   # 110 parameters
    assert B.state_bytes([layer], optimizer_moments=2) == 110 * 4 * 4   # weight, grad, 2 Adam moments
    layer.requires_grad_(False)
    assert B.state_bytes([layer], optimizer_moments=2) == 110 * 4


def test_gpu_hours_arithmetic():
    # 312 TFLOP/s at 50% for one hour = 312e12 * 0.5 * 3600 FLOPs
    assert B.gpu_hours(312e12 * 0.5 * 3600, 312.0, 0.5) == pytest.approx(1.0)
    assert B.gpu_hours(0.0, 312.0, 0.3) == 0.0


DRY_RUN = """Building DAG of jobs...
Job stats:
job       count
rule train_gan_hsr:
    input: a
    output: results/x/network.pt, results/x/options.json
    jobid: 3
    reason: Missing output files
    wildcards: gan_dataset=ffhq10k, aug=ada, plr=on, hsr=vit_dino, hsr_levels=all
    resources: tmpdir=<TBD>

localrule table:
    output: results/tables/t.md
    jobid: 0
"""


def test_parse_dry_run():
    jobs = B.parse_dry_run(DRY_RUN)
    assert [j.rule for j in jobs] == ["train_gan_hsr", "table"]
    assert jobs[0].wc == {"gan_dataset": "ffhq10k", "aug": "ada", "plr": "on", "hsr": "vit_dino",
                          "hsr_levels": "all"}
    assert jobs[0].output.startswith("results/x/network.pt")
    assert jobs[1].wc == {}


class _FixedCoster:
    def cost(self, job):
        return B.JobCost(1e15, 2e9, 1, "unit") if job.rule == "train_gan_hsr" else None


def test_family_rows_sum_jobs_and_render_table():
    jobs = [B.Job("train_gan_hsr", (), "a"), B.Job("train_gan_hsr", (), "b"), B.Job("table", (), "t"),
            B.Job("fig_3_4", (), "f1"), B.Job("fig_4_1", (), "f2"), B.Job("all", (), "")]
    rows = B.family_rows(jobs, _FixedCoster())
    assert [r["family"] for r in rows if r["family"] in ("all", "figures")] == ["figures"]
    assert next(r for r in rows if r["family"] == "figures")["jobs"] == 2
    gan = next(r for r in rows if r["family"] == "train_gan_hsr")
    assert gan["jobs"] == 2 and gan["flops"] == 2e15 and gan["peak_bytes"] == 2e9
    assert not next(r for r in rows if r["family"] == "table")["modelled"]
    anchor = {"flops_per_kimg": 5e14, "achieved_tflops_per_gpu": 15.6, "utilisation_fp32": 1.0,
              "utilisation_fp16": 0.125, "projected_gb_per_gpu_fp32": 5.4, "anchor_gb_per_gpu": 2.7,
              "per_gpu_batch": 8}
    text = B.render("c.yaml", rows, {"table_4.1": 2e15}, 2e15, anchor, "a100-bf16", 0.5)
    hours = B.gpu_hours(2e15, 312.0, 0.5)
    assert f"| train_gan_hsr | 2 | 2.0 | {hours:,.1f} | 2.0 |" in text
    assert f"| table_4.1 | {hours:,.1f} |" in text
    assert "vs 2.7 GB measured by StyleGAN2-ADA (2.0x;" in text
    assert "every GPU-hour above is 4.0x larger" in text        # 0.5 / 0.125
