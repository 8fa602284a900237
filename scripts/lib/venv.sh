# Shared by scripts/: create .venv and install the project with the given extras, once per
# change of pyproject.toml (a stamp file remembers what was installed).
ensure_venv() {
  local extras="${1:-}"
  local python="${PYTHON:-python3}"
  if [ ! -x .venv/bin/python ]; then
    "$python" -m venv .venv
  fi
  local stamp=".venv/.installed-${extras:-base}"
  if [ -z "$extras" ]; then  # the base install is part of every install with extras
    local s
    for s in .venv/.installed-*; do
      if [ -f "$s" ] && [ "$s" -nt pyproject.toml ]; then stamp="$s"; fi
    done
  fi
  if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    .venv/bin/python -m pip install --quiet --upgrade pip
    .venv/bin/python -m pip install --quiet -e ".${extras:+[$extras]}"
    touch "$stamp"
  fi
  compile_translations
}

# The rider pages' message catalogues (app/translations/*/LC_MESSAGES/messages.po) compiled
# to the .mo files flask-babel reads; generated, so not in git. Cheap: done every time.
compile_translations() {
  .venv/bin/pybabel compile --statistics -d app/translations >/dev/null
}
