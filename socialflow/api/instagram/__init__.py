"""Instagram endpoints: connected accounts, the Instagram Login connect flow, the send ledger."""
