"""Evaluation: scorers, tasks, statistics, the scorecard and the release gate."""
