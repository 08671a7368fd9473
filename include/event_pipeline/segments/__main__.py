"""Entry point for `python -m event_pipeline.segments`."""

import sys

from event_pipeline.segments.cli import main

sys.exit(main())
