"""The pieces of `benchmarks/suite.py`: what to measure (`config`), how a step runs (`runner`),
when a step can be skipped (`state`), the steps themselves (`steps`), RESULTS.md (`report`)
and the command line (`cli`)."""
