"""``python -m minicnn.summary NAME [--input C,H,W] [--num-classes N]``: see ``minicnn.summary``."""
import sys

from . import main

sys.exit(main())
