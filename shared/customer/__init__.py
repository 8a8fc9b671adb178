"""Customer offers (Company A): request models, the slate agent, and the Firestore store behind
/predict and /rewards."""
