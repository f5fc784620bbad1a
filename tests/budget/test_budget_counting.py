"""lead_hsr.budget.counting: FLOP and memory counts of small known layers against hand-computed values."""
import pytest
import torch

from lead_hsr.budget import counting as C


def test_linear_forward_backward_flops_by_hand():
    # y = x W^T: 2*N*I*O forward; backward: dX (2*N*I*O) and dW (2*N*I*O) -> 6*N*I*O
    n, i, o = 8, 32, 16
    layer = torch.nn.Linear(i, o, bias=False, device="meta")
    x = torch.zeros(n, i, device="meta", requires_grad=True)
    m = C.measure(lambda: layer(x).sum().backward(), list(layer.parameters()))
    assert m.flops == 6 * n * i * o
    assert m.saved_bytes == n * i * 4   # the input is saved for dW; W itself is a parameter, not counted


def test_conv_forward_flops_by_hand():
    # 3x3 conv, stride 1, padding 1: 2 * N * H * W * C_out * C_in * 9
    n, c_in, c_out, h = 2, 3, 8, 10
    conv = torch.nn.Conv2d(c_in, c_out, 3, padding=1, bias=False, device="meta")
    x = torch.zeros(n, c_in, h, h, device="meta")
    with torch.no_grad():
        m = C.measure(lambda: conv(x))
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

    assert C.measure(penalty).flops > 2 * n * i


def test_meta_scalars_restore_item():
    with C._meta_scalars():
        assert torch.zeros(1, device="meta").item() == 0.0
    assert torch.ones(1).item() == 1.0
    with pytest.raises(RuntimeError):
        torch.zeros(1, device="meta").item()


def test_meta_scalars_let_a_step_branch_on_a_coin_and_index_with_a_draw():
    # StyleGAN2-ADA's style mixing (lead_hsr.gan.loss.mix_styles): bool() of a coin, int() of a cutoff
    meta, real = torch.zeros([], device="meta"), torch.zeros([])
    with C._meta_scalars():
        assert bool(meta < 0.9) is True and int(meta) == 1 and float(meta) == 0.0
        assert bool(real) is False and int(real + 3) == 3 and float(real + 2) == 2.0   # real tensors untouched
    for read in (bool, int, float):
        with pytest.raises(RuntimeError):
            read(meta)


def test_state_bytes_counts_grads_and_moments():
    layer = torch.nn.Linear(10, 10)   # 110 parameters
    assert C.state_bytes([layer], optimizer_moments=2) == 110 * 4 * 4   # weight, grad, 2 Adam moments
    layer.requires_grad_(False)
    assert C.state_bytes([layer], optimizer_moments=2) == 110 * 4
