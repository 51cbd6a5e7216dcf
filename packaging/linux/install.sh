#!/bin/sh
# Installs the unpacked Tablao bundle for this user (default ~/.local) or system-wide (--prefix /usr/local, as
# root): the programs under PREFIX/lib/tablao, `tablao` on PATH in PREFIX/bin, the app's and the tray's menu entries
# and the icon. `install.sh --uninstall [--prefix P]` removes them again; user data (~/.local/share/tablao) stays.
set -eu
here="$(cd "$(dirname "$0")" && pwd)"
prefix="${HOME}/.local"
action=install
while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) prefix="$2"; shift 2 ;;
    --prefix=*) prefix="${1#--prefix=}"; shift ;;
    --uninstall) action=uninstall; shift ;;
    -h|--help) sed -n '2,4p' "$0"; exit 0 ;;
    *) echo "install.sh: unknown option $1 (try --help)" >&2; exit 2 ;;
  esac
done
lib="$prefix/lib/tablao"
apps="$prefix/share/applications"
icons="$prefix/share/icons/hicolor"

if [ "$action" = uninstall ]; then
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
