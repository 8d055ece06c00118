#!/usr/bin/env bash
# Makes the tutorial's figures, docs/img/*.png, with the commands the chapters show (run from docs/,
# with this checkout's minicnn). Trains LeNet-5 in full first: about a minute on 2 cores.
set -euo pipefail
cd "$(dirname "$0")"
export PYTHONPATH="$(cd .. && pwd)${PYTHONPATH:+:$PYTHONPATH}"

# chapters 1 and 5: the drawn figures (the graph of chapter 1's expression, a residual block, an
# Inception module, the receptive field of stacked 3x3 convolutions)
python figures.py

# chapter 2: the columns matrix
python -m minicnn.visualize lenet5 --kinds im2col --out img
python -m minicnn.visualize lenet5 --kinds im2col --im2col 2,3,2,1,1 --prefix padded- --out img

# chapter 4: the full LeNet-5 run (8 epochs, ~99.2%) and what it learned
rm -rf runs/lenet5
python -m minicnn.train lenet5 --out runs/lenet5 --no-progress
python -m minicnn.visualize runs/lenet5 --out img --prefix lenet5- \
      --kinds filters,features,saliency,confusion,misclassified,graph --count 6
