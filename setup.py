from setuptools import find_packages, setup

setup(
    name="tinynet",
    version="0.1.0",
    description="A small, readable deep-learning framework on NumPy that reproduces a Keras practical work",
    packages=find_packages(include=["tinynet", "tinynet.*"]),
    python_requires=">=3.9",
    install_requires=["numpy>=1.22", "numba>=0.57", "scikit-image>=0.20", "matplotlib>=3.5", "tqdm>=4.60"],
    extras_require={
        "dev": ["pytest>=7", "hypothesis>=6"],
        "gpu": ["cupy-cuda12x"],
        "cuda-check": ["nvidia-cuda-nvrtc-cu12"],  # NVRTC alone: compiles the CUDA source, no GPU
        "keras": ["tensorflow-cpu>=2.16"],
        "torch": ["torch"],
        "notebooks": ["jupytext>=1.14", "nbclient>=0.7", "ipykernel>=6"],
    },
)
