"""Export a regression run as a landmark model you can hand over, and check it (docs/use_lead.md).

    python -m lead_hsr.metrics.landmark_model export --features WEIGHTS --run METRICS_JSON --store STORE --out model.pt
    python -m lead_hsr.metrics.landmark_model check model.pt STORE

`export` joins what only the results know (the run's metrics.json: its test error; its regressor.pt; the store's
manifest: how its images were cropped, its landmarks) with the feature network into one
`lead_hsr.lead.landmark_model` file, and writes MODEL_CARD.md beside it. `check` predicts the store's test split
with the exported file alone and compares the error with the one recorded at export: the same images, functions and
batches as the regression run, so the two agree to float rounding (`CHECK_TOLERANCE`).
This module joins `lead` (the model) and the run's metrics, so it lives in `metrics` (imports flow metrics -> lead).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from lead_hsr.atomic import atomic_write_text
from lead_hsr.data.geometry import Geometry, PredictionCrop, central_crop
from lead_hsr.data.readers.celeba import LANDMARK_HEADER
from lead_hsr.data.store import open_store
from lead_hsr.errors import command, InputError
from lead_hsr.hashing import file_sha256
from lead_hsr.metrics.iod import BOX, Normaliser, iod_error
from lead_hsr.metrics.landmarks import regressor_path

METRIC = "iod"  # the regression runs' error: percent of the normaliser (lead_hsr.metrics.iod)
CARD_FILE = "MODEL_CARD.md"
CHECK_TOLERANCE = 1e-4  # |check error - recorded error|, in IOD percent: float rounding only
# Landmark names of the 5-point stores (CelebA / MAFL, and the MTFL / AFLW recrop with the same points, eyes first:
# lead_hsr.metrics.iod.EYE_INDICES); other stores (300W's 68 iBUG points, own data) number them from 1.
FIVE_POINT_PREPARERS = ("mafl", "mafl_unaligned", "aflw_m", "aflw_r")


def landmark_names(preparer: str, k: int) -> list[str]:
    if preparer in FIVE_POINT_PREPARERS and k == len(LANDMARK_HEADER) // 2:
        return [column[:-2] for column in LANDMARK_HEADER[::2]]
    return [str(i + 1) for i in range(k)]


def normaliser_record(normaliser: Normaliser):
    """The normaliser as the config writes it ({pair: [i, j]} or "box")."""
    return {"pair": list(normaliser.pair)} if normaliser.pair is not None else BOX


def export(features, metrics_json, store_path, out, normaliser, geometry: dict, dataset: str,
           config_files: list[str] | None = None) -> dict:
    """Write `out` (a landmark model) and MODEL_CARD.md beside it; returns the payload's provenance."""
    from lead_hsr.lead.dense_model import read_dense_payload
    from lead_hsr.lead.landmark_model import landmark_model_payload, read_landmark_payload, save_landmark_model
    from lead_hsr.lead.regressor import load_regressor, regressor_payload

    metrics_json = Path(metrics_json)
    metrics = _read_metrics(metrics_json)
    regressor, feature_size, image_size = load_regressor(regressor_path(metrics_json))
    store = open_store(store_path)
    geometry = Geometry.from_config(geometry)
    if tuple(store.manifest["image_size"]) != (geometry.resize, geometry.resize):
        raise InputError(f"{store_path}: store images are {store.manifest['image_size']} px, the geometry {geometry} "
                         "expects resize x resize: export with the config the run was made with.")
    norm = Normaliser.from_config(normaliser)
    k = int(regressor.n_landmarks)
    norm.check(k)
    preparer = store.manifest.get("preparer", store.manifest.get("name"))
    sources = [Path(features), regressor_path(metrics_json), metrics_json]
    provenance = {
        "config": [str(path) for path in (config_files or [])], "run": str(metrics_json), "dataset": dataset,
        "store": str(store_path), "store_sources_sha256": store.manifest.get("sources_sha256", ""),
        "preparer": preparer, "annotations": str(metrics["annotations"]), "seed": int(metrics["seed"]),
        "n_train": int(metrics["n_train"]), "n_test": int(metrics["n_test"]), "metric": METRIC,
        "metric_description": f"mean landmark error in % of the {norm.describe()}, test split",
        "test_error": float(metrics[METRIC]), "test_error_mean_shape": float(metrics["iod_mean_shape"]),
        "feature_kind": metrics.get("feature_kind", ""), "feature_dim": int(metrics.get("feature_dim", 0)),
        "sources_sha256": {str(path): file_sha256(path) for path in sources},
    }
    payload = landmark_model_payload(
        read_dense_payload(features), regressor_payload(regressor, feature_size, image_size), geometry,
        PredictionCrop.for_store(preparer, store.manifest.get("options")), landmark_names(preparer, k),
        normaliser_record(norm), provenance)
    save_landmark_model(payload, out)
    atomic_write_text(model_card(read_landmark_payload(out), Path(out).name), Path(out).with_name(CARD_FILE))
    return provenance


def _read_metrics(path: Path) -> dict:
    try:
        metrics = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise InputError(f"{path}: expected a regression run's metrics.json ({err}); rerun that regression job.")
    missing = [key for key in (METRIC, "iod_mean_shape", "annotations", "seed", "n_train", "n_test")
               if key not in metrics]
    if missing:
        raise InputError(f"{path}: not a regression run's metrics (missing {missing}); pass the metrics.json of "
                         "results/<config>/lead/regression/.../seed~<s>/.")
    return metrics


def model_card(payload: dict, file_name: str) -> str:
    """MODEL_CARD.md: what the model is, its data, annotation count and test error, and how to use it."""
    p, geometry, crop = payload["provenance"], payload["geometry"], payload["prediction_crop"]
    features = payload["features"]
    names = payload["landmark_names"]
    return "\n".join([
        f"# Landmark model `{file_name}`", "",
        f"LEAD landmark regressor on frozen {features['kind']} features ({features['arch']}, "
        f"{p['feature_dim']}-d), exported from the regression run `{p['run']}`.", "",
        "| | |", "|---|---|",
        f"| dataset | {p['dataset']} (store `{p['store']}`, preparer `{p['preparer']}`) |",
        f"| annotations | {p['annotations']} ({p['n_train']} training images), seed {p['seed']} |",
        f"| test error | **{p['test_error']:.4f}** {p['metric']} ({p['metric_description']}, "
        f"{p['n_test']} images); mean shape {p['test_error_mean_shape']:.4f} |",
        f"| landmarks | {len(names)}: {', '.join(names[:10])}{' ...' if len(names) > 10 else ''} |",
        f"| input | images resized to {geometry['resize']} px, central {geometry['input_size']} px "
        f"(crop {geometry['crop']}), normalised with mean {geometry['mean']} std {geometry['std']} |",
        f"| crop of a new image | whole image: `{crop['whole_image']}`; with a face box: `{crop['box']}` |",
        f"| config | {', '.join(p['config']) or '(not recorded)'} |", "",
        "Sources (sha256):", "", *[f"- `{path}`: `{digest}`" for path, digest in p["sources_sha256"].items()], "",
        "Use (docs/use_lead.md):", "",
        f"    python -m lead_hsr.lead.predict {file_name} IMAGES_DIR --out predictions.csv "
        "[--boxes boxes.csv] [--overlays overlays/]", "",
        "Load it in Python with `torch.load(path, weights_only=True)` (plain dict) or "
        "`lead_hsr.lead.landmark_model.load_landmark_model(path)`.", "",
    ])


def check(model_path, store_path, device: str = "cpu") -> dict:
    """The exported model's error on its store's test split, beside the error recorded at export."""
    from lead_hsr.lead.landmark_model import load_landmark_model

    model = load_landmark_model(model_path, device)
    store = open_store(store_path)
    rows = store.split("test")
    crops, truth = central_crop(np.asarray(store.images[rows]), store.landmarks[rows], model.geometry.crop)
    pred = model.predict_crops(np.ascontiguousarray(crops))
    error = iod_error(pred, truth, Normaliser.from_config(model.normaliser))
    recorded = float(model.provenance.get("test_error", float("nan")))
    return {"error": error, "recorded": recorded, "difference": abs(error - recorded), "n_test": int(len(rows)),
            "metric": model.provenance.get("metric", METRIC)}


@command
def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lead_hsr.metrics.landmark_model", description=__doc__.split(
        "\n\n")[0] + "\n\n" + __doc__.split("\n\n")[2], formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    ex = sub.add_parser("export", help="regression run -> one landmark model file + MODEL_CARD.md")
    ex.add_argument("--features", required=True, help="stage-1/stage-2 weights.pt of the run's feature source")
    ex.add_argument("--run", required=True, help="the regression run's metrics.json (regressor.pt beside it)")
    ex.add_argument("--store", required=True, help="the run's prepared store (results/<cfg>/data/prepared/<name>)")
    ex.add_argument("--out", required=True, help="model file to write (MODEL_CARD.md goes beside it)")
    ex.add_argument("--normaliser", default=None, help="JSON ({\"pair\": [i, j]} or \"box\"); default: the "
                                                       "paper pair of the store's dataset")
    ex.add_argument("--resize", type=int, required=True, help="config geometry.resize the run used")
    ex.add_argument("--crop", type=int, required=True, help="config geometry.crop the run used")
    ex.add_argument("--dataset", default=None, help="dataset name recorded (default: the store's name)")
    ch = sub.add_parser("check", help="error of a model file on its store's test split vs the recorded one")
    ch.add_argument("model")
    ch.add_argument("store")
    ch.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)
    if args.command == "export":
        store_name = Path(args.store).name
        normaliser = json.loads(args.normaliser) if args.normaliser else store_name
        done = export(args.features, args.run, args.store, args.out, normaliser,
                      {"resize": args.resize, "crop": args.crop}, args.dataset or store_name)
        print(f"{args.out}: test error {done['test_error']:.4f} {done['metric']} ({done['n_test']} images)")
        return 0
    result = check(args.model, args.store, args.device)
    same = result["difference"] <= CHECK_TOLERANCE
    print(f"{args.model}: {result['metric']} on {result['n_test']} test images {result['error']:.6f}, recorded "
          f"{result['recorded']:.6f}: {'same' if same else 'DIFFERENT'} (|diff| {result['difference']:.2e})")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
