"""Code shared by every Cloud Function: bandit policies, Firestore stores, request models."""
