#!/bin/sh
# First start: initdb, the role and database named by POSTGRES_*; then postgres in the foreground.
set -eu
mkdir -p "$PGDATA" /run/postgresql
chown -R postgres:postgres "$PGDATA" /run/postgresql
if [ ! -s "$PGDATA/PG_VERSION" ]; then
    su postgres -c "initdb -D '$PGDATA' --encoding=UTF8 --locale=C.UTF-8 --auth-host=scram-sha-256 --auth-local=trust -U postgres" >/dev/null
    echo "host all all all scram-sha-256" >> "$PGDATA/pg_hba.conf"
    su postgres -c "pg_ctl -D '$PGDATA' -o '-c listen_addresses=' -w start" >/dev/null
    psql -v ON_ERROR_STOP=1 -U postgres -h /run/postgresql -q \
        -c "CREATE ROLE \"${POSTGRES_USER:-postgres}\" LOGIN SUPERUSER PASSWORD '${POSTGRES_PASSWORD}'" 2>/dev/null \
        || psql -U postgres -h /run/postgresql -q -c "ALTER ROLE \"${POSTGRES_USER:-postgres}\" PASSWORD '${POSTGRES_PASSWORD}'"
    [ "${POSTGRES_DB:-postgres}" = postgres ] \
        || psql -U postgres -h /run/postgresql -q -c "CREATE DATABASE \"${POSTGRES_DB}\" OWNER \"${POSTGRES_USER:-postgres}\""
    su postgres -c "pg_ctl -D '$PGDATA' -m fast -w stop" >/dev/null
fi
exec su postgres -c "exec postgres -D '$PGDATA' -c listen_addresses='*'"
