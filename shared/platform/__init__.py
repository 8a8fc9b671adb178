"""Platform: Firestore clients, sharded counters, the statistics cache, configuration documents,
logging and domain errors. Imports nothing above it."""
