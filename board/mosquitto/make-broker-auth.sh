#!/usr/bin/env bash
# Writes the broker side of a fleet's MQTT access control for mosquitto 2.x: one user per gateway
# and per client application, random passwords, and an ACL that lets each one publish only what its
# role publishes (mosquitto.conf beside this script shows where the files go):
#   gateway <id>  reads the whole fleet root (requests, invalidations, watermarks, status, configs);
#                 writes its own status and watermark, the fleet's invalidation topic, and replies
#                 under the reply prefix (default "replies")
#   client <name> writes the fleet and per-gateway request topics; reads replies/<name>/#
#   operator      reads and writes the whole fleet root (signed configs, operator invalidations)
# Nobody else connects (the conf sets allow_anonymous false). Gateways answer a client on the reply
# topic the client names; the broker only lets that be under the reply prefix, and the agent itself
# refuses reply topics under the fleet root.
#
# Usage: make-broker-auth.sh --fleet NAME [--root TOPIC] --gateways ID[,ID...] [--clients NAME[,...]]
#                            [--reply-prefix replies] --out DIR
# Writes DIR/acl, DIR/passwd (mosquitto_passwd hashes) and DIR/secrets/<user>.password (0600; give
# a gateway its file with `outpost run --mqtt-user <id> --mqtt-password-file <file>`). Run again
# with the same --out to add users: existing passwords are kept.
set -euo pipefail

fleet="" root="" gateways="" clients="" out="" reply_prefix=replies
while [ $# -gt 0 ]; do
    case "$1" in
        --fleet) fleet=$2; shift 2 ;;
        --root) root=$2; shift 2 ;;
        --gateways) gateways=$2; shift 2 ;;
        --clients) clients=$2; shift 2 ;;
        --reply-prefix) reply_prefix=$2; shift 2 ;;
        --out) out=$2; shift 2 ;;
        -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
        *) echo "make-broker-auth: unknown argument $1" >&2; exit 2 ;;
    esac
done
[ -n "$fleet" ] && [ -n "$gateways" ] && [ -n "$out" ] || { echo "make-broker-auth: --fleet, --gateways and --out are required" >&2; exit 2; }
root=${root:-outpost/$fleet}
command -v mosquitto_passwd >/dev/null || { echo "make-broker-auth: mosquitto_passwd not found (apt-get install mosquitto)" >&2; exit 1; }

# Names become topic levels and ACL tokens: the same rule as the agent's gateway ids.
valid() { [[ "$1" =~ ^[A-Za-z0-9._-]{1,128}$ ]]; }
for name in "$fleet" ${gateways//,/ } ${clients//,/ } "$reply_prefix"; do
    valid "$name" || { echo "make-broker-auth: '$name' must be 1-128 of A-Z a-z 0-9 . _ -" >&2; exit 2; }
done
for name in ${gateways//,/ } ${clients//,/ }; do
    [ "$name" != operator ] || { echo "make-broker-auth: 'operator' is reserved" >&2; exit 2; }
done

umask 077
mkdir -p "$out/secrets"
touch "$out/passwd"
password_for() {  # user: the password file, made once
    local f="$out/secrets/$1.password"
    if [ ! -s "$f" ]; then
        head -c 24 /dev/urandom | base64 | tr -d '/+=\n' > "$f"
        mosquitto_passwd -b "$out/passwd" "$1" "$(cat "$f")"
    fi
}

{
    echo "# Written by board/mosquitto/make-broker-auth.sh for fleet '$fleet' (root $root)."
    echo
    echo "user operator"
    echo "topic readwrite $root/#"
    for id in ${gateways//,/ }; do
        echo
        echo "user $id"
        echo "topic read $root/#"
        echo "topic write $root/gw/$id/status"
        echo "topic write $root/cache/watermark/$id"
        echo "topic write $root/cache/invalidate"
        echo "topic write $reply_prefix/#"
    done
    for name in ${clients//,/ }; do
        echo
        echo "user $name"
        echo "topic write $root/req"
        echo "topic write $root/gw/+/req"
        echo "topic read $reply_prefix/$name/#"
    done
} > "$out/acl.tmp"
mv "$out/acl.tmp" "$out/acl"

password_for operator
for name in ${gateways//,/ } ${clients//,/ }; do password_for "$name"; done
echo "$out/acl"
echo "$out/passwd"
