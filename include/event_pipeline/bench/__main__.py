"""`python -m event_pipeline.bench`: see event_pipeline.bench.run."""

from event_pipeline.bench.run import main

main()
