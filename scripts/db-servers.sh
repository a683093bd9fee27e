#!/usr/bin/env bash
# Real PostgreSQL and MariaDB servers for the SQL store tests, on Debian 12 without systemd.
#
#   eval "$(bash scripts/db-servers.sh)"
#
# Run as root. Installs what is missing from Debian's packages, starts both servers listening
# on 127.0.0.1 only, waits until they accept connections, makes sure the user `simulacra`
# (password `simulacra`) and its database `simulacra_test` exist, and prints the `export`
# lines of SIMULACRA_TEST_POSTGRES_URL and SIMULACRA_TEST_MYSQL_URL on stdout; progress goes
# to stderr. Idempotent: running servers, users and databases are kept as they are.
set -euo pipefail

exec 3>&1 1>&2 # stdout (now fd 3) is for the export lines only
log() { printf 'db-servers: %s\n' "$*"; }
die() {
    log "error: $*"
    exit 1
}

[ "$(id -u)" -eq 0 ] || die "run as root"

DB_USER=simulacra
DB_PASSWORD=simulacra
DB_NAME=simulacra_test
HOST=127.0.0.1
WAIT_SECONDS=60

# -- install ------------------------------------------------------------------------------

have_postgres() {
    command -v pg_ctlcluster >/dev/null && compgen -G '/usr/lib/postgresql/*/bin/postgres' >/dev/null
}
have_mariadb() { [ -x /usr/sbin/mariadbd ] && command -v mariadb >/dev/null; }

install_packages() {
    local packages=("$@") created_policy=0
    export DEBIAN_FRONTEND=noninteractive
    # Only refresh the package lists when apt does not know a package (a clean machine).
    local package
    for package in "${packages[@]}"; do
        if ! apt-cache policy "$package" 2>/dev/null | grep -q 'Candidate: [0-9]'; then
            log "apt-get update"
            apt-get update -q
            break
        fi
    done
    # Keep the packages' maintainer scripts from starting the servers: this script starts
    # them, configured, below.
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod +x /usr/sbin/policy-rc.d
        created_policy=1
    fi
    log "apt-get install ${packages[*]}"
    local status=0
    apt-get install -y -q --no-install-recommends "${packages[@]}" || status=$?
    if [ "$status" -ne 0 ]; then
        log "install failed ($status); refreshing the package lists and retrying"
        apt-get update -q
        status=0
        apt-get install -y -q --no-install-recommends "${packages[@]}" || status=$?
    fi
    if [ "$created_policy" -eq 1 ]; then
        rm -f /usr/sbin/policy-rc.d
    fi
    [ "$status" -eq 0 ] || die "apt-get install ${packages[*]} failed"
}

missing=()
have_postgres || missing+=(postgresql)
have_mariadb || missing+=(mariadb-server)
if [ "${#missing[@]}" -gt 0 ]; then
    install_packages "${missing[@]}"
fi
have_postgres || die "PostgreSQL is still missing after the install"
have_mariadb || die "MariaDB is still missing after the install"

# Servers started below get no descriptor but 0-2: a server holding fd 3 (or a caller's pipe)
# would keep a caller's $(...), or whatever reads the caller's output, waiting until it exits.
close_inherited_fds() {
    local fd
    for fd in /proc/"$BASHPID"/fd/*; do
        fd="${fd##*/}"
        if [ "$fd" -gt 2 ]; then eval "exec $fd>&-"; fi
    done
}

wait_for() {
    local what="$1"
    shift
    local deadline=$((SECONDS + WAIT_SECONDS))
    until "$@" >/dev/null 2>&1; do
        [ "$SECONDS" -lt "$deadline" ] || return 1
        sleep 0.5
    done
    log "$what"
}

# -- PostgreSQL ---------------------------------------------------------------------------

# The newest installed server, and its cluster "main" (which the Debian package creates).
pg_version="$(compgen -G '/usr/lib/postgresql/*/bin/postgres' | cut -d/ -f5 | sort -V | tail -n 1)"
pg_cluster=main
pg_cluster_field() {
    pg_lsclusters -h | awk -v v="$pg_version" -v c="$pg_cluster" -v f="$1" '$1 == v && $2 == c { print $f }'
}
if [ -z "$(pg_cluster_field 2)" ]; then
    log "creating PostgreSQL cluster $pg_version/$pg_cluster"
    pg_createcluster "$pg_version" "$pg_cluster"
fi
pg_port="$(pg_conftool -s "$pg_version" "$pg_cluster" show port)"
# Debian's postgresql.conf includes conf.d/ last, so this file wins over it.
pg_conf="/etc/postgresql/$pg_version/$pg_cluster/conf.d/99-simulacra-test.conf"
pg_wanted="# Written by simulacra-session's scripts/db-servers.sh.
listen_addresses = '$HOST'
# Loopback only: no TLS handshake (Debian's default is on) for each of the tests' connections.
ssl = off"
pg_restart=0
if [ "$(cat "$pg_conf" 2>/dev/null || true)" != "$pg_wanted" ]; then
    log "writing $pg_conf"
    install -d -o postgres -g postgres "${pg_conf%/*}"
    printf '%s\n' "$pg_wanted" >"$pg_conf"
    pg_restart=1
fi
pg_status="$(pg_cluster_field 4)"
# pg_ctlcluster runs the server as the cluster's owner (postgres), never as root.
if [ "$pg_status" = online ] && [ "$pg_restart" -eq 1 ]; then
    log "restarting PostgreSQL $pg_version/$pg_cluster on port $pg_port"
    (close_inherited_fds && exec pg_ctlcluster "$pg_version" "$pg_cluster" restart)
elif [ "$pg_status" != online ]; then
    log "starting PostgreSQL $pg_version/$pg_cluster on port $pg_port"
    (close_inherited_fds && exec pg_ctlcluster "$pg_version" "$pg_cluster" start)
else
    log "PostgreSQL $pg_version/$pg_cluster already running on port $pg_port"
fi
wait_for "PostgreSQL accepts connections" pg_isready -q -h "$HOST" -p "$pg_port" ||
    die "PostgreSQL did not accept connections (see /var/log/postgresql/)"

pg_admin() { runuser -u postgres -- psql -X -q -v ON_ERROR_STOP=1 -p "$pg_port" -d postgres "$@"; }
# Sets the password on every run, so a role left from elsewhere still matches the URL.
pg_admin <<SQL
DO \$\$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$DB_USER') THEN
        CREATE ROLE $DB_USER LOGIN CREATEDB PASSWORD '$DB_PASSWORD';
    ELSE
        ALTER ROLE $DB_USER LOGIN CREATEDB PASSWORD '$DB_PASSWORD';
    END IF;
END
\$\$;
SQL
if [ -z "$(pg_admin -tA -c "SELECT 1 FROM pg_database WHERE datname = '$DB_NAME'")" ]; then
    log "creating PostgreSQL database $DB_NAME"
    pg_admin -c "CREATE DATABASE $DB_NAME OWNER $DB_USER ENCODING 'UTF8' TEMPLATE template0"
else
    pg_admin -c "ALTER DATABASE $DB_NAME OWNER TO $DB_USER"
fi

# -- MariaDB ------------------------------------------------------------------------------

mariadb_conf=/etc/mysql/mariadb.conf.d/99-simulacra-test.cnf
mariadb_wanted="# Written by simulacra-session's scripts/db-servers.sh.
[mysqld]
bind-address = $HOST
character-set-server = utf8mb4
collation-server = utf8mb4_unicode_ci
log-error = /var/log/mysql/error.log

[mysqld_safe]
# Debian's 50-mysqld_safe.cnf sends the log to syslog, which no daemon reads here.
skip-syslog
log-error = /var/log/mysql/error.log
"
mariadb_restart=0
if [ "$(cat "$mariadb_conf" 2>/dev/null || true)" != "${mariadb_wanted%$'\n'}" ]; then
    log "writing $mariadb_conf"
    printf '%s' "$mariadb_wanted" >"$mariadb_conf"
    mariadb_restart=1
fi
if [ ! -d /var/lib/mysql/mysql ]; then
    log "initializing the MariaDB data directory"
    mariadb-install-db --user=mysql --datadir=/var/lib/mysql --skip-test-db >/dev/null
fi
mariadb_up() { mariadb-admin --no-defaults --protocol=socket -uroot ping >/dev/null 2>&1; }
mariadb_stopped() { ! mariadb_up && ! pgrep -x mariadbd; }
mariadb_start() {
    install -d -o mysql -g mysql -m 755 /run/mysqld
    install -d -o mysql -g adm -m 2750 /var/log/mysql
    # mysqld_safe restarts mariadbd if it dies; setsid keeps it out of this script's session.
    { close_inherited_fds && exec setsid mysqld_safe; } </dev/null >/dev/null 2>&1 &
}
if mariadb_up && [ "$mariadb_restart" -eq 1 ]; then
    log "restarting MariaDB"
    mariadb-admin --protocol=socket -uroot shutdown
    wait_for "MariaDB stopped" mariadb_stopped || die "MariaDB did not stop"
    mariadb_start
elif ! mariadb_up; then
    log "starting MariaDB"
    mariadb_start
else
    log "MariaDB already running"
fi
wait_for "MariaDB accepts connections" mariadb_up ||
    die "MariaDB did not accept connections (see /var/log/mysql/error.log)"

mariadb_admin() { mariadb --protocol=socket -uroot "$@"; }
mariadb_port="$(mariadb_admin -NB -e 'SELECT @@port')"
# Accounts for TCP (127.0.0.1) and socket (localhost) clients; the password is set every run.
mariadb_admin <<SQL
CREATE DATABASE IF NOT EXISTS $DB_NAME CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;
ALTER DATABASE $DB_NAME CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;
CREATE USER IF NOT EXISTS '$DB_USER'@'127.0.0.1' IDENTIFIED BY '$DB_PASSWORD';
CREATE USER IF NOT EXISTS '$DB_USER'@'localhost' IDENTIFIED BY '$DB_PASSWORD';
ALTER USER '$DB_USER'@'127.0.0.1' IDENTIFIED BY '$DB_PASSWORD';
ALTER USER '$DB_USER'@'localhost' IDENTIFIED BY '$DB_PASSWORD';
GRANT ALL PRIVILEGES ON \`${DB_NAME//_/\\_}%\`.* TO '$DB_USER'@'127.0.0.1';
GRANT ALL PRIVILEGES ON \`${DB_NAME//_/\\_}%\`.* TO '$DB_USER'@'localhost';
SQL

# -- the URLs -----------------------------------------------------------------------------

wait_for "PostgreSQL accepts $DB_USER" env PGPASSWORD="$DB_PASSWORD" \
    psql -X -h "$HOST" -p "$pg_port" -U "$DB_USER" -d "$DB_NAME" -tAc 'SELECT 1' ||
    die "cannot log in to PostgreSQL as $DB_USER"
wait_for "MariaDB accepts $DB_USER" mariadb --no-defaults -h "$HOST" -P "$mariadb_port" -u "$DB_USER" \
    -p"$DB_PASSWORD" "$DB_NAME" -e 'SELECT 1' ||
    die "cannot log in to MariaDB as $DB_USER"

printf 'export SIMULACRA_TEST_POSTGRES_URL=%s\n' \
    "postgresql+psycopg://$DB_USER:$DB_PASSWORD@$HOST:$pg_port/$DB_NAME" >&3
printf 'export SIMULACRA_TEST_MYSQL_URL=%s\n' \
    "mysql+pymysql://$DB_USER:$DB_PASSWORD@$HOST:$mariadb_port/$DB_NAME" >&3
