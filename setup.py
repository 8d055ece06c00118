from setuptools import find_packages, setup

setup(
    name="minicnn",
    version="0.1.0",
    description="A small deep-learning engine written from scratch on NumPy (CPU) and CuPy (GPU), "
                "with the five classic CNNs: LeNet-5, AlexNet, VGG, GoogLeNet and ResNet.",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    packages=find_packages(include=["minicnn", "minicnn.*"]),
    # An explicit root for the packages makes `pip install -e .` put the checkout on sys.path (a .pth line)
    # instead of installing an import hook that runs after Python's own search: run from the folder that
    # holds the checkout (itself named minicnn), that search would otherwise take the checkout folder for an
    # empty namespace package, and `import minicnn` would give a module without minicnn.tensor.
    package_dir={"": "."},
    python_requires=">=3.10",
    install_requires=[
        "numpy>=1.24",
        "tqdm>=4.60",          # progress bars for training and downloads
        "threadpoolctl>=3",    # sets the BLAS thread count (one thread suits the LeNets)
    ],
    extras_require={
        "gpu": ["cupy-cuda12x>=14"],   # CUDA 12 drivers; put_along_axis (max/min backward) is new in CuPy 14
        "gpu-cuda13": ["cupy-cuda13x>=14"],   # CUDA 13 drivers (checked on an H200: bench/RESULTS-gpu.md)
        "plot": ["matplotlib>=3.5"],
        "image": ["Pillow>=9"],
        "weights": ["safetensors>=0.4"],                      # save_weights / load_weights
        "onnx": ["onnx>=1.14", "onnxruntime>=1.16"],          # minicnn.onnx.export (opset 17), and running the files
        "mpi": ["mpi4py>=4.1", "mpich>=5.0"],                 # minicnn.distributed, train --distributed; mpich brings mpiexec
        "dev": ["pytest>=7", "hypothesis>=6.80", "matplotlib>=3.5", "Pillow>=9", "safetensors>=0.4", "onnx>=1.14",
                "onnxruntime>=1.16", "ruff>=0.6", "mpi4py>=4.1", "mpich>=5.0"],
    },
    entry_points={"console_scripts": ["minicnn-train=minicnn.train:main"]},
)
