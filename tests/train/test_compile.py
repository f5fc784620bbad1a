"""lead_hsr.train.compile with the real backend (inductor's C++ code on this CPU): a compiled step of a small net
with BatchNorm and random noise gives eager's loss, gradients, buffer updates and random draws (fallback_random),
keeps the eager names, and double backward through a compiled graph still fails in this torch (why the GAN's R1 and
path-length phases stay eager), and a buffer updated in place inside a compiled graph is read updated by its
backward (why MoCo's queue update runs outside it). The trainers' own compiled steps: tests/gan/test_gan_compile.py,
tests/lead/test_stage_compile.py (aot_eager)."""
import pytest
import torch

from lead_hsr.errors import InputError
from lead_hsr.train import compile as compile_mod


class NoisyNet(torch.nn.Module):
    """Conv, BatchNorm (buffers updated in the graph), per-call noise (as StyleGAN2's synthesis layers)."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3, padding=1, bias=False)   # a bias before BatchNorm: gradient 0 + rounding
        self.bn = torch.nn.BatchNorm2d(4)

    def forward(self, x):
        y = self.bn(self.conv(x))
        # noise drawn by shape as the GAN's layers do: randn_like(y) would follow y's memory layout, which inductor
        # may choose otherwise than eager (channels-last conv outputs), and put the same draws elsewhere
        noise = torch.randn(y.shape[0], 1, y.shape[2], y.shape[3])
        return (y + 0.1 * noise).relu().mean((1, 2, 3))


@pytest.fixture(scope="module")
def inductor_results():
    """(eager, compiled) of two training steps' (loss, grads, running_mean, next draw) of the same net."""
    torch.set_num_threads(1)
    x = torch.randn(4, 3, 8, 8, generator=torch.Generator().manual_seed(0))

    def run(enabled):
        torch.manual_seed(0)
        net = NoisyNet()
        fast = compile_mod.compiled(net, enabled)
        out = []
        for _ in range(2):
            net.zero_grad()
            loss = fast(x).square().sum()
            loss.backward()
            out.append((loss.detach(), [p.grad.clone() for p in net.parameters()], net.bn.running_mean.clone()))
        return net, fast, out, torch.rand(3)

    return run(False), run(True)


def test_inductor_step_equals_eager(inductor_results, monkeypatch):
    monkeypatch.delenv(compile_mod.BACKEND_ENV, raising=False)
    assert compile_mod.compile_backend() == "inductor"
    (_, _, eager, draw_e), (_, _, fast, draw_c) = inductor_results
    assert torch.equal(draw_e, draw_c)     # fallback_random: the graph's noise came from the same generator
    for (loss_e, grads_e, mean_e), (loss_c, grads_c, mean_c) in zip(eager, fast):
        torch.testing.assert_close(loss_c, loss_e, rtol=1e-5, atol=1e-7)
        for a, b in zip(grads_c, grads_e):
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)
        torch.testing.assert_close(mean_c, mean_e, rtol=1e-5, atol=1e-7)


def test_compiled_module_shares_parameters_and_saving_uses_the_eager_names(inductor_results):
    _, (net, fast, _, _) = inductor_results
    assert isinstance(fast, torch._dynamo.eval_frame.OptimizedModule)
    assert all(a is b for a, b in zip(fast.parameters(), net.parameters()))
    assert all(k.startswith("_orig_mod.") for k in fast.state_dict())      # what saving the handle would write
    assert not any("_orig_mod" in k for k in net.state_dict())
    assert compile_mod.compiled(net, False) is net


def test_double_backward_through_a_compiled_graph_fails(inductor_results):
    """If a torch release makes this pass, R1 and path length could run compiled (lead_hsr.train.compile)."""
    _, (net, fast, _, _) = inductor_results
    x = torch.randn(4, 3, 8, 8, requires_grad=True)
    with pytest.raises(RuntimeError, match="double backward|create_graph"):
        (grad,) = torch.autograd.grad(fast(x).sum(), x, create_graph=True)
        grad.square().sum().backward()


class QueueLoss(torch.nn.Module):
    """MoCo's pattern in small: a loss against a copy of a queue buffer, then the queue overwritten in place."""

    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(8, 4)
        self.register_buffer("queue", torch.randn(16, 4))

    def loss_and_keys(self, x, keys):
        query = torch.nn.functional.normalize(self.lin(x), dim=1)
        return torch.logsumexp(query @ self.queue.clone().T, 1).mean(), keys

    def enqueue(self, keys):
        with torch.no_grad():
            self.queue[:len(keys)] = keys

    def forward(self, x, keys):
        loss, keys = self.loss_and_keys(x, keys)
        self.enqueue(keys)
        return loss


def test_a_queue_updated_inside_the_graph_corrupts_the_gradient_and_outside_does_not(monkeypatch):
    """Inductor's backward reads the queue as the graph left it (the copy is elided), so the gradient is that of the
    new queue: MoCo compiles `loss_and_keys` and enqueues after the backward (lead_hsr.lead.moco, stage1). If a
    torch release makes the first assertion fail, the in-graph update has become safe."""
    monkeypatch.delenv(compile_mod.BACKEND_ENV, raising=False)
    torch.set_num_threads(1)
    x, keys = torch.randn(4, 8), torch.randn(4, 4)

    def gradient(mode):
        torch.manual_seed(0)
        net = QueueLoss()
        if mode == "eager":
            net(x, keys).backward()
        elif mode == "in graph":
            compile_mod.compiled(net)(x, keys).backward()
        else:
            loss, new_keys = compile_mod.compiled(net.loss_and_keys)(x, keys)
            loss.backward()
            net.enqueue(new_keys)
        return net.lin.weight.grad, net.queue

    (eager, queue), (in_graph, _), (split, split_queue) = (gradient(m) for m in ("eager", "in graph", "split"))
    assert (in_graph - eager).norm() > 1e-2 * eager.norm()
    torch.testing.assert_close(split, eager, rtol=1e-5, atol=1e-7)
    assert torch.equal(split_queue, queue)


def test_compile_option_is_boolean():
    assert compile_mod.check_compile_option(True, "x") is True
    with pytest.raises(InputError, match="stage-1 option: compile='false'"):
        compile_mod.check_compile_option("false", "stage-1 option")
