"""Operator tools that work on the local stack (`make run`) or on a real project: report, evaluate,
reset, traffic, drop, load-products. Each chooses where it works the same way (tools/target.py)."""
