"""Tests of the production deployment files (compose, NGINX, Kubernetes, Dockerfile, CI)."""
