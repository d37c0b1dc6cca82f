"""Knowledge bases API: bases, document uploads, and trying queries."""
