"""``python -m minicnn.visualize``: see :mod:`minicnn.visualize.command`."""
from .command import main

main()
