# Shared by scripts/: what the end-to-end tests of the rider pages need, installed once:
# Debian's chromium (driven by Playwright's Python package, which is a dev dependency) and
# fonts-noto-cjk so that Chinese renders in screenshots. Needs root (CI runs as root) or sudo.
ensure_browser() {
  if [ -x /usr/bin/chromium ] && fc-list 2>/dev/null | grep -qi "noto.*cjk"; then
    return 0
  fi
  local sudo=""
  if [ "$(id -u)" != "0" ]; then
    sudo="sudo"
  fi
  echo "== installing chromium and fonts-noto-cjk for the end-to-end tests =="
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium fonts-noto-cjk >/dev/null
}
