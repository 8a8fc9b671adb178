"""Issue 26: a generated family of CPA and customer-agent environments with a held-out test split.

- `cpa_envs`: the seeded CPA environment generator (ranges and classes documented there);
- `customer_envs`: the same for the customer agents (segments, slates of three);
- `split` (+ `split.json`, committed): which seeds train and which test, and the guard that keeps
  tuning on the training seeds;
- `cpa_runner`, `customer_runner`: every policy over many environments in lockstep, paired draws;
- `policies`: the named policies and variants the family compares;
- `report`: tables per class and overall with paired 95 % intervals, and plots;
- `run` (`python -m bench.family.run`, `make bench-family`) and `tune` (training seeds only).
"""
