import sys

from zoomtrace.cli import main

sys.exit(main())
