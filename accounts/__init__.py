"""Users and their API keys: who a caller is, and what they may reach."""
