import sys

from vaultlens.cli import run

sys.exit(run())
