"""Meta webhooks: ``/webhooks/instagram`` (app level) and ``/webhooks/instagram/{flow_id}``."""
