"""Losses against independent reference computations (hand-checked values, naive versions, autograd facts)."""

import math

import torch
import torch.nn.functional as F

from lead_hsr.lead import byol, dense_objectives as do, moco
from lead_hsr.lead.backbones import build_backbone

torch.set_num_threads(1)


def test_protocol_constants():
    assert do.LEAD_TAU == 0.05 and do.CL_TEMPERATURE == 7.0 and do.CL_DISTANCE_POWER == 0.5
    assert byol.TAU_BASE == 0.996
    assert (moco.QUEUE_SIZE, moco.TEMPERATURE, moco.MOMENTUM) == (4096, 0.07, 0.999)


def _explicit_lead(s_src, s_tgt, t_src, t_tgt, tau, t_tau):
    """Per-location loops over Eq. 3.2-3.3 (mean instead of sum), written independently of the module."""
    b, _, h, w = s_src.shape
    total, count = 0.0, 0
    for i in range(b):
        fs, ft = s_src[i].reshape(-1, h * w).T, s_tgt[i].reshape(-1, h * w).T
        hs, ht = t_src[i].reshape(-1, h * w).T, t_tgt[i].reshape(-1, h * w).T
        for u in range(h * w):
            q_logits = F.cosine_similarity(fs[u][None], ft, dim=1) / tau
            p_logits = F.cosine_similarity(hs[u][None], ht, dim=1) / t_tau
            p = p_logits.exp() / p_logits.exp().sum()
            log_q = q_logits - q_logits.exp().sum().log()
            total += -(p * log_q).sum()
            count += 1
    return total / count


def test_lead_loss_chunked_equals_naive_and_explicit():
    gen = torch.Generator().manual_seed(0)
    s_src, s_tgt = torch.randn(2, 8, 5, 6, generator=gen), torch.randn(2, 8, 5, 6, generator=gen)
    t_src, t_tgt = torch.randn(2, 40, 5, 6, generator=gen), torch.randn(2, 40, 5, 6, generator=gen)
    s_src.requires_grad_(True)
    chunked = do.lead_loss(s_src, s_tgt, t_src, t_tgt, chunk_size=7)
    naive = do.lead_loss_naive(s_src, s_tgt, t_src, t_tgt)
    explicit = _explicit_lead(s_src, s_tgt, t_src, t_tgt, 0.05, 0.05)
    assert torch.allclose(chunked, naive, rtol=1e-5) and torch.allclose(naive, explicit, rtol=1e-4)
    g_chunk, = torch.autograd.grad(chunked, s_src)
    g_naive, = torch.autograd.grad(naive, s_src)
    assert torch.allclose(g_chunk, g_naive, rtol=1e-4, atol=1e-7)
    # sharpening options are honoured in both versions, and change the value
    sharp = do.lead_loss(s_src, s_tgt, t_src, t_tgt, teacher_tau=0.01, center_teacher=True, chunk_size=4)
    assert torch.allclose(sharp, do.lead_loss_naive(s_src, s_tgt, t_src, t_tgt, teacher_tau=0.01,
                                                    center_teacher=True), rtol=1e-5)
    assert not torch.allclose(sharp, chunked)


def test_lead_gradient_vanishes_when_distributions_match():
    gen = torch.Generator().manual_seed(1)
    src, tgt = torch.randn(2, 6, 4, 4, generator=gen), torch.randn(2, 6, 4, 4, generator=gen)
    student_src, student_tgt = src.clone().requires_grad_(True), tgt.clone().requires_grad_(True)
    loss = do.lead_loss(student_src, student_tgt, src, tgt, chunk_size=5)
    g_src, g_tgt = torch.autograd.grad(loss, [student_src, student_tgt])
    assert g_src.abs().max() < 1e-5 and g_tgt.abs().max() < 1e-5
    # ...and does not vanish when they differ
    other = do.lead_loss(student_src, student_tgt, src.flip(-1), tgt, chunk_size=5)
    assert torch.autograd.grad(other, student_src)[0].abs().max() > 1e-3


def test_pairs_are_different_images_and_stay_inside_even_slices():
    x = torch.arange(4.0)
    assert do.pair_targets(x).tolist() == [1.0, 0.0, 3.0, 2.0]  # DDP shares [0, 1] | [2, 3] keep their pairs
    assert do.pair_targets(torch.arange(5.0)).tolist() == [1.0, 0.0, 3.0, 2.0, 0.0]


def test_byol_loss_hand_checked():
    p = torch.tensor([[1.0, 0.0], [1.0, 0.0], [3.0, 4.0]])
    z = torch.tensor([[2.0, 0.0], [0.0, 5.0], [-3.0, -4.0]])
    # cosines 1, 0, -1 -> 2 - 2cos = 0, 2, 4
    assert torch.allclose(byol.regression_loss(p, z), torch.tensor([0.0, 2.0, 4.0]))
    # equals the squared distance of the normalised vectors (thesis Eq. 3.1 with BYOL's normalisation)
    assert torch.allclose(byol.regression_loss(p, z), (F.normalize(p) - F.normalize(z)).pow(2).sum(1))


def test_byol_tau_schedule_and_ema():
    assert byol.target_tau(0, 100) == 0.996 and byol.target_tau(100, 100) == 1.0
    assert math.isclose(byol.target_tau(50, 100), 0.998)
    model = byol.BYOL(build_backbone("resnet18"), proj_hidden=16, proj_dim=8)
    with torch.no_grad():
        for p in model.backbone.parameters():
            p.add_(1.0)
    before = model.target_backbone.conv1.weight.clone()
    model.update_target(0.75)
    expected = 0.75 * before + 0.25 * model.backbone.conv1.weight
    assert torch.allclose(model.target_backbone.conv1.weight, expected)


def test_byol_forward_symmetric_loss_and_grads_only_online():
    torch.manual_seed(0)
    model = byol.BYOL(build_backbone("resnet18"), proj_hidden=16, proj_dim=8)
    v1, v2 = torch.randn(3, 3, 32, 32), torch.randn(3, 3, 32, 32)
    loss = model(v1, v2)
    assert 0 <= loss.item() <= 8  # sum of two terms in [0, 4]
    loss.backward()
    assert model.backbone.conv1.weight.grad is not None
    assert all(p.grad is None for p in model.target_parameters())


def test_info_nce_hand_checked():
    q = torch.tensor([[1.0, 0.0]])
    k = torch.tensor([[1.0, 0.0]])
    queue = torch.tensor([[0.0, 1.0], [-1.0, 0.0]])
    t = 0.5
    # logits [1, 0, -1] / 0.5 -> loss = -log(e^2 / (e^2 + e^0 + e^-2))
    expected = -math.log(math.exp(2) / (math.exp(2) + 1 + math.exp(-2)))
    assert math.isclose(moco.info_nce(q, k, queue, t).item(), expected, rel_tol=1e-6)


def test_moco_queue_ring_buffer_and_momentum():
    torch.manual_seed(0)
    model = moco.MoCo(build_backbone("resnet18"), queue_size=5, dim=4)
    keys = torch.eye(4)[:3]
    model.enqueue(keys)
    model.enqueue(keys)
    assert int(model.queue_ptr) == 1
    assert torch.equal(model.queue[:1], keys[2:3]) and torch.equal(model.queue[3:5], keys[:2])
    with torch.no_grad():
        model.backbone.conv1.weight.add_(1.0)
    before = model.key_backbone.conv1.weight.clone()
    model.momentum_update()
    expected = 0.999 * before + 0.001 * model.backbone.conv1.weight
    assert torch.allclose(model.key_backbone.conv1.weight, expected)
    loss = model(torch.randn(2, 3, 32, 32), torch.randn(2, 3, 32, 32))
    assert loss.item() > 0 and int(model.queue_ptr) == 3


def test_cl_constants_per_width_are_the_readme_values():
    # contrast-landmark README: softargmax_mul 6.5 / temperature 8 for out_dim 64, 7 / 7 for 128 and 256
    assert do.cl_constants(64) == (6.5, 8.0)
    assert do.cl_constants(128) == do.cl_constants(256) == do.cl_constants(16) == (7.0, 7.0)


def test_cl_loss_float64_against_a_loop_and_gradcheck():
    """Their dense_corr_loss written out (float64): per image, softmax over v of T * cos(f_u, f_v) times
    (stride * grid distance) ** 0.5, summed, divided by h * w * b; and autograd's gradient vs finite differences."""
    gen = torch.Generator().manual_seed(3)
    feat = torch.randn(2, 5, 3, 4, generator=gen, dtype=torch.float64)
    total = torch.zeros((), dtype=torch.float64)
    for b in range(2):
        f = F.normalize(feat[b].reshape(5, -1), dim=0)
        for u in range(12):
            att = torch.softmax(8.0 * (f[:, u:u + 1] * f).sum(0), dim=0)
            for v in range(12):
                total += att[v] * (4 * math.dist(divmod(u, 4), divmod(v, 4))) ** 0.5
    loss = do.cl_dense_correlation_loss(feat, stride=4, temperature=8.0)
    assert loss.dtype == torch.float64 and abs(loss.item() - total.item() / 24) < 1e-13
    assert torch.autograd.gradcheck(lambda x: do.cl_dense_correlation_loss(x, 4, 8.0), feat.clone().requires_grad_())
    proj = do.CLProjector(in_dim=5, dim=3, softargmax_mul=6.5).double()
    assert torch.autograd.gradcheck(lambda x: do.cl_dense_correlation_loss(proj(x), 4, 8.0),
                                    feat.clone().requires_grad_())


def test_lead_loss_float64_gradcheck():
    gen = torch.Generator().manual_seed(4)
    s_src, s_tgt = (torch.randn(2, 4, 3, 3, generator=gen, dtype=torch.float64).requires_grad_() for _ in range(2))
    t_src, t_tgt = (torch.randn(2, 6, 3, 3, generator=gen, dtype=torch.float64) for _ in range(2))
    assert do.lead_loss(s_src, s_tgt, t_src, t_tgt, chunk_size=4).dtype == torch.float64
    assert torch.autograd.gradcheck(lambda a, b: do.lead_loss(a, b, t_src, t_tgt, chunk_size=4), (s_src, s_tgt))


def test_cl_loss_reference_and_projector():
    gen = torch.Generator().manual_seed(0)
    feat = torch.randn(2, 5, 3, 4, generator=gen)
    loss = do.cl_dense_correlation_loss(feat, stride=4)
    # independent double loop
    total = 0.0
    for b in range(2):
        f = F.normalize(feat[b].reshape(5, -1), dim=0)
        for u in range(12):
            att = torch.softmax(7.0 * (f[:, u:u + 1] * f).sum(0), dim=0)
            uy, ux = divmod(u, 4)
            for v in range(12):
                vy, vx = divmod(v, 4)
                total += att[v] * (4 * math.hypot(uy - vy, ux - vx)) ** 0.5
    assert math.isclose(loss.item(), total.item() / 24, rel_tol=1e-5)
    # orthogonal features per location keep attention on the location itself -> much lower loss
    one_hot = torch.eye(12).reshape(1, 12, 3, 4) * 10
    assert do.cl_dense_correlation_loss(one_hot, 4).item() < 0.1 * loss.item()
    proj = do.CLProjector(in_dim=5, dim=3)
    out = proj(feat)
    assert out.shape == (2, 3, 3, 4) and torch.allclose(out.sum((2, 3)), torch.ones(2, 3))


def test_byol_matches_byol_pytorch_package_on_same_weights_and_views():
    """Independent reference: the byol-pytorch package's BYOL loss and gradients on identical weights/views."""
    import torchvision
    from byol_pytorch import BYOL as PackageBYOL

    torch.manual_seed(0)
    ours = byol.BYOL(build_backbone("resnet18"), proj_hidden=32, proj_dim=16)
    net = torchvision.models.resnet18(weights=None)
    n = 4
    theirs = PackageBYOL(net, image_size=32, hidden_layer="avgpool", projection_size=16,
                         projection_hidden_size=32, use_simplicial_embeddings=False,
                         augment_fn=lambda x: x[: len(x) // 2], augment_fn2=lambda x: x[len(x) // 2:])
    theirs.online_encoder.projector.load_state_dict(ours.projector.state_dict())
    theirs.online_predictor.load_state_dict(ours.predictor.state_dict())
    net.load_state_dict(ours.backbone.state_dict() | {k: v for k, v in net.state_dict().items()
                                                      if k.startswith("fc.")})
    theirs.reset_moving_average()  # target = copy of the (now identical) online network
    v1, v2 = torch.randn(n, 3, 32, 32), torch.randn(n, 3, 32, 32)
    loss_ours, loss_theirs = ours(v1, v2), theirs(torch.cat([v1, v2]))
    assert torch.allclose(loss_ours, loss_theirs, rtol=1e-5)
    loss_ours.backward()
    loss_theirs.backward()
    assert torch.allclose(ours.backbone.conv1.weight.grad, net.conv1.weight.grad, rtol=1e-4, atol=1e-7)
    assert torch.allclose(ours.predictor[0].weight.grad, theirs.online_predictor[0].weight.grad,
                          rtol=1e-4, atol=1e-7)
