"""ImageEncoder and ImageCaptioner: the layer contract, region coordinates, decoding consistency,
saving, keras.applications backbones from a weights file, and bad settings."""

import keras
import numpy as np
import pytest
from decoding_checks import assert_decoding_follows_teacher_forcing
from layer_contract import run_layer_contract

from seqzoo.zoo.models.captioning import ImageCaptioner, ImageEncoder

SIZE = 32
IMAGES = np.random.default_rng(0).uniform(0, 255, (3, SIZE, SIZE, 3)).astype("float32")


def small_captioner(**kwargs):
    settings = {"image_size": SIZE, "filters": (4, 8), "feature_dim": 6, "embedding_dim": 5,
                "units": 6, **kwargs}
    return ImageCaptioner(11, **settings)


def test_encoder_contract_and_grid(tmp_path):
    # Three convolutions and the projection, each a kernel and a bias.
    outputs = run_layer_contract(lambda: ImageEncoder(SIZE, filters=(4, 8, 8), feature_dim=5),
                                 IMAGES, expected_output_shapes=[(3, 16, 5)],
                                 expected_num_trainable_weights=8, tmp_path=tmp_path)
    assert np.all(outputs[0] >= 0.0)  # ReLU features
    assert ImageEncoder(48, filters=(4, 8, 8)).grid_shape == (6, 6)


def test_region_coordinates_are_appended_in_reading_order():
    encoder = ImageEncoder(SIZE, filters=(4, 4, 4, 4), feature_dim=3)
    assert encoder.grid_shape == (2, 2)
    np.testing.assert_allclose(encoder.coordinates(), [[-1, -1], [-1, 1], [1, -1], [1, 1]])
    # With zero convolution weights every cell's features are zero, so the projection sees
    # only where the cell is: relu(W [0, row, column] + b), by hand.
    encoder(IMAGES)
    for weight in encoder.features.weights:
        weight.assign(np.zeros(weight.shape, "float32"))
    kernel, bias = (w.numpy() for w in encoder.projection.weights)
    coordinates = np.array([[-1, -1], [-1, 1], [1, -1], [1, 1]], "float32")
    expected = np.maximum(coordinates @ kernel[-2:] + bias, 0.0)
    np.testing.assert_allclose(encoder(IMAGES)[1], expected, atol=1e-6)


@pytest.mark.parametrize("settings", [
    {},
    {"attention": "luong_general", "cell": "gru", "num_layers": 2},
    {"attention": "none", "bridge": "learned"},
])
def test_teacher_forcing_agrees_with_greedy_and_beam_one(settings):
    model = small_captioner(**settings)
    target_in = assert_decoding_follows_teacher_forcing(
        lambda method, **kw: model.caption(IMAGES, method=method, **kw),
        lambda target_in: model({"image": IMAGES, "target_in": target_in})["logits"])
    weights = model({"image": IMAGES, "target_in": target_in})["attention"].numpy()
    assert weights.shape == (3, target_in.shape[1], 64)
    if settings.get("attention") == "none":
        assert np.all(weights == 0.0)
    else:
        np.testing.assert_allclose(weights.sum(-1), 1.0, atol=1e-5)


def test_initial_state_comes_from_the_mean_region_feature():
    model = small_captioner(cell="gru")
    regions, states = model.encode(IMAGES)
    kernel, bias = (w.numpy() for w in model.bridge.projection.weights)
    expected = np.tanh(regions.numpy().mean(axis=1) @ kernel + bias)
    np.testing.assert_allclose(states[0], expected, atol=1e-5)


def test_keras_save_and_reload_gives_equal_outputs(tmp_path):
    model = small_captioner(attention="luong_general", dropout=0.1)
    inputs = {"image": IMAGES, "target_in": np.array([[2, 4], [2, 5], [2, 6]], "int32")}
    expected = model(inputs)["logits"].numpy()
    model.save(tmp_path / "captioner.keras")
    reloaded = keras.saving.load_model(tmp_path / "captioner.keras")
    assert isinstance(reloaded, ImageCaptioner)
    assert reloaded.get_config() == model.get_config()
    np.testing.assert_allclose(reloaded(inputs)["logits"], expected, atol=1e-6)


def test_applications_backbone_from_a_weights_file_frozen_or_fine_tuned(tmp_path):
    random = ImageEncoder(SIZE, backbone="mobilenet_v3_small", feature_dim=4)
    path = tmp_path / "backbone.weights.h5"
    random.features.save_weights(path)
    frozen = ImageEncoder(SIZE, backbone="mobilenet_v3_small", feature_dim=4,
                          backbone_weights=str(path), trainable_backbone=False)
    for loaded, saved in zip(frozen.features.weights, random.features.weights):
        np.testing.assert_array_equal(loaded.numpy(), saved.numpy())
    assert frozen(IMAGES).shape == (3, frozen.grid_shape[0] * frozen.grid_shape[1], 4)
    assert {id(w) for w in frozen.trainable_weights} == {id(w) for w in
                                                         frozen.projection.trainable_weights}
    random.build()
    assert len(random.trainable_weights) > len(random.projection.trainable_weights)
    with pytest.raises(ValueError, match="Nothing is downloaded at run time"):
        ImageEncoder(SIZE, backbone="resnet50", backbone_weights="imagenet")


def test_bad_settings_name_what_is_accepted():
    with pytest.raises(ValueError, match="'cnn', 'mobilenet_v2'"):
        ImageEncoder(SIZE, backbone="vgg")
    with pytest.raises(ValueError, match="feature_dim equal to units"):
        small_captioner(attention="luong_dot", feature_dim=5)
    with pytest.raises(ValueError, match="filters"):
        ImageEncoder(SIZE, filters=())
    with pytest.raises(ValueError, match="method='viterbi'"):
        small_captioner().caption(IMAGES, method="viterbi")
