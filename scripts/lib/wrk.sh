# Shared by scripts/: Debian's wrk, the HTTP load generator scripts/bench/bench_load.py drives
# (written in C, so it takes little of the cores the server needs; scripted in Lua), installed
# once. Needs root (CI runs as root) or sudo.
#   . scripts/lib/wrk.sh && ensure_wrk
ensure_wrk() {
  if [ -x /usr/bin/wrk ]; then
    return 0
  fi
  local sudo=""
  if [ "$(id -u)" != "0" ]; then
    sudo="sudo"
  fi
  echo "== installing wrk (the load generator of scripts/bench/bench_load.py) =="
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq wrk >/dev/null
}
