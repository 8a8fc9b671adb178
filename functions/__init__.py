"""The Cloud Functions entry points (main.py); deployed as the source archive's main.py (infra/source.tf)."""
