"""The differences from Keras that the README quotes: their direction and size, computed by
``tests/keras_reference/differences.py`` (which writes them to ``DIFFERENCES.md``).

Needs TensorFlow/Keras 3 (``pip install -e ".[keras]"``); skipped without it. Run with::

    pip install -e ".[keras]" && pytest tests/test_keras_differences.py
"""
import math
import os
import sys

import pytest

pytest.importorskip(
    "tensorflow",
    reason="the differences from Keras need TensorFlow/Keras 3: pip install -e \".[keras]\"")
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "keras_reference"))
import differences  # noqa: E402


def test_adam_moves_by_about_6e_6_of_its_step_from_both_betas_rounded():
    default = differences.optimizer_gap("Adam")
    fast = differences.optimizer_gap("Adam", learning_rate=0.02)
    for gap in (default, fast):
        assert all(6e-6 < r < 7.5e-6 for r in gap["rel"]), gap["rel"]
    assert 5e-9 < default["max"][0] < 1e-8  # 7e-9 at 0.001
    assert 1e-7 < fast["max"][0] < 2e-7  # 1.3e-7 at 0.02
    beta_2_alone = differences.optimizer_gap("Adam", {"beta_1": differences.np.float64(0.9)},
                                             learning_rate=0.02)
    beta_1_alone = differences.optimizer_gap("Adam", {"beta_2": differences.np.float64(0.999)},
                                             learning_rate=0.02)
    exact = differences.optimizer_gap("Adam", {"beta_1": differences.np.float64(0.9),
                                               "beta_2": differences.np.float64(0.999)},
                                      learning_rate=0.02)
    assert all(6e-6 < r < 7e-6 for r in beta_2_alone["rel"])  # 1 - 0.999 in float32: 1.3e-5
    assert all(1e-7 < r < 5e-7 for r in beta_1_alone["rel"])  # 1 - 0.9 in float32: 2.4e-7
    assert max(exact["max"]) < 1e-15


def test_adagrad_from_its_initial_accumulator_rounded():
    gap = differences.optimizer_gap("Adagrad")
    assert 1e-12 < gap["max"][0] < 1e-11  # 3e-12 at the default rate
    exact = differences.optimizer_gap(
        "Adagrad", {"initial_accumulator_value": differences.np.float64(0.1)})
    assert max(exact["max"]) < 1e-15


def test_sgd_momentum_rounded_shows_from_the_second_step():
    gap = differences.optimizer_gap("SGD", momentum=0.9)
    assert gap["max"][0] == 0  # the first step has no velocity yet
    assert 5e-9 < gap["rel"][1] < 2e-8 and 1e-10 < gap["max"][1] < 2e-9
    exact = differences.optimizer_gap("SGD", {"momentum": differences.np.float64(0.9)},
                                      momentum=0.9)
    assert max(exact["max"]) < 1e-15


@pytest.mark.parametrize("name", ["RMSprop", "Adadelta", "SGD"])
def test_optimizers_without_rounded_constants_agree(name):
    assert max(differences.optimizer_gap(name)["max"]) < 1e-15


def test_rescaling_scale_rounded():
    r = differences.rescaling_row()
    assert r["ours"] == 1.0
    assert 5.8e-8 < r["theirs"] - 1 < 6e-8


def test_accuracy_of_logits_on_one_unit():
    r = differences.logits_accuracy_row()
    assert r["ours"] == r["true_accuracy"]  # a logit above 0 is class 1
    assert abs(r["ours"] - r["theirs"]) > 0.01  # Keras compares the logit with 0.5


def test_accuracy_on_one_unit_with_soft_labels():
    r = differences.soft_label_accuracy_row()
    assert r["theirs"] == 0.0 and r["ours"] > 0.6


def test_saturated_softmax_then_another_layer():
    by_layer = {r["after"][0]: r for r in differences.saturated_softmax_rows()}
    clip = -math.log(1e-7)
    for key in "AD":  # linear Activation, Dropout at inference: Keras takes the logits
        r = by_layer[key]
        assert r["clipped"] > 0.1 and r["ours"] < clip  # tinynet: -log of at least 1e-7
        assert r["theirs"] > r["ours"] + 1
    assert abs(by_layer["R"]["theirs"] - by_layer["R"]["ours"]) < 1e-9  # Reshape: both clip


def test_soft_targets_not_summing_to_one():
    f32 = differences.soft_targets_fit(differences.np.float32)
    f64 = differences.soft_targets_fit(differences.np.float64)
    assert 1e-8 < f32["row_sum_error"] < 1e-6
    assert 1e-9 < f32["weights"] < 1e-6 and f32["loss"] < 1e-9
    assert f64["weights"] < 1e-13
