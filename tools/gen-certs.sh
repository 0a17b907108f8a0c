#!/usr/bin/env bash
# Makes test/trial certificates (EC P-256) in DIR: a CA (ca.pem, ca.key), a broker
# certificate for 127.0.0.1 and localhost (broker.pem, broker.key) and a client
# certificate for mutual TLS (client.pem, client.key, CN=client; its principal is
# User:CN=client). Valid 825 days. Not for production: the CA key sits beside them.
#   tools/gen-certs.sh certs && spool broker --kafka-listen SSL://127.0.0.1:9093 \
#     --kafka-ssl-certificate certs/broker.pem --kafka-ssl-key certs/broker.key
set -euo pipefail
dir=${1:?usage: tools/gen-certs.sh DIR}
client_cn=${CLIENT_CN:-client}
mkdir -p "$dir"
cd "$dir"
days=825
ec=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes)

openssl req -x509 "${ec[@]}" -keyout ca.key -out ca.pem -days "$days" -subj "/CN=Spool test CA" \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null

sign() {  # name subject extensions
  openssl req "${ec[@]}" -keyout "$1.key" -out "$1.csr" -subj "$2" 2>/dev/null
  printf '%s\n' "$3" > "$1.ext"
  openssl x509 -req -in "$1.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -out "$1.pem" -days "$days" \
    -extfile "$1.ext" 2>/dev/null
  rm -f "$1.csr" "$1.ext"
}
# serverAuth and clientAuth: a broker is also a client of the others (a follower presents its
# own certificate to a leader that requires client certificates, as Kafka's brokers do).
sign broker "/CN=localhost" "subjectAltName=DNS:localhost,IP:127.0.0.1
extendedKeyUsage=serverAuth,clientAuth
basicConstraints=CA:FALSE"
sign client "/CN=$client_cn" "extendedKeyUsage=clientAuth
basicConstraints=CA:FALSE"
chmod 600 ./*.key
rm -f ca.srl
echo "certificates in $(pwd): ca.pem broker.pem broker.key client.pem client.key"
