#!/usr/bin/env bash
# Make sure RabbitMQ answers on $RABBIT_HOST:$RABBIT_PORT, with the management API on
# :15672 (the suite's tests and `make up` create one vhost per jurisdiction through it).
# Starts a stopped local broker, installs Debian's rabbitmq-server where it can, and
# otherwise says exactly what to do. Never prints a stack trace.
set -u
HOST="${RABBIT_HOST:-127.0.0.1}"
PORT="${RABBIT_PORT:-5672}"
MGMT_PORT="${RABBIT_MGMT_PORT:-15672}"

say() { printf '%s\n' "$*"; }
port_open() { timeout 3 bash -c "exec 3<>/dev/tcp/$1/$2" 2>/dev/null; }
wait_port() {
  local host=$1 port=$2 secs=$3
  for _ in $(seq 1 "$secs"); do port_open "$host" "$port" && return 0; sleep 1; done
  return 1
}
is_local() { [[ "$HOST" == "127.0.0.1" || "$HOST" == "localhost" || "$HOST" == "::1" ]]; }

how_to_get_it() {
  say ""
  say "RabbitMQ 未就绪 / RabbitMQ is not reachable at $HOST:$PORT."
  say "安装与启动 / To get it:"
  say "  Debian/Ubuntu:  sudo apt-get install -y rabbitmq-server && sudo rabbitmq-server -detached"
  say "                  sudo rabbitmq-plugins enable rabbitmq_management"
  say "  macOS:          brew install rabbitmq && brew services start rabbitmq"
  say "  elsewhere:      https://www.rabbitmq.com/docs/download (3.8+ for quorum queues)"
  say "或指向已有的代理 / or point the suite at an existing broker:"
  say "  RABBIT_HOST=host RABBIT_PORT=5672 RABBIT_USER=.. RABBIT_PASSWORD=.. make up"
}

if ! port_open "$HOST" "$PORT"; then
  if is_local; then
    if ! command -v rabbitmq-server >/dev/null 2>&1; then
      if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
        say "RabbitMQ 未安装，正在从系统软件源安装 / RabbitMQ is not installed; installing Debian's rabbitmq-server ..."
        (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq rabbitmq-server) >/tmp/rabbitmq-install.log 2>&1 \
          || { say "安装失败 / install failed (see /tmp/rabbitmq-install.log)"; how_to_get_it; exit 1; }
      else
        how_to_get_it; exit 1
      fi
    fi
    say "RabbitMQ 未运行，正在启动 / RabbitMQ is not running; starting it ..."
    if [[ $(id -u) -eq 0 ]]; then
      rabbitmq-server -detached >/dev/null 2>&1 || true
    else
      sudo -n rabbitmq-server -detached >/dev/null 2>&1 || rabbitmq-server -detached >/dev/null 2>&1 || true
    fi
    if ! wait_port "$HOST" "$PORT" 90; then
      say "RabbitMQ 启动超时 / RabbitMQ did not come up within 90 s."
      how_to_get_it; exit 1
    fi
  else
    how_to_get_it; exit 1
  fi
fi

if ! port_open "$HOST" "$MGMT_PORT"; then
  if is_local && command -v rabbitmq-plugins >/dev/null 2>&1; then
    say "启用管理插件 / enabling the RabbitMQ management plugin ..."
    if [[ $(id -u) -eq 0 ]]; then rabbitmq-plugins enable rabbitmq_management >/dev/null 2>&1 || true
    else sudo -n rabbitmq-plugins enable rabbitmq_management >/dev/null 2>&1 || rabbitmq-plugins enable rabbitmq_management >/dev/null 2>&1 || true; fi
    wait_port "$HOST" "$MGMT_PORT" 60 || true
  fi
  if ! port_open "$HOST" "$MGMT_PORT"; then
    say "RabbitMQ 管理接口不可用 / the management API is not reachable on $HOST:$MGMT_PORT."
    say "  启用 / enable it with: rabbitmq-plugins enable rabbitmq_management"
    exit 1
  fi
fi
# the management API may answer the port before it serves requests
for _ in $(seq 1 30); do
  if curl -fsS -u "${RABBIT_USER:-guest}:${RABBIT_PASSWORD:-guest}" "http://$HOST:$MGMT_PORT/api/overview" >/dev/null 2>&1; then
    say "RabbitMQ 就绪 / RabbitMQ ready at $HOST:$PORT (management :$MGMT_PORT)"
    exit 0
  fi
  sleep 1
done
say "RabbitMQ 管理接口未响应 / the management API on :$MGMT_PORT did not answer (check RABBIT_USER/RABBIT_PASSWORD)."
exit 1
