"""Face-attribute classifiers for ALS, trained by the pipeline on CelebA's `list_attr_celeba.txt` columns.

The thesis uses the official StyleGAN TF1 classifiers, which cannot be loaded portably (DESIGN §7), so one small
CNN with one logit per attribute is trained on a prepared store whose table carries the 40 CelebA attribute
columns as +1/-1. Logit sign conventions (positive logit means ...):
    gender: Male          smile: Smiling       age: Young (positive = young)
    hair:   Blond_Hair vs Black_Hair (positive = blond; trained only on images with exactly one of the two)
    bangs:  Bangs         beard: not No_Beard (positive = has a beard)
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from lead_hsr.errors import InputError
from lead_hsr.train import atomic_save_torch, pick_device


@dataclass(frozen=True)
class Attribute:
    name: str
    positive: str  # CelebA column whose +1 means "positive logit"
    negative: str | None = None  # for contrasts: column whose +1 means "negative logit"; others are masked out
    inverted: bool = False  # positive logit when the column is -1 (No_Beard)


# Thesis §4.3.3 / Fig. 4.10: {gender, smile, age, hair, bangs, beard} (after Shen et al. InterFaceGAN).
ATTRIBUTES = (
    Attribute("gender", "Male"),
    Attribute("smile", "Smiling"),
    Attribute("age", "Young"),
    Attribute("hair", "Blond_Hair", negative="Black_Hair"),
    Attribute("bangs", "Bangs"),
    Attribute("beard", "No_Beard", inverted=True),
)
ATTRIBUTE_NAMES = tuple(a.name for a in ATTRIBUTES)


def attribute_targets(table: pd.DataFrame, source: str = "table") -> tuple[np.ndarray, np.ndarray]:
    """(labels in {0,1}, mask) arrays N x M from CelebA +1/-1 columns; mask is False where a label is undefined."""
    needed = sorted({a.positive for a in ATTRIBUTES} | {a.negative for a in ATTRIBUTES if a.negative})
    missing = [column for column in needed if column not in table.columns]
    if missing:
        raise InputError(f"{source}: attribute columns {missing} missing; expected CelebA's list_attr_celeba.txt "
                         f"columns as +1/-1. Fix: prepare the store from a CelebA root with list_attr_celeba.txt")
    for column in needed:
        bad = np.flatnonzero(~np.isin(table[column].to_numpy(), (1, -1)))
        if len(bad):
            line = int(bad[0]) + 2  # 1-based, after the CSV header
            raise InputError(f"{source}:{line}: column {column!r} has value {table[column].iloc[bad[0]]}; "
                             f"expected +1/-1 as in list_attr_celeba.txt. Fix: re-prepare the store from the "
                             f"official file")
    labels, mask = [], []
    for attribute in ATTRIBUTES:
        positive = table[attribute.positive].to_numpy() == 1
        if attribute.inverted:
            positive = ~positive
        defined = np.ones(len(table), bool)
        if attribute.negative:
            negative = table[attribute.negative].to_numpy() == 1
            defined = positive ^ negative  # exactly one of the two
        labels.append(positive)
        mask.append(defined)
    return np.stack(labels, 1).astype(np.float32), np.stack(mask, 1)


class AttributeClassifier(torch.nn.Module):
    """Small CNN: images in [-1, 1] (any size; resized to `image_size`) -> one logit per attribute."""

    def __init__(self, image_size: int = 64, widths=(32, 64, 128, 256), attributes=ATTRIBUTE_NAMES):
        super().__init__()
        self.image_size = image_size
        self.attributes = tuple(attributes)
        layers, channels = [], 3
        for width in widths:
            layers += [torch.nn.Conv2d(channels, width, 3, stride=2, padding=1, bias=False),
                       torch.nn.BatchNorm2d(width), torch.nn.ReLU(inplace=True),
                       torch.nn.Conv2d(width, width, 3, padding=1, bias=False),
                       torch.nn.BatchNorm2d(width), torch.nn.ReLU(inplace=True)]
            channels = width
        self.body = torch.nn.Sequential(*layers)
        self.head = torch.nn.Linear(channels, len(self.attributes))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if images.shape[-2:] != (self.image_size, self.image_size):
            images = F.interpolate(images, size=(self.image_size, self.image_size), mode="bilinear",
                                   align_corners=False, antialias=True)
        return self.head(self.body(images).mean(dim=(2, 3)))


@dataclass
class AttributeTrainOptions:
    image_size: int = 64
    widths: tuple = (32, 64, 128, 256)
    epochs: int = 5
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 1e-4
    seed: int = 0
    device: str = "cpu"  # cpu | cuda | auto (CUDA when available)
    max_train: int | None = None  # cap the training images (demo); None = the whole split
    train_split: str = "train"
    val_split: str = "val"
    hflip: bool = True  # attributes are mirror-symmetric


def uint8_to_float(images_nhwc: np.ndarray) -> torch.Tensor:
    """uint8 N x H x W x 3 -> float N x 3 x H x W in [-1, 1] (the generator's output range)."""
    return torch.from_numpy(np.ascontiguousarray(images_nhwc)).permute(0, 3, 1, 2).float() / 127.5 - 1


def masked_bce(logits: torch.Tensor, labels: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    losses = F.binary_cross_entropy_with_logits(logits, labels, reduction="none")
    return (losses * mask).sum() / mask.sum().clamp(min=1)


@torch.no_grad()
def predict_logits(model: AttributeClassifier, images_nhwc: np.ndarray, batch_size: int = 256,
                   device: str | torch.device = "cpu") -> np.ndarray:
    model.eval()
    chunks = [model(uint8_to_float(images_nhwc[s:s + batch_size]).to(device)).cpu().numpy()
              for s in range(0, len(images_nhwc), batch_size)]
    return np.concatenate(chunks) if chunks else np.zeros((0, len(model.attributes)), np.float32)


def masked_accuracy(logits: np.ndarray, labels: np.ndarray, mask: np.ndarray) -> dict[str, float]:
    correct = (logits > 0) == (labels > 0.5)
    return {name: float(correct[mask[:, j], j].mean()) if mask[:, j].any() else float("nan")
            for j, name in enumerate(ATTRIBUTE_NAMES)}


def _train_epoch(model, optimizer, images, labels, mask, indices, options, generator) -> float:
    model.train()
    order = indices[torch.randperm(len(indices), generator=generator).numpy()]
    total, count = 0.0, 0
    for start in range(0, len(order), options.batch_size):
        batch = np.sort(order[start:start + options.batch_size])  # sorted reads are kinder to the memmap
        x = uint8_to_float(images[batch]).to(options.device)
        if options.hflip:
            flip = torch.rand(len(batch), generator=generator) < 0.5
            x[flip] = x[flip].flip(-1)
        loss = masked_bce(model(x), torch.from_numpy(labels[batch]).to(options.device),
                          torch.from_numpy(mask[batch]).float().to(options.device))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        total, count = total + loss.item() * len(batch), count + len(batch)
    return total / max(count, 1)


def train_attribute_classifiers(store_path: str | Path, out_path: str | Path,
                                options: AttributeTrainOptions | dict | None = None) -> dict:
    """Train the attribute CNN on a prepared CelebA-style store; write the checkpoint atomically to `out_path`.

    Returns a summary: per-attribute validation accuracy, losses per epoch, counts, options.
    """
    from lead_hsr.data.store import open_store

    if not isinstance(options, AttributeTrainOptions):  # a plain dict from the config, or None
        options = AttributeTrainOptions(**{**(options or {}), "widths": tuple((options or {}).get(
            "widths", AttributeTrainOptions.widths))})
    options = replace(options, device=str(pick_device(options.device)))  # "auto": CUDA when there is one
    store = open_store(store_path)
    labels, mask = attribute_targets(store.table, f"{Path(store_path) / 'table.csv'}")
    train_index = store.split(options.train_split)[: options.max_train]
    val_index = store.split(options.val_split)
    if len(train_index) == 0:
        raise InputError(f"{store_path}: no images in split {options.train_split!r}; expected a CelebA-style "
                         f"store with a training split. Fix: check the store's table.csv 'split' column")
    torch.manual_seed(options.seed)
    generator = torch.Generator().manual_seed(options.seed)
    model = AttributeClassifier(options.image_size, options.widths).to(options.device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=options.lr, weight_decay=options.weight_decay)
    losses = [_train_epoch(model, optimizer, store.images, labels, mask, train_index, options, generator)
              for _ in range(options.epochs)]
    val_logits = predict_logits(model, store.images[val_index], device=options.device)
    summary = {"val_accuracy": masked_accuracy(val_logits, labels[val_index], mask[val_index]),
               "train_loss": losses, "num_train": int(len(train_index)), "num_val": int(len(val_index)),
               "attributes": [asdict(a) for a in ATTRIBUTES], "options": asdict(options),
               "store": str(store_path)}
    atomic_save_torch({"state_dict": model.cpu().state_dict(), "summary": summary}, Path(out_path))
    return summary


def load_attribute_classifier(path: str | Path, device: str | torch.device = "cpu") -> AttributeClassifier:
    """The trained classifier in eval mode; `.summary` holds its training record (accuracy, options)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: attribute classifier checkpoint not found; expected the output of "
                         f"train_attribute_classifiers. Fix: run the attribute-classifier rule first")
    payload = torch.load(path, map_location="cpu", weights_only=True)  # a result file must never run code
    options = payload["summary"]["options"]
    model = AttributeClassifier(options["image_size"], tuple(options["widths"]))
    model.load_state_dict(payload["state_dict"])
    model.summary = payload["summary"]
    return model.to(device).eval().requires_grad_(False)
