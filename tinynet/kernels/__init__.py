"""The hot loops, behind small functions with one signature and one implementation per backend.

``numpy_ref`` is the readable reference; ``numba_cpu`` and ``cupy_gpu`` provide the same
functions, and the tests check them against the reference. Layers never import these modules
directly: they ask :func:`tinynet.backend.kernels` for the active one.

Conventions shared by every implementation:

* images are ``(N, H, W, C)``; ``pads = (top, bottom, left, right)`` zero (or -inf for pooling)
  rows/columns added around each image;
* ``im2col`` returns a ``(N*OH*OW, KH*KW*C)`` matrix whose column order ``(kh, kw, c)`` matches a
  Keras kernel ``(KH, KW, C, F)`` reshaped to ``(KH*KW*C, F)``;
* ``maxpool_forward`` returns the pooled output and, per output element, the index
  ``i*PW + j`` of the first maximum of its window in row-major order (TensorFlow's tie rule).
"""
