"""The HTTP service: auth, workspaces, the builder API, webhooks and the web app.
Filled in by the API work; nothing here yet."""
