"""Web: HTTP in and out, input bounds, who is calling."""
