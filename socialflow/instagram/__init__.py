"""Instagram: webhook verification and parsing, the Graph API client, messaging policy and the
send ledger. Filled in by the Instagram work; nothing here yet."""
