#!/bin/sh
# Start RabbitMQ with the MASH's hardened configuration: render the ports into the config,
# enable the plugins, and run in the foreground. Works in the official rabbitmq image and in
# docker/rabbitmq's Debian one (both run as the rabbitmq user, HOME /var/lib/rabbitmq).
set -eu
: "${MASH_AMQPS_PORT:=5671}" "${MASH_MANAGEMENT_PORT:=15672}" "${MASH_BROKER_ADMIN:=mash-admin}"
for file in definitions.json tls/ca.pem tls/server.pem tls/server.key; do
    if [ ! -r "/etc/rabbitmq/mash/$file" ]; then
        echo "error: /etc/rabbitmq/mash/$file is missing or unreadable: has the set-up run?" >&2
        exit 1
    fi
done
conf_dir=/var/lib/rabbitmq/mash-conf
mkdir -p "$conf_dir"
sed -e "s/@AMQPS_PORT@/$MASH_AMQPS_PORT/" \
    -e "s/@MANAGEMENT_PORT@/$MASH_MANAGEMENT_PORT/" \
    -e "s/@ADMIN_USER@/$MASH_BROKER_ADMIN/" \
    /etc/mash-rabbitmq/rabbitmq.conf.template > "$conf_dir/rabbitmq.conf"
echo '[rabbitmq_management,rabbitmq_auth_mechanism_ssl].' > "$conf_dir/enabled_plugins"
export RABBITMQ_CONFIG_FILE="$conf_dir/rabbitmq.conf"
export RABBITMQ_ENABLED_PLUGINS_FILE="$conf_dir/enabled_plugins"
# Host networking: a node name, distribution port and epmd of its own, never the host's.
: "${RABBITMQ_NODENAME:=mash@localhost}"
export RABBITMQ_NODENAME
exec rabbitmq-server
