"""Batch scoring of client CSVs (Company B): the file format, client rules, episode writer and the job."""
