"""The access guard of every route: policy, gate, API keys, rate limits, quotas."""
