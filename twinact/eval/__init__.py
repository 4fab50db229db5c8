"""Scoring trained actions: metrics, scorers, intervals, the evaluation of a suite with its report, and comparing runs.

May import: `config`, `runs`, `model`, `space`, `method`, `release`."""
