import sys

from rtvc.cli import main

sys.exit(main())
