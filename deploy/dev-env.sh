#!/usr/bin/env bash
# Prints the settings of compose's `dev` profile: fresh random secrets for this machine and the
# wiring to the development stand-ins (issuer, receiver). Development only: never use this file
# for a county's data.
#
#   deploy/dev-env.sh > deploy/.env
#   docker compose -f deploy/docker-compose.yml --profile dev up --build
#
# Needs only bash, head, base64 and tr (no Python on the host).
set -euo pipefail

# A key-ring entry as shared/crypto.py's KeyRing.generate_spec writes it: id:<32 random bytes, base64>.
key() { printf '%s:%s' "$1" "$(head -c 32 /dev/urandom | base64 | tr -d '\n')"; }
# A URL-safe secret of 32 random bytes (as Python's secrets.token_urlsafe(32)).
secret() { head -c 32 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n'; }

cat <<ENV
# compose dev profile, written by deploy/dev-env.sh on $(date -u +%Y-%m-%dT%H:%M:%SZ)
INTAKE_PII_KEYS=$(key k1)
INTAKE_LOOKUP_KEY=$(secret)
INTAKE_HOTLINE_CLIENTS=hotline12345:$(secret)
CONTACT_KEYS=$(key c1)
NOTIFY_PII_KEYS=$(key k1)
NOTIFY_GATEWAY_CLIENTS=sms-gateway:$(secret),wechat-backend:$(secret)
NOTIFY_HOTLINE_WEBHOOK_SECRET=$(secret)
CONSOLE_SESSION_SECRET=$(secret)
# Sign-in: the console asks the development issuer; the services trust the X-Actor-* headers
# the console forwards (the closed-trial mode: their ports are on 127.0.0.1 only).
AUTH_MODE=headers
AUTH_ALLOW_HEADERS_REMOTE=true
CONSOLE_ISSUER_URL=http://issuer:8007
# notify delivers to the development receiver (GET http://127.0.0.1:8090/messages).
NOTIFY_SMS_URL=http://receiver:8090/sms
NOTIFY_WECHAT_URL=http://receiver:8090/wechat
NOTIFY_HOTLINE_WEBHOOK_URL=http://receiver:8090/hotline
ENV
