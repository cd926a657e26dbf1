#!/usr/bin/env bash
# Builds and starts the whole system on this machine: PostgreSQL and Redis (started if down),
# asf-control (serve + worker) and asf-proxy. Without AJAX_API_KEY it runs in sandbox mode, with
# ajax-sim standing in for Ajax; without STRIPE_SECRET_KEY, stripe-fake stands in for Stripe.
# Ctrl-C stops everything it started.
set -euo pipefail
cd "$(dirname "$0")/.."

state=.sandbox
mkdir -p "$state"
scripts/services.sh

profile=${ASF_PROFILE:-debug}
if [ "$profile" = release ]; then
  cargo build --workspace --bins --locked --release
else
  cargo build --workspace --bins --locked
fi
bin=target/$profile

# One secrets key per checkout, kept across restarts so stored sessions stay readable.
if [ -z "${ASF_SECRETS_KEY:-}" ]; then
  [ -f "$state/secrets-key" ] || head -c 32 /dev/urandom | base64 > "$state/secrets-key"
  chmod 600 "$state/secrets-key"
  ASF_SECRETS_KEY=$(cat "$state/secrets-key")
fi
export ASF_SECRETS_KEY

pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT INT TERM

wait_port() {
  for _ in $(seq 1 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "nothing is listening on port $1; see $state/*.log" >&2
  exit 1
}

sim_port=${ASF_SIM_PORT:-7070}
if [ -z "${AJAX_API_KEY:-}" ]; then
  mode=sandbox
  AJAX_API_KEY="sandbox-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
  AJAX_API_URL="http://127.0.0.1:$sim_port"
  "$bin/ajax-sim" --listen "127.0.0.1:$sim_port" --api-key "$AJAX_API_KEY" --rate 100/60s > "$state/ajax-sim.log" 2>&1 &
  pids+=($!)
  wait_port "$sim_port"
else
  mode=live
  AJAX_API_URL=${AJAX_API_URL:-https://api.ajax.systems}
fi
export AJAX_API_KEY AJAX_API_URL

export DATABASE_URL=${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/asf_sandbox}
db=${DATABASE_URL##*/}
psql -h 127.0.0.1 -U postgres -d postgres -tAc "select 1 from pg_database where datname = '$db'" | grep -q 1 \
  || psql -h 127.0.0.1 -U postgres -d postgres -qc "create database $db"

export ASF_CONTROL_LISTEN=${ASF_CONTROL_LISTEN:-127.0.0.1:8000}
export ASF_CONTROL_PLANE_URL="http://$ASF_CONTROL_LISTEN"

stripe_port=${ASF_STRIPE_FAKE_PORT:-12111}
if [ -z "${STRIPE_SECRET_KEY:-}" ]; then
  billing=sandbox
  STRIPE_SECRET_KEY="sk_test_sandbox"
  STRIPE_WEBHOOK_SECRET="whsec_sandbox_$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
  STRIPE_API_BASE="http://127.0.0.1:$stripe_port"
  "$bin/stripe-fake" --listen "127.0.0.1:$stripe_port" --webhook-url "http://$ASF_CONTROL_LISTEN/v1/billing/webhook" \
    --webhook-secret "$STRIPE_WEBHOOK_SECRET" > "$state/stripe-fake.log" 2>&1 &
  pids+=($!)
  wait_port "$stripe_port"
else
  billing=live
fi
export STRIPE_SECRET_KEY STRIPE_WEBHOOK_SECRET
[ -n "${STRIPE_API_BASE:-}" ] && export STRIPE_API_BASE
export ASF_PROXY_LISTEN=${ASF_PROXY_LISTEN:-127.0.0.1:8080}
export ASF_PROXY_METRICS_LISTEN=${ASF_PROXY_METRICS_LISTEN:-127.0.0.1:9090}

"$bin/asf-control" serve > "$state/control.log" 2>&1 &
pids+=($!)
wait_port "${ASF_CONTROL_LISTEN##*:}"
"$bin/asf-control" worker > "$state/worker.log" 2>&1 &
pids+=($!)
"$bin/asf-proxy" -c conf/proxy.yaml > "$state/proxy.log" 2>&1 &
pids+=($!)
wait_port "${ASF_PROXY_LISTEN##*:}"

cat <<INFO

AjaxSecurFlow is running ($mode mode).
  Ajax base URL for clients  http://$ASF_PROXY_LISTEN  (requests go to /api/...)
  Control plane              http://$ASF_CONTROL_LISTEN  (JWKS: /.well-known/jwks.json, admin: /v1/admin/)
  Proxy metrics              http://$ASF_PROXY_METRICS_LISTEN/metrics
INFO
if [ "$mode" = sandbox ]; then
  cat <<INFO
  Ajax simulator             $AJAX_API_URL  (stats: /_sim/stats)

Demo login (password "demo"; also demo2@example.com, or any NAME@sim.test with password "secret"):
  curl -s http://$ASF_PROXY_LISTEN/api/login -H 'content-type: application/json' \\
    -d '{"login":"demo@example.com","passwordHash":"$(printf demo | sha256sum | cut -d' ' -f1)"}'
Then, with the sessionToken and userId it returns:
  curl -s http://$ASF_PROXY_LISTEN/api/user/USER_ID/hubs -H 'X-Session-Token: SESSION_TOKEN'
New tenants are on the free plan (hub list and detail; other calls answer 402). A voucher for more:
  $bin/asf-control vouchers generate --count 1 --plan premium --duration-days 30
  curl -s http://$ASF_CONTROL_LISTEN/v1/vouchers/redeem -H 'authorization: Bearer SESSION_TOKEN' \
    -H 'content-type: application/json' -d '{"code":"CODE"}'
INFO
fi
if [ "$billing" = sandbox ]; then
  echo "  Stripe stand-in            $STRIPE_API_BASE  (POST /v1/billing/checkout gives a checkout URL;"
  echo "                             pay it with: curl -X POST $STRIPE_API_BASE/_test/checkout/SESSION_ID/complete)"
fi
echo
echo "Logs in $state/. Ctrl-C stops everything."
wait -n "${pids[@]}"
echo "a component exited; stopping (see $state/*.log)" >&2
exit 1
