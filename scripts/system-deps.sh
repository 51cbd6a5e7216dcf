#!/usr/bin/env bash
# Installs what Tablao's tests and desktop app need from the operating system, where it is missing:
# Blender and ffmpeg (the end-to-end tests run them for real), the X11 libraries Qt's xcb plugin loads, and the
# packaging tools (binutils, NSIS, Wine).
# On Debian/Ubuntu it uses apt-get; elsewhere it says what to install.
set -euo pipefail

gui_only=0
[ "${1:-}" = "--gui-only" ] && gui_only=1

qt_libs="libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1 libxcb-image0 libxcb-render-util0 libxcb-shape0
libxcb-xinerama0 libxcb-randr0 libxkbcommon-x11-0 libegl1 libgl1 libfontconfig1 libdbus-1-3 libxss1"

missing=()
if [ "$gui_only" = 0 ]; then
  command -v blender >/dev/null || missing+=(blender)
  { command -v ffmpeg && command -v ffprobe; } >/dev/null || missing+=(ffmpeg)
  if [ "$(uname)" = Linux ]; then
    # the tray's end-to-end test (X11 only; skipped elsewhere): a real X server, a window manager and a tray
    # host, and simulated input
    command -v Xvfb >/dev/null || missing+=(xvfb)
    command -v openbox >/dev/null || missing+=(openbox)
    command -v trayer >/dev/null || missing+=(trayer)
    command -v xdotool >/dev/null || missing+=(xdotool)
    # a real Secret Service for the keyring tests (the bundle's own AES for it): gnome-keyring in a private D-Bus
    # session
    command -v dbus-run-session >/dev/null || missing+=(dbus-daemon)
    command -v gnome-keyring-daemon >/dev/null || missing+=(gnome-keyring)
  fi
  # packaging tests: strip/readelf for the bundle, makensis for the Windows installer and 64-bit Wine to run it
  # silently (the installer is 64-bit, so no i386 multiarch is needed; ~25 s to install without recommends)
  if [ "$(uname)" = Linux ]; then
    command -v readelf >/dev/null || missing+=(binutils)
    # the bundle's numpy uses the reference BLAS and LAPACK (64-bit integers) instead of OpenBLAS
    if command -v dpkg-query >/dev/null; then
      for lib in libblas64-3 liblapack64-dev; do
        dpkg-query -W -f='${Status}' "$lib" 2>/dev/null | grep -q "install ok installed" || missing+=("$lib")
      done
    fi
    command -v makensis >/dev/null || missing+=(nsis)
    command -v desktop-file-validate >/dev/null || missing+=(desktop-file-utils)
    command -v shellcheck >/dev/null || missing+=(shellcheck)  # actionlint checks the workflows' scripts with it
    if [ "$(uname -m)" = x86_64 ] && command -v dpkg-query >/dev/null; then
      command -v wineserver >/dev/null || missing+=(wine wine64)
    fi
  fi
fi
if command -v dpkg-query >/dev/null; then
  for lib in $qt_libs; do
    dpkg-query -W -f='${Status}' "$lib" 2>/dev/null | grep -q "install ok installed" || missing+=("$lib")
  done
fi
[ ${#missing[@]} -eq 0 ] && exit 0

if command -v apt-get >/dev/null; then
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  echo "Installing from the distribution: ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
elif [ "$(uname)" = Darwin ] && command -v brew >/dev/null; then
  # Homebrew's Blender cask puts a `blender` command on PATH beside Blender.app
  echo "Installing with Homebrew: ${missing[*]}"
  for item in "${missing[@]}"; do
    case "$item" in
      blender) brew install --cask blender ;;
      *) brew install "$item" ;;
    esac
  done
elif [ "$(uname)" = Darwin ]; then
  echo "Missing: ${missing[*]}. On macOS: install Homebrew (https://brew.sh) and run this again, or install" >&2
  echo "Blender (blender.org) and ffmpeg yourself and put 'blender' and 'ffmpeg' on PATH." >&2
  [ "$gui_only" = 1 ] || exit 1
else
  echo "Missing: ${missing[*]}. Install Blender and ffmpeg with your package manager and put them on PATH." >&2
  exit 1
fi
