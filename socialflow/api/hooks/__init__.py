"""Generic webhook triggers: POST /hooks/{flow_id}."""
