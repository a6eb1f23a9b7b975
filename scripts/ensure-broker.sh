#!/usr/bin/env bash
# Make sure a RabbitMQ broker answers at MASH_AMQP_URL (default 127.0.0.1:5672): start the
# local rabbitmq-server when it is installed, otherwise say in one line how to get one.
# With --tests: a broker named by MASH_TEST_AMQP_URL is the tests' own business, and where
# no broker can be had but Docker runs, the tests start a RabbitMQ container (tests/broker.py).
set -u
for_tests=0; [ "${1:-}" = "--tests" ] && for_tests=1
if [ "$for_tests" = 1 ] && [ -n "${MASH_TEST_AMQP_URL:-}" ]; then exit 0; fi
url="${MASH_AMQP_URL:-amqp://guest:guest@127.0.0.1:5672/}"
hostport="${url#*://}"; hostport="${hostport#*@}"; hostport="${hostport%%/*}"
host="${hostport%%:*}"; port="${hostport##*:}"
[ "$port" = "$hostport" ] && port=5672

reachable() { (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null; }

reachable && exit 0
if command -v rabbitmq-server >/dev/null 2>&1 && { [ "$host" = 127.0.0.1 ] || [ "$host" = localhost ]; }; then
  echo "starting the local RabbitMQ broker (rabbitmq-server -detached)"
  rabbitmq-server -detached >/dev/null 2>&1 || true
  for _ in $(seq 1 60); do reachable && exit 0; sleep 1; done
  echo "error: rabbitmq-server was started but $host:$port did not answer within 60s" >&2
  exit 1
fi
if [ "$for_tests" = 1 ] && command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then
  echo "no RabbitMQ broker at $host:$port; the tests will start one in a container (testcontainers)"
  exit 0
fi
echo "error: no RabbitMQ broker at $host:$port; install one ('apt-get install rabbitmq-server') or set MASH_AMQP_URL" >&2
exit 1
