"""CPA clicks: request models, bandit policies, and the Firestore store behind /sample, /feedback, /stats."""
