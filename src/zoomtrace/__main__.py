import sys

from zoomtrace.cli.main import main

sys.exit(main())
