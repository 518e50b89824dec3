import sys

from vaultlens.cli import main

sys.exit(main())
