"""Pure maths the products share (off-policy estimators)."""
