"""Demo data: a deterministic, realistic generator of customer-support tickets."""
