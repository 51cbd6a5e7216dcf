#!/bin/sh
# Installs the unpacked Tablao bundle for this user (default ~/.local) or system-wide (--prefix /usr/local, as
# root): the programs under PREFIX/lib/tablao, `tablao` on PATH in PREFIX/bin, the app's and the tray's menu entries
# and the icon. `install.sh --uninstall [--prefix P]` removes them again, after stopping this user's tray agent
# running from there and removing its login entry if it starts that installation; user data
# (~/.local/share/tablao) stays.
set -eu
here="$(cd "$(dirname "$0")" && pwd)"
prefix="${HOME}/.local"
action=install
while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) prefix="$2"; shift 2 ;;
    --prefix=*) prefix="${1#--prefix=}"; shift ;;
    --uninstall) action=uninstall; shift ;;
    -h|--help) sed -n '2,6p' "$0"; exit 0 ;;
    *) echo "install.sh: unknown option $1 (try --help)" >&2; exit 2 ;;
  esac
done
lib="$prefix/lib/tablao"
apps="$prefix/share/applications"
icons="$prefix/share/icons/hicolor"

# The running program of process $1 if it lies inside $lib (a copy replaced since still counts), else nothing.
program_inside() {
  exe="$(readlink "/proc/$1/exe" 2>/dev/null)" || return 1
  exe="${exe% (deleted)}"
  case "$exe" in "$lib"/*) echo "$exe" ;; *) return 1 ;; esac
}

# This user's tray agent from this installation (`tablao-tray`, or `tablao tray`) and its worker child: SIGTERM
# (the worker gives its task back to the Manager and signs off), up to 60 s to leave, then SIGKILL.
stop_tray() {
  trays=""
  me="$(id -u)"
  for dir in /proc/[0-9]*; do
    pid="${dir#/proc/}"
    [ "$(stat -c %u "$dir" 2>/dev/null)" = "$me" ] || continue
    exe="$(program_inside "$pid")" || continue
    if [ "${exe##*/}" = tablao-tray ] || [ "$(tr '\0' '\n' 2>/dev/null < "$dir/cmdline" | sed -n 2p)" = tray ]; then
      trays="$trays $pid"
    fi
  done
  [ -n "$trays" ] || return 0
  pids="$trays"
  for dir in /proc/[0-9]*; do
    pid="${dir#/proc/}"
    parent="$(sed -n 's/^PPid:[[:space:]]*//p' "$dir/status" 2>/dev/null)" || continue
    case " $trays " in *" $parent "*) program_inside "$pid" >/dev/null && pids="$pids $pid" ;; esac
  done
  echo "Stopping the Tablao tray agent (process$pids); its worker gives its task back"
  # shellcheck disable=SC2086 # one word per process id
  kill -TERM $pids 2>/dev/null || true
  waited=0
  while [ "$waited" -lt 60 ]; do
    left=""
    for pid in $pids; do program_inside "$pid" >/dev/null && left="$left $pid"; done
    [ -n "$left" ] || return 0
    sleep 1
    waited=$((waited + 1))
  done
  echo "install.sh: still running after 60 s, stopped with SIGKILL:$left" >&2
  # shellcheck disable=SC2086
  kill -KILL $left 2>/dev/null || true
}

if [ "$action" = uninstall ]; then
  stop_tray
  # the tray's "Start at login" entry (app/tray/autostart.py), if it starts the installation removed here
  autostart="${XDG_CONFIG_HOME:-$HOME/.config}/autostart/org.tablao.Tray.desktop"
  if [ -f "$autostart" ] && sed -n 's/^Exec=//p' "$autostart" | grep -qF "$lib/"; then
    rm -f "$autostart"
  fi
  rm -rf "$lib"
  rm -f "$prefix/bin/tablao" "$apps/org.tablao.Tablao.desktop" "$apps/org.tablao.Tray.desktop"
  for png in "$icons"/*/apps/org.tablao.Tablao.png; do rm -f "$png"; done
  rm -f "$icons/scalable/apps/org.tablao.Tablao.svg"
  if command -v update-desktop-database >/dev/null && [ -d "$apps" ]; then
    update-desktop-database -q "$apps" 2>/dev/null || true  # no tablao:// handler left in the cache
  fi
  echo "Tablao removed from $prefix (your data in ~/.local/share/tablao is kept)"
  exit 0
fi

mkdir -p "$prefix/lib" "$prefix/bin" "$apps"
rm -rf "$lib.new"
cp -a "$here/tablao" "$lib.new"
rm -rf "$lib"
mv "$lib.new" "$lib"
ln -sf "$lib/tablao" "$prefix/bin/tablao"
for entry in org.tablao.Tablao org.tablao.Tray; do
  sed "s|@BIN@|$lib|g" "$here/share/applications/$entry.desktop" > "$apps/$entry.desktop"
done
for dir in "$here"/share/icons/hicolor/*/apps; do
  size="$(basename "$(dirname "$dir")")"
  mkdir -p "$icons/$size/apps"
  cp "$dir"/* "$icons/$size/apps/"
done
if command -v update-desktop-database >/dev/null; then
  update-desktop-database -q "$apps" 2>/dev/null || true  # only a cache of MIME types: not worth failing for
fi
# tablao://job/ID links (the Blender add-on shows them) open the app on that job; a system-wide install leaves the
# choice of handler to each user's desktop
if [ "$prefix" = "${HOME}/.local" ] && command -v xdg-mime >/dev/null; then
  xdg-mime default org.tablao.Tablao.desktop x-scheme-handler/tablao 2>/dev/null || true
fi
echo "Tablao installed in $lib; \`tablao\` is in $prefix/bin"
