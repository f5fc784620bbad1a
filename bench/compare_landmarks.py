"""Our CL dense baseline, DVE/CL landmark regressor and IOD evaluation beside the official code, same inputs.

    PYTHONPATH=. OMP_NUM_THREADS=1 .venv/bin/python bench/compare_landmarks.py \
        --contrast-landmark /path/to/contrast-landmark --dve /path/to/DVE [--dtypes float64 float32]

The official code is imported from the two checkouts the user names (nothing of it is copied here, nothing it
produces is stored); a missing optional package of theirs (tensorboard_logger) is stubbed. Both sides get the
same random descriptor maps, weights (copied across) and landmarks, built here in each dtype.

Compared (max abs diff and max rel diff = max |ours - ref| / max |ref|):
- CL stage 2 (train_feature_projector.py): `dense_corr_loss` vs `cl_dense_correlation_loss` (loss, gradient of
  the descriptors) at both temperatures CL uses (7; 8 for 64-d), and `FeatDistiller` (1x1 conv + spatial
  softmax) + that loss vs `CLProjector` + ours (output, loss, gradients of the descriptors, weight and bias);
  the per-width constants stage 2 resolves vs the ones CL's README gives.
- Regressor: `IntermediateKeypointPredictor` (DVE's, and CL's copy) with its weights copied into
  `LandmarkRegressor(coordinates="dve")`: soft-argmax points, predictions, loss (their regression_loss, alpha
  10), gradients of the 1x1 filters and of the per-landmark Linear weights; our "centres" convention and "l2"
  loss beside (the deliberate alternatives), and our bf16/fp16 projection.
- Evaluation: pixels -> [-1, 1] (their kp_normalize) and back (their kp_unnormalize), IOD error (their
  inter_ocular_error on [-1, 1] coordinates, batch means weighted by batch size as their AverageMeter) vs
  `lead_hsr.metrics.iod.iod_error` on pixels, MAFL-type (5 points, eyes 0/1) and 300W (68 points, 36/45); the
  eye indices of every dataset vs their data loaders.
"""
from __future__ import annotations

import argparse
import ast
import contextlib
import importlib
import re
import sys
import types
import warnings
from argparse import Namespace
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch

from lead_hsr.lead import dense_objectives as do
from lead_hsr.lead import regressor as reg
from lead_hsr.lead import stage2
from lead_hsr.metrics import iod
from lead_hsr.train.device import default_dtype

COLLIDING = ("utils", "model", "models", "data_loader", "NCE", "base", "logger", "parse_config")
# prepared dataset -> class name in DVE's data_loader/data_loaders.py and key in CL's eval_face.py eye_idxs
DATASET_NAMES = {"mafl": ("MAFLAligned", "MAFLAligned"), "aflw_m": ("AFLW_MTFL", "AFLW_MTFL"),
                 "aflw_r": ("AFLW", "AFLW"), "w300": ("ThreeHundredW", "ThreeHundredW")}


@contextlib.contextmanager
def checkout_on_path(root: Path):
    """Import modules from a reference checkout; its top-level packages (utils, model(s), ...) leave
    sys.modules afterwards, so the other checkout's same-named packages import cleanly."""
    sys.path.insert(0, str(root))
    try:
        yield
    finally:
        sys.path.remove(str(root))
        for name in list(sys.modules):
            if name.split(".")[0] in COLLIDING:
                del sys.modules[name]


def load_contrast_landmark(root: Path) -> SimpleNamespace:
    for optional in ("tensorboard_logger",):  # imported at the top of their scripts, unused here
        if importlib.util.find_spec(optional) is None:
            sys.modules[optional] = types.ModuleType(optional)
    with checkout_on_path(root), contextlib.redirect_stdout(sys.stderr):
        tfp = importlib.import_module("train_feature_projector")
        ref = SimpleNamespace(
            dense_corr_loss=tfp.dense_corr_loss,
            FeatDistiller=importlib.import_module("models.feat_distiller").FeatDistiller,
            Predictor=importlib.import_module("models.keypoint_prediction").IntermediateKeypointPredictor,
            regression_loss=importlib.import_module("models.loss").regression_loss,
            metric=importlib.import_module("models.metric"),
            kp_normalize=importlib.import_module("data_loader.data_loaders_face").kp_normalize,
        )
    ref.eye_idxs = _literal_dict(root / "eval_face.py", "eye_idxs")
    ref.readme_constants = _readme_constants(root / "README.md")
    return ref


def load_dve(root: Path) -> SimpleNamespace:
    with checkout_on_path(root), contextlib.redirect_stdout(sys.stderr):
        loaders = importlib.import_module("data_loader.data_loaders")
        return SimpleNamespace(
            Predictor=importlib.import_module("model.keypoint_prediction").IntermediateKeypointPredictor,
            regression_loss=importlib.import_module("model.loss").regression_loss,
            inter_ocular_error=importlib.import_module("model.metric").inter_ocular_error,
            kp_normalize=loaders.kp_normalize,
            eye_kp_idxs={name: getattr(loaders, dve).eye_kp_idxs for name, (dve, _) in DATASET_NAMES.items()},
        )


def _literal_dict(path: Path, name: str) -> dict:
    """The dict literal assigned to `name` in a reference script (read, not run)."""
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == name for t in node.targets):
            return ast.literal_eval(node.value)
    raise SystemExit(f"{path}: no `{name} = {{...}}` found")


def _readme_constants(path: Path) -> dict[int, tuple[float, float]]:
    """out_dim -> (softargmax_mul, temperature) from the sentences of CL's README that set them."""
    text = path.read_text()
    found = {}
    for mul, temp, dims in re.findall(r"`--softargmax_mul ([\d.]+) --temperature ([\d.]+)` for ((?:`--out_dim \d+`"
                                      r"(?: or )?)+)", text):
        for dim in re.findall(r"--out_dim (\d+)", dims):
            found.setdefault(int(dim), (float(mul.rstrip(".")), float(temp.rstrip("."))))
    return found


class Table:
    def __init__(self):
        self.rows = []

    def add(self, component: str, dtype, what: str, ours, ref, scale=None) -> None:
        """`scale`: what the rel. diff divides by when the reference is ~0 by construction (default max |ref|)."""
        ours, ref = _np(ours), _np(ref)
        if ours.shape != ref.shape:
            raise SystemExit(f"{component} / {what}: shapes differ, ours {ours.shape} vs reference {ref.shape}")
        diff = float(np.max(np.abs(ours - ref))) if ours.size else 0.0
        scale = float(np.max(np.abs(_np(scale) if scale is not None else ref))) if ref.size else 0.0
        self.rows.append((component, _dtype_name(dtype), what, diff, diff / scale if scale else float(diff > 0)))

    def note(self, component: str, dtype, what: str, text: str) -> None:
        self.rows.append((component, _dtype_name(dtype), what, text, ""))

    def print(self) -> None:
        header = ("component", "dtype", "what compared", "max abs diff", "max rel diff")
        cells = [header] + [(c, d, w, _fmt(a), _fmt(r)) for c, d, w, a, r in self.rows]
        widths = [max(len(row[i]) for row in cells) for i in range(5)]
        for i, row in enumerate(cells):
            print(" | ".join(cell.ljust(width) for cell, width in zip(row, widths)))
            if i == 0:
                print("-+-".join("-" * width for width in widths))


def _np(x) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().double().numpy()
    return np.asarray(x, dtype=np.float64)


def _dtype_name(dtype) -> str:
    return str(dtype).replace("torch.", "") if dtype is not None else "-"


def _fmt(value) -> str:
    return f"{value:.2e}" if isinstance(value, float) else str(value)


# --- CL stage 2 ----------------------------------------------------------------------------------------------


def compare_cl_stage2(ref, table: Table, dtype, seed: int = 0) -> None:
    gen = torch.Generator().manual_seed(seed)
    batch, size, stride, dim = 2, 24, 4, 16  # their training: 96x96 crops, 24x24 descriptors -> stride 4
    feat = torch.randn(batch, dim, size, size, generator=gen, dtype=torch.float64).to(dtype)
    for temperature in (7.0, 8.0):
        ours_in, ref_in = feat.clone().requires_grad_(), feat.clone().requires_grad_()
        ours = do.cl_dense_correlation_loss(ours_in, stride, temperature)
        theirs = ref.dense_corr_loss(ref_in, (batch, 3, size * stride, size * stride),
                                     Namespace(temperature=temperature), [dim])
        ours.backward()
        theirs.backward()
        name = f"CL dense loss, T={temperature:g}"
        table.add(name, dtype, "loss", ours, theirs)
        table.add(name, dtype, "d loss / d descriptors", ours_in.grad, ref_in.grad)
        if dtype == torch.float32:  # the loss computes in full precision under a caller's autocast
            for precision in ("bf16", "fp16"):
                with torch.autocast("cpu", dtype=reg.AUTOCAST_DTYPES[precision]):
                    low = do.cl_dense_correlation_loss(feat, stride, temperature)
                table.add(name, dtype, f"[precision] loss under {precision} autocast", low, theirs)

    in_dim, out_dim = 40, 64
    hyper = torch.rand(batch, in_dim, size, size, generator=gen, dtype=torch.float64).to(dtype)  # ReLU-like >= 0
    mul, temperature = ref.readme_constants.get(out_dim, (do.CL_SOFTARGMAX_MUL, do.CL_TEMPERATURE))
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        theirs_proj = ref.FeatDistiller(in_dim, kernel_size=1, mode="softmax", out_dim=out_dim,
                                        softargmax_mul=mul).to(dtype)
    ours_proj = do.CLProjector(in_dim, out_dim, mul).to(dtype)
    with torch.no_grad():
        ours_proj.conv.weight.copy_(theirs_proj.reg_conv.weight)
        ours_proj.conv.bias.copy_(theirs_proj.reg_conv.bias)
    ours_in, ref_in = hyper.clone().requires_grad_(), hyper.clone().requires_grad_()
    ours_out, theirs_out = ours_proj(ours_in), theirs_proj(ref_in)
    ours = do.cl_dense_correlation_loss(ours_out, stride, temperature)
    theirs = ref.dense_corr_loss(theirs_out, (batch, 3, size * stride, size * stride),
                                 Namespace(temperature=temperature), [out_dim])
    ours.backward()
    theirs.backward()
    name = f"CL projector {in_dim}->{out_dim} + loss"
    table.add(name, dtype, f"projector output (softmax x{mul:g})", ours_out, theirs_out)
    table.add(name, dtype, f"loss (T={temperature:g})", ours, theirs)
    table.add(name, dtype, "d loss / d descriptors", ours_in.grad, ref_in.grad)
    table.add(name, dtype, "d loss / d conv weight", ours_proj.conv.weight.grad, theirs_proj.reg_conv.weight.grad)
    table.add(name, dtype, "d loss / d conv bias (0: softmax shift-invariant; rel to weight grad)",
              ours_proj.conv.bias.grad, theirs_proj.reg_conv.bias.grad, scale=theirs_proj.reg_conv.weight.grad)


def compare_cl_settings(ref, table: Table) -> None:
    for dim, (mul, temperature) in sorted(ref.readme_constants.items()):
        opts = stage2._resolve({"objective": "cl", "dim": dim})
        table.add("CL stage-2 settings (README)", None, f"dim {dim}: softargmax_mul, temperature",
                  [opts["cl_softargmax_mul"], opts["cl_temperature"]], [mul, temperature])
    table.add("CL stage-2 settings (script)", None, "Adam betas of objective cl", stage2._resolve(
        {"objective": "cl"})["betas"], [0.5, 0.999])


# --- regressor -----------------------------------------------------------------------------------------------


def compare_regressor(name: str, Predictor, loss_fn, takes_list: bool, table: Table, dtype, seed: int = 0,
                      extras: bool = False) -> None:
    """Their IntermediateKeypointPredictor (50 points, softargmax 100) with its weights copied into ours."""
    n, channels, cells, image_size, k, points = 4, 32, 48, 96, 5, reg.N_INTERMEDIATE
    gen = torch.Generator().manual_seed(seed)
    # small descriptors keep the x100 soft-argmax soft (their filters are randn, std 1), so gradients are alive
    feats = (0.01 * torch.randn(n, channels, cells, cells, generator=gen, dtype=torch.float64)).to(dtype)
    pixels = (10 + 76 * torch.rand(n, k, 2, generator=gen, dtype=torch.float64)).to(dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # their torch.meshgrid without indexing=
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            theirs = Predictor(channels, num_annotated_points=k, num_intermediate_points=points,
                               softargmax_mul=reg.SOFTARGMAX_MUL).to(dtype)
        ours = reg.LandmarkRegressor(channels, k, points, reg.SOFTARGMAX_MUL, coordinates="dve").to(dtype)
        with torch.no_grad():
            ours.project.weight.copy_(theirs.inner_conv.weight)
            ours.combine.copy_(theirs.reg_conv.weight.view(k, 2, 2 * points))
        target_theirs = ref_kp_normalize(image_size, pixels)
        target_ours = reg.pixels_to_unit(pixels, image_size, "dve")
        pred_theirs, inter_theirs = theirs([feats] if takes_list else feats)
        loss_theirs = (loss_fn((pred_theirs,), {"keypts_normalized": target_theirs}, alpha=reg.LOSS_SCALE)
                       if takes_list else loss_fn(pred_theirs, target_theirs, alpha=reg.LOSS_SCALE))
    pred_ours = ours(feats)
    loss_ours = reg.regression_loss(pred_ours, target_ours, "smooth_l1", reg.LOSS_SCALE)
    loss_theirs.backward()
    loss_ours.backward()
    table.add(name, dtype, "targets [-1,1] (kp_normalize)", target_ours, target_theirs)
    table.add(name, dtype, "soft-argmax points", ours.intermediate_points(feats), inter_theirs)
    table.add(name, dtype, "predictions", pred_ours, pred_theirs)
    table.add(name, dtype, "loss (smooth-L1 of 10x)", loss_ours, loss_theirs)
    table.add(name, dtype, "d loss / d 1x1 filters", ours.project.weight.grad, theirs.inner_conv.weight.grad)
    table.add(name, dtype, "d loss / d Linear(100->2) weights", ours.combine.grad,
              theirs.reg_conv.weight.grad.view(k, 2, 2 * points))
    unused = sorted({p.split(".")[0] for p, v in theirs.named_parameters() if v.grad is None})
    if unused and extras:
        table.note(name, dtype, "their params without gradient", f"{', '.join(unused)}: unused copies")
    if not extras:
        return
    # the deliberate alternatives, with the reference behaviour beside
    centres = reg.LandmarkRegressor(channels, k, points, reg.SOFTARGMAX_MUL, coordinates="centres").to(dtype)
    centres.load_state_dict(ours.state_dict())
    with torch.no_grad():
        table.add(name, dtype, "[setting] coordinates=centres: predictions", centres(feats), pred_theirs)
        table.add(name, dtype, "[setting] coordinates=centres: targets",
                  reg.pixels_to_unit(pixels, image_size, "centres"), target_theirs)
        table.add(name, dtype, "[setting] loss=l2 (thesis text): loss value",
                  reg.regression_loss(pred_ours, target_ours, "l2", reg.LOSS_SCALE), loss_theirs)
        if dtype == torch.float32:
            for precision in ("bf16", "fp16"):
                with torch.autocast("cpu", dtype=reg.AUTOCAST_DTYPES[precision]):
                    low = ours(feats)
                table.add(name, dtype, f"[setting] precision={precision}: predictions", low, pred_theirs)


def ref_kp_normalize(image_size: int, pixels: torch.Tensor) -> torch.Tensor:
    return _REF_KP_NORMALIZE(image_size, image_size, pixels)


_REF_KP_NORMALIZE = None


# --- evaluation ----------------------------------------------------------------------------------------------


def compare_evaluation(cl, dve, table: Table, dtype, seed: int = 0) -> None:
    gen = torch.Generator().manual_seed(seed)
    image_size, n, batch = 96, 37, 32  # 37 images: a last batch of 5, as in their loaders
    for dataset, k in (("mafl", 5), ("w300", 68)):
        gt = (8 + 80 * torch.rand(n, k, 2, generator=gen, dtype=torch.float64)).to(dtype)
        pred = gt + (3 * torch.randn(n, k, 2, generator=gen, dtype=torch.float64)).to(dtype)
        eyes = iod.EYE_INDICES[dataset]
        gt_unit, pred_unit = (cl.kp_normalize(image_size, image_size, x) for x in (gt, pred))
        # their eval: 100 * mean IOD error per batch on [-1, 1] coordinates, AverageMeter weighted by batch size
        total = 0.0
        for start in range(0, n, batch):
            rows = slice(start, start + batch)
            total += float(cl.metric.inter_ocular_error(pred_unit[rows], gt_unit[rows], eyeidxs=list(eyes))) * len(
                gt[rows])
        theirs_cl = total / n
        meta = {"keypts_normalized": gt_unit}
        theirs_dve = float(dve.inter_ocular_error((pred_unit,), meta, SimpleNamespace(eye_kp_idxs=list(eyes)), {}))
        ours = iod.iod_error(pred.double().numpy(), gt.double().numpy(), eyes)
        label = f"IOD {dataset} (K={k}, eyes {eyes[0]},{eyes[1]})"
        table.add(label, dtype, "IOD % vs CL inter_ocular_error", ours, theirs_cl)
        table.add(label, dtype, "IOD % vs DVE inter_ocular_error", ours, theirs_dve)
        per_image = np.array([float(cl.metric.inter_ocular_error(pred_unit[i:i + 1], gt_unit[i:i + 1], list(eyes)))
                              for i in range(n)])
        table.add(label, dtype, "per-image IOD %", iod.iod_errors(pred.double().numpy(), gt.double().numpy(), eyes),
                  per_image)
        back_ours = reg.unit_to_pixels(pred_unit, image_size, "dve")
        back_theirs = torch.from_numpy(cl.metric.kp_unnormalize(image_size, image_size, pred_unit.numpy()))
        table.add(label, dtype, "[-1,1] -> pixels (kp_unnormalize)", back_ours, back_theirs)


def compare_eye_indices(cl, dve, table: Table) -> None:
    for dataset, (dve_name, cl_name) in DATASET_NAMES.items():
        ours = iod.EYE_INDICES[dataset]
        table.add("eye indices", None, f"{dataset} vs DVE {dve_name}", ours, dve.eye_kp_idxs[dataset])
        table.add("eye indices", None, f"{dataset} vs CL eval_face {cl_name}", ours, cl.eye_idxs[cl_name])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--contrast-landmark", type=Path, required=True, help="checkout of ContrastLandmark")
    parser.add_argument("--dve", type=Path, required=True, help="checkout of jamt9000/DVE")
    parser.add_argument("--dtypes", nargs="+", default=["float64", "float32"], choices=["float64", "float32"])
    args = parser.parse_args()
    torch.set_num_threads(1)
    for path, marker in ((args.contrast_landmark, "train_feature_projector.py"), (args.dve, "model/loss.py")):
        if not (path / marker).is_file():
            raise SystemExit(f"{path}: expected a checkout with {marker}")
    cl = load_contrast_landmark(args.contrast_landmark.resolve())
    dve = load_dve(args.dve.resolve())
    global _REF_KP_NORMALIZE
    _REF_KP_NORMALIZE = dve.kp_normalize
    table = Table()
    for dtype in (getattr(torch, name) for name in args.dtypes):
        with default_dtype(dtype):  # their modules build their grids (linspace) in the default dtype
            compare_cl_stage2(cl, table, dtype)
            compare_regressor("regressor vs DVE", dve.Predictor, dve.regression_loss, True, table, dtype,
                              extras=True)
            compare_regressor("regressor vs CL copy", cl.Predictor, cl.regression_loss, False, table, dtype)
            compare_evaluation(cl, dve, table, dtype)
    compare_cl_settings(cl, table)
    compare_eye_indices(cl, dve, table)
    table.print()


if __name__ == "__main__":
    main()
