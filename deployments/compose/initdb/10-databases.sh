#!/bin/sh
# Creates the application and Prefect databases with their own roles, on the first start of
# an empty data volume (the postgres image runs /docker-entrypoint-initdb.d/*.sh once).
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
    -v sf_password="$POSTGRES_SOCIALFLOW_PASSWORD" \
    -v prefect_password="$POSTGRES_PREFECT_PASSWORD" <<'SQL'
CREATE ROLE socialflow LOGIN PASSWORD :'sf_password';
CREATE DATABASE socialflow OWNER socialflow;
CREATE ROLE prefect LOGIN PASSWORD :'prefect_password';
CREATE DATABASE prefect OWNER prefect;
SQL
