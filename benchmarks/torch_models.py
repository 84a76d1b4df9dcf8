"""The practical work's four models in PyTorch, for the benchmarks: the same layers, sizes and
parameter counts as ``tinynet.report_models`` and ``tests/keras_reference/keras_models.py``.

    mlp_raw        784 -> Linear 256 relu -> Dropout 0.25 -> Linear 10          203,530
    mlp_features   392 -> Linear 256 relu -> Dropout 0.25 -> Linear 10          103,178
    cnn_digits     Conv 9@5x5, pool, Conv 9@5x5, pool, Conv 16@3x3, pool,
                   Flatten, Linear 25 relu, Linear 10                             7,465
    cnn_fashion_3  Conv 9@7x7, pool, [Conv 9@5x5, Conv 9@3x3] + pooled input,
                   pool, Conv 18@3x3, pool, Dropout 0.3, Flatten, Linear 32 relu,
                   Linear 10                                                     10,244

Differences from Keras that PyTorch's usual way of writing the same thing brings, none of which
changes the parameter count or the work per image:

* images are NCHW (PyTorch's layout): the channels-last batches are converted once, before timing;
  Flatten therefore orders the features (C, H, W) instead of Keras's (H, W, C);
* the models end with logits and the loss is ``nn.CrossEntropyLoss`` on integer labels (log-softmax
  and the loss fused), where Keras has a softmax layer and categorical cross-entropy on one-hot
  labels; tinynet takes the same fused logits path;
* "same" padding of an odd kernel is ``padding=k // 2``, which is what Keras does for stride 1;
* the optimizer is ``torch.optim.RMSprop(lr=0.001, alpha=0.9, eps=1e-07)`` (see ``rmsprop``).
"""
import torch
from torch import nn

# the report's model.summary() totals (the same numbers tinynet and Keras print)
EXPECTED_PARAMS = {"mlp_raw": 203_530, "mlp_features": 103_178, "cnn_digits": 7_465,
                   "cnn_fashion_3": 10_244}


def _conv(c_in, filters, k):
    return nn.Conv2d(c_in, filters, k, padding=k // 2)


def mlp(n_in, dropout=0.25):
    return nn.Sequential(nn.Linear(n_in, 256), nn.ReLU(), nn.Dropout(dropout), nn.Linear(256, 10))


def cnn_digits():
    return nn.Sequential(
        _conv(1, 9, 5), nn.ReLU(), nn.MaxPool2d(2),
        _conv(9, 9, 5), nn.ReLU(), nn.MaxPool2d(2),
        _conv(9, 16, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(16 * 3 * 3, 25), nn.ReLU(), nn.Linear(25, 10))


class CnnFashion3(nn.Module):
    """The report's residual Fashion model: the block's output is added to its pooled input."""

    def __init__(self):
        super().__init__()
        self.l1 = _conv(1, 9, 7)
        self.l2 = _conv(9, 9, 5)
        self.l2_2 = _conv(9, 9, 3)
        self.l3 = _conv(9, 18, 3)
        self.pool = nn.MaxPool2d(2)
        self.dropout = nn.Dropout(0.3)
        self.l5 = nn.Linear(18 * 3 * 3, 32)
        self.l7 = nn.Linear(32, 10)

    def forward(self, x):
        relu = torch.relu
        p = self.pool(relu(self.l1(x)))
        y = relu(self.l2_2(relu(self.l2(p))))
        y = self.pool(y + p)
        y = self.pool(relu(self.l3(y)))
        y = torch.flatten(self.dropout(y), 1)
        return self.l7(relu(self.l5(y)))


BUILDERS = {"mlp_raw": lambda: mlp(784), "mlp_features": lambda: mlp(392),
            "cnn_digits": cnn_digits, "cnn_fashion_3": CnnFashion3}


def build(name):
    return BUILDERS[name]()


def count_params(model):
    return sum(p.numel() for p in model.parameters())


def rmsprop(params):
    """RMSprop with Keras's defaults (learning rate 0.001, rho 0.9, epsilon 1e-7, no momentum, not
    centred), as close as PyTorch allows: PyTorch divides by ``sqrt(s) + eps`` where Keras divides
    by ``sqrt(s + eps)``; the two differ only while ``s`` is of the order of ``eps`` and cost the
    same. The stock optimizer is kept (not a hand-written one with Keras's formula) because it is
    what a PyTorch user runs and so what a timing should compare against."""
    return torch.optim.RMSprop(params, lr=0.001, alpha=0.9, eps=1e-07, momentum=0.0, centered=False)
