"""Reference answer to exercise 2."""


def conv_output_size(n, kernel, stride=1, padding="valid"):
    if padding == "same":
        return -(-n // stride)             # ceil(n / stride)
    return (n - kernel) // stride + 1


def conv_params(kernel_h, kernel_w, channels, filters):
    return kernel_h * kernel_w * channels * filters + filters
