import sys

from moldiff.cli.main import main

sys.exit(main())
