#!/usr/bin/env bash
# Starts the local PostgreSQL and Redis when they are down (idempotent). Used by the test and
# sandbox commands so that both work on a fresh machine.
set -euo pipefail

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

if ! port_open 6379; then
  echo "starting redis" >&2
  mkdir -p /var/lib/redis /var/log/redis
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log
fi
if ! port_open 5432; then
  echo "starting postgresql" >&2
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql)" main start
fi
for _ in $(seq 1 50); do
  if port_open 6379 && port_open 5432; then exit 0; fi
  sleep 0.2
done
echo "PostgreSQL or Redis did not come up" >&2
exit 1
