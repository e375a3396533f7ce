import sys

from mcunas.cli import main

sys.exit(main())
