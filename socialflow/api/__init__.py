"""The HTTP service: auth, workspaces, the builder API, webhooks and the web app.

Split by domain (``api/flows/{router,schemas,service,dependencies}.py``); every module is
public and callers name it (``from socialflow.api.workspaces import service``). Nothing below
the API imports it: only the CLI, ``doctor`` and the migrations do.
"""
