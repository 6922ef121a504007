"""How one trial runs: plan, launch (subprocess, timeout), measure, record, environment."""
