#!/usr/bin/env bash
# Security against real Kafka clients: TLS (SSL), SASL_PLAINTEXT with PLAIN and
# SCRAM-SHA-256/512, SASL_SSL with SCRAM-SHA-512, mutual TLS required (a client without a
# certificate refused), wrong passwords refused with SASL_AUTHENTICATION_FAILED, a request
# before authentication (ILLEGAL_SASL_STATE), users made by `spool user` and by
# AlterUserScramCredentials. Two brokers on ephemeral ports with certificates from
# tools/gen-certs.sh; then ACLs on a third broker with the authorizer on (allowed, denied
# topic 29, group 30, CreateTopics 31, prefixed, DENY over ALLOW, super user, metrics).
# Called by check.sh (which sets up kcat and the Python venv).
# Usage: tools/kafka-clients/security-check.sh path/to/spool path/to/venv/python
set -uo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)
spool=${1:?spool binary}
py=${2:?python of the kafka-clients venv}
tmp=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; done
  rm -rf "$tmp"
}
trap cleanup EXIT
tools/gen-certs.sh "$tmp/certs" >/dev/null || exit 1
certs=$tmp/certs

# Users before the broker starts (alice, both SCRAM mechanisms); bob is added while it runs.
echo "alice-secret" | "$spool" user create alice --data-dir "$tmp/data" --password-stdin >/dev/null || exit 1

start() {  # name data-dir args...
  local name=$1 data=$2
  shift 2
  "$spool" broker --data-dir "$data" --listen 127.0.0.1:0 --http-listen none --default-partitions 1 \
    --kafka-ssl-certificate "$certs/broker.pem" --kafka-ssl-key "$certs/broker.key" "$@" >"$tmp/$name.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 1 100); do grep -q "^spool broker .* listening on" "$tmp/$name.log" 2>/dev/null && return 0; sleep 0.1; done
  echo "broker $name did not start:"; cat "$tmp/$name.log"; exit 1
}
port_of() {  # log protocol
  sed -n "s/^Kafka clients $2: [^ ]*:\([0-9][0-9]*\) (advertised.*/\1/p" "$tmp/$1.log" | head -1
}
start main "$tmp/data" --kafka-listen SSL://127.0.0.1:0 --kafka-listen SASL_PLAINTEXT://127.0.0.1:0 \
  --kafka-listen SASL_SSL://127.0.0.1:0
start mtls "$tmp/data-mtls" --kafka-listen SSL://127.0.0.1:0 --kafka-ssl-client-ca "$certs/ca.pem" --kafka-ssl-client-auth required
export SSL_ADDR="127.0.0.1:$(port_of main SSL)" SASL_PLAINTEXT_ADDR="127.0.0.1:$(port_of main SASL_PLAINTEXT)"
export SASL_SSL_ADDR="127.0.0.1:$(port_of main SASL_SSL)" MTLS_ADDR="127.0.0.1:$(port_of mtls SSL)" CERTS=$certs
echo "brokers: SSL $SSL_ADDR, SASL_PLAINTEXT $SASL_PLAINTEXT_ADDR, SASL_SSL $SASL_SSL_ADDR, mTLS $MTLS_ADDR"

passed=0
failed=0
run() {
  local name=$1 seconds=$2
  shift 2
  local command=("$@")
  [ "$(type -t "$1")" = function ] && command=(bash -c "$(declare -f "$1"); $*")
  if timeout "$seconds" "${command[@]}" >"$tmp/out" 2>&1; then
    passed=$((passed + 1)); echo "PASS $name"
  else
    failed=$((failed + 1)); echo "FAIL $name"; sed 's/^/    /' "$tmp/out" | tail -25
  fi
  for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null || { echo "a broker died:"; tail -20 "$tmp"/*.log; exit 1; }; done
}

# kcat ARGS...: produce 100 records and read them back through one listener.
kcat_round_trip() {
  local topic="sec-$RANDOM$RANDOM"
  seq 1 100 | kcat "$@" -P -t "$topic" || return 1
  [ "$(kcat "$@" -C -t "$topic" -o beginning -e -q | wc -l)" = 100 ] || { echo "did not read 100 records back"; return 1; }
}
export -f kcat_round_trip
scram() { kcat_round_trip -b "$SASL_PLAINTEXT_ADDR" -X security.protocol=sasl_plaintext -X sasl.mechanisms="$1" -X sasl.username=alice -X sasl.password=alice-secret; }
wrong_password() {
  ! kcat -b "$SASL_PLAINTEXT_ADDR" -L -m 5 -X security.protocol=sasl_plaintext -X sasl.mechanisms=SCRAM-SHA-512 \
    -X sasl.username=alice -X sasl.password=nope >"$CERTS/wrong.out" 2>&1 || return 1
  grep -qi "authentication failed" "$CERTS/wrong.out" || { cat "$CERTS/wrong.out"; return 1; }
}
user_created_while_running() {
  echo "bob-secret" | "$SPOOL" user create bob --data-dir "$DATA" --password-stdin >/dev/null || return 1
  kcat_round_trip -b "$SASL_SSL_ADDR" -X security.protocol=sasl_ssl -X ssl.ca.location="$CERTS/ca.pem" \
    -X sasl.mechanisms=PLAIN -X sasl.username=bob -X sasl.password=bob-secret || return 1
  "$SPOOL" user list --data-dir "$DATA" | grep -q "^bob	SCRAM-SHA-256(4096),SCRAM-SHA-512(4096)" || { "$SPOOL" user list --data-dir "$DATA"; return 1; }
}
export SPOOL=$spool DATA=$tmp/data

run "kcat over SSL" 60 kcat_round_trip -b "$SSL_ADDR" -X security.protocol=ssl -X ssl.ca.location="$certs/ca.pem"
run "kcat SASL_PLAINTEXT PLAIN" 60 scram PLAIN
run "kcat SASL_PLAINTEXT SCRAM-SHA-256" 60 scram SCRAM-SHA-256
run "kcat SASL_PLAINTEXT SCRAM-SHA-512" 60 scram SCRAM-SHA-512
run "kcat SASL_SSL SCRAM-SHA-512" 60 kcat_round_trip -b "$SASL_SSL_ADDR" -X security.protocol=sasl_ssl -X ssl.ca.location="$certs/ca.pem" \
  -X sasl.mechanisms=SCRAM-SHA-512 -X sasl.username=alice -X sasl.password=alice-secret
run "kcat wrong password refused (authentication failed)" 30 wrong_password
run "spool user create while the broker runs; PLAIN over SASL_SSL; spool user list" 60 user_created_while_running
run "kcat mTLS with a client certificate" 60 kcat_round_trip -b "$MTLS_ADDR" -X security.protocol=ssl -X ssl.ca.location="$certs/ca.pem" \
  -X ssl.certificate.location="$certs/client.pem" -X ssl.key.location="$certs/client.key"
run "python clients: confluent-kafka SASL_SSL SCRAM-SHA-512, kafka-python SASL_SSL SCRAM-SHA-256 and PLAIN, wrong password (58), request before auth (34), mTLS without a certificate refused, AlterUserScramCredentials" \
  240 "$py" tools/kafka-clients/security_check.py

# ACLs: a third broker with the authorizer on (User:admin a super user), SASL_PLAINTEXT,
# its admin HTTP port for /metrics. alice may use team.* topics (prefixed) and team-* groups
# but is DENYed READ on team.secret; bob has no ACL at all. ACLs are added with `spool acl
# add` logged in as admin over SASL.
for user in admin alice bob; do
  echo "$user-secret" | "$spool" user create "$user" --data-dir "$tmp/data-acl" --password-stdin >/dev/null || exit 1
done
"$spool" broker --data-dir "$tmp/data-acl" --listen 127.0.0.1:0 --http-listen 127.0.0.1:0 --default-partitions 1 \
  --kafka-listen SASL_PLAINTEXT://127.0.0.1:0 --authorizer --super-users 'User:admin;User:ops' >"$tmp/acl.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do grep -q "^spool broker .* listening on" "$tmp/acl.log" 2>/dev/null && break; sleep 0.1; done
grep -q "^spool broker .* listening on" "$tmp/acl.log" || { echo "the ACL broker did not start:"; cat "$tmp/acl.log"; exit 1; }
export ACL_ADDR="127.0.0.1:$(port_of acl SASL_PLAINTEXT)"
export ACL_HTTP=$(sed -n 's/.*admin http:\/\/\([^/]*\)\/.*/\1/p' "$tmp/acl.log" | head -1)
echo "ACL broker: SASL_PLAINTEXT $ACL_ADDR, admin HTTP $ACL_HTTP"
acl() { echo admin-secret | "$SPOOL" acl add --kafka "$ACL_ADDR" --sasl-user admin --password-stdin "$@" >/dev/null; }
export -f acl
acls() {
  acl --allow-principal User:alice --operation Read --operation Write --operation Create --operation Describe \
    --topic team. --resource-pattern-type prefixed || return 1
  acl --allow-principal User:alice --operation Read --group team- --resource-pattern-type prefixed || return 1
  acl --deny-principal User:alice --operation Read --topic team.secret || return 1
  echo admin-secret | "$SPOOL" acl list --kafka "$ACL_ADDR" --sasl-user admin --password-stdin | grep -q "DENY User:alice" || return 1
  # bob is not a super user: he may not add ACLs (CLUSTER_AUTHORIZATION_FAILED).
  ! echo bob-secret | "$SPOOL" acl add --kafka "$ACL_ADDR" --sasl-user bob --password-stdin --allow-principal User:bob \
    --operation All --topic '*' >"$CERTS/bob-acl.out" 2>&1 || return 1
  grep -q "refused" "$CERTS/bob-acl.out" || { cat "$CERTS/bob-acl.out"; return 1; }
}
kacl() {  # user args...: kcat as a user over SASL_PLAINTEXT SCRAM-SHA-512
  local user=$1
  shift
  kcat -b "$ACL_ADDR" -X security.protocol=sasl_plaintext -X sasl.mechanisms=SCRAM-SHA-512 -X sasl.username="$user" \
    -X sasl.password="$user-secret" "$@"
}
export -f kacl
kcat_acl_allowed() {
  local topic="team.kcat-$RANDOM$RANDOM"
  seq 1 50 | kacl alice -P -t "$topic" || return 1
  [ "$(kacl alice -C -t "$topic" -o beginning -e -q | wc -l)" = 50 ] || { echo "alice did not read 50 records back"; return 1; }
}
kcat_acl_denied_topic() {  # bob on team.*: TOPIC_AUTHORIZATION_FAILED
  seq 1 3 | kacl bob -P -t team.kcat-bob >"$CERTS/bob.out" 2>&1
  grep -qi "topic authorization failed" "$CERTS/bob.out" || { cat "$CERTS/bob.out"; return 1; }
}
kcat_acl_deny_over_allow() {  # admin writes team.secret; alice (prefixed ALLOW, literal DENY) may not read it
  seq 1 3 | kacl admin -P -t team.secret || return 1
  kacl alice -C -t team.secret -o beginning -e >"$CERTS/secret.out" 2>&1
  grep -qi "topic authorization failed" "$CERTS/secret.out" || { cat "$CERTS/secret.out"; return 1; }
}
kcat_acl_super_user() {  # admin needs no ACL; alice cannot see admin's topic in Metadata
  local topic="ops-$RANDOM$RANDOM"
  seq 1 20 | kacl admin -P -t "$topic" || return 1
  [ "$(kacl admin -C -t "$topic" -o beginning -e -q | wc -l)" = 20 ] || return 1
  kacl admin -L | grep -q "topic \"$topic\"" || return 1
  ! kacl alice -L | grep -q "topic \"$topic\"" || { echo "alice sees $topic in Metadata"; return 1; }
}
acl_metrics() {  # the denials and authentications above were counted
  local page
  page=$(curl -sf "http://$ACL_HTTP/metrics") || return 1
  echo "$page" | grep -E '^spool_authorization_denials_total\{' | grep 'operation="write"' | grep -E 'resource_type="topic".*\} [1-9]' \
    || { echo "$page" | grep spool_author; return 1; }
  echo "$page" | grep -E '^spool_authentications_total\{' | grep 'mechanism="SCRAM-SHA-512"' | grep -E 'result="success".*\} [1-9]' \
    || { echo "$page" | grep spool_authent; return 1; }
}
run "spool acl add/list as admin over SASL; bob refused" 60 acls
run "kcat ACL: alice produces/consumes a prefixed-allowed topic" 60 kcat_acl_allowed
run "kcat ACL: bob denied the topic (Topic authorization failed, 29)" 60 kcat_acl_denied_topic
run "kcat ACL: DENY over the prefixed ALLOW (team.secret)" 60 kcat_acl_deny_over_allow
run "kcat ACL: super user needs no ACL; Metadata hides his topic from alice" 60 kcat_acl_super_user
run "python clients ACLs: confluent-kafka and kafka-python allowed produce/consume, denied topic (29), group (30), CreateTopics (31), prefixed, DENY over ALLOW, super user" \
  240 "$py" tools/kafka-clients/acl_check.py
run "ACL metrics: spool_authorization_denials_total, spool_authentications_total" 30 acl_metrics

echo "security: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
