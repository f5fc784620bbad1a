import numpy as np
import pandas as pd
import pytest
import torch

from lead_hsr.data.store import write_store
from lead_hsr.errors import InputError
from lead_hsr.metrics import attributes as attr

COLUMNS = ["Male", "Smiling", "Young", "Blond_Hair", "Black_Hair", "Bangs", "No_Beard"]


def test_targets_follow_the_documented_columns_and_signs():
    table = pd.DataFrame([[1, -1, 1, 1, -1, -1, 1],    # blond, no beard
                          [-1, 1, -1, -1, 1, 1, -1],   # black hair, beard
                          [1, 1, 1, -1, -1, 1, 1],     # neither hair colour -> hair masked
                          [1, 1, 1, 1, 1, 1, 1]],      # both hair colours -> hair masked
                         columns=COLUMNS)
    labels, mask = attr.attribute_targets(table)
    assert attr.ATTRIBUTE_NAMES == ("gender", "smile", "age", "hair", "bangs", "beard")
    assert labels[:, 0].tolist() == [1, 0, 1, 1] and labels[:, 2].tolist() == [1, 0, 1, 1]  # Male, Young
    assert labels[:2, 3].tolist() == [1, 0] and mask[:, 3].tolist() == [True, True, False, False]
    assert labels[:, 5].tolist() == [0, 1, 0, 0]  # beard = not No_Beard
    assert mask[:, [0, 1, 2, 4, 5]].all()


def test_missing_or_malformed_columns_are_input_errors():
    table = pd.DataFrame([[1, -1]], columns=["Male", "Smiling"])
    with pytest.raises(InputError, match="table.csv: attribute columns .*Young"):
        attr.attribute_targets(table, "store/table.csv")
    table = pd.DataFrame([[1, 1, 1, 1, -1, -1, 1], [1, 0, 1, 1, -1, -1, 1]], columns=COLUMNS)
    with pytest.raises(InputError, match="store/table.csv:3: column 'Smiling' has value 0"):
        attr.attribute_targets(table, "store/table.csv")


def test_masked_bce_ignores_undefined_labels():
    logits = torch.tensor([[2.0, -50.0]])
    labels = torch.tensor([[1.0, 1.0]])
    loss = attr.masked_bce(logits, labels, torch.tensor([[1.0, 0.0]]))
    assert loss.item() == pytest.approx(np.log1p(np.exp(-2.0)), rel=1e-6)


def _toy_store(path, n=480, size=16, seed=0):
    """Each attribute drives one visible cue: learnable attributes with known labels."""
    rng = np.random.default_rng(seed)
    signs = rng.choice([-1, 1], size=(n, len(COLUMNS)))
    signs[:, 4] = np.where(rng.random(n) < 0.2, signs[:, 3], -signs[:, 3])  # some hair rows undefined
    images = np.full((n, size, size, 3), 90, np.uint8)
    images[:, :, :, 0] += (signs[:, 0] > 0)[:, None, None].astype(np.uint8) * 120          # Male: red
    images[:, size // 2:, :, 1] += (signs[:, 1] > 0)[:, None, None].astype(np.uint8) * 120  # Smiling: green bottom
    images[:, :, :size // 2, 2] += (signs[:, 2] > 0)[:, None, None].astype(np.uint8) * 120  # Young: blue left
    images[:, : size // 4] = np.where((signs[:, 3] > 0)[:, None, None, None], 250, 10)     # Blond top rows
    images = np.clip(images.astype(int) + rng.integers(-20, 20, images.shape), 0, 255).astype(np.uint8)
    table = pd.DataFrame(signs, columns=COLUMNS)
    table.insert(0, "split", np.where(np.arange(n) < 400, "train", "val"))
    table.insert(0, "file", [f"{i:06d}.jpg" for i in range(n)])
    write_store(path, images, None, table, {"name": "toy-celeba"})
    return signs


def test_training_learns_visible_attributes_and_round_trips(tmp_path):
    _toy_store(tmp_path / "store")
    options = dict(image_size=16, widths=[8, 16], epochs=8, batch_size=32, lr=3e-3)  # as read from YAML
    summary = attr.train_attribute_classifiers(tmp_path / "store", tmp_path / "clf.pt", options)
    accuracy = summary["val_accuracy"]
    assert accuracy["gender"] > 0.9 and accuracy["smile"] > 0.9 and accuracy["age"] > 0.9
    assert accuracy["hair"] > 0.9
    assert 0.3 < accuracy["bangs"] < 0.7  # no visual cue: chance level (an honest negative control)
    assert summary["num_train"] == 400 and summary["num_val"] == 80
    model = attr.load_attribute_classifier(tmp_path / "clf.pt")
    assert model.attributes == attr.ATTRIBUTE_NAMES and model.summary["options"]["image_size"] == 16
    images = np.load(tmp_path / "store" / "images.npy")[400:]
    logits = attr.predict_logits(model, images)
    assert logits.shape == (80, 6)
    upscaled = torch.nn.functional.interpolate(attr.uint8_to_float(images[:4]), scale_factor=2, mode="nearest")
    assert model(upscaled).shape == (4, 6)  # generator images of any size are resized to the training size


def test_missing_checkpoint_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match="clf.pt: attribute classifier checkpoint not found"):
        attr.load_attribute_classifier(tmp_path / "clf.pt")


def test_device_auto_picks_cuda_when_there_is_one(tmp_path):
    # config/config.yaml says `device: auto` like every other device setting of the paper config
    _toy_store(tmp_path / "store", n=440)
    options = dict(image_size=16, widths=[4], epochs=1, batch_size=64, device="auto")
    summary = attr.train_attribute_classifiers(tmp_path / "store", tmp_path / "clf.pt", options)
    assert summary["options"]["device"] == ("cuda:0" if torch.cuda.is_available() else "cpu")
