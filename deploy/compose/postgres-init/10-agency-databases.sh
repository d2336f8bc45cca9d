#!/bin/sh
# Runs once, when the PostgreSQL volume is first created: one role and one database per
# agency service, each role owning only its own database. Passwords come from the
# container's environment (GOVPM_DB_PASSWORD_<SERVICE>, see compose.yaml and .env.example).
set -eu
for service in registry review budget security filing gateway; do
  var="GOVPM_DB_PASSWORD_$(echo "$service" | tr '[:lower:]' '[:upper:]')"
  password=$(printenv "$var" || true)
  if [ -z "$password" ]; then
    echo "missing $var" >&2
    exit 1
  fi
  psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
       -v role="$service" -v password="$password" -v db="govpm_$service" <<'SQL'
CREATE ROLE :"role" LOGIN PASSWORD :'password';
CREATE DATABASE :"db" OWNER :"role";
REVOKE ALL ON DATABASE :"db" FROM PUBLIC;
SQL
done
