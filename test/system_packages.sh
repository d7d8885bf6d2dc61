#!/usr/bin/env bash
# What a make target needs from the system, beyond the Rust toolchain and
# python3, installed when missing: the Makefile calls this before `demo`,
# `test`, `report` and `stream-demo`, so that a fresh Debian machine runs them
# with no other step (CI runs `make test` and nothing else, so it fails exactly
# when a newcomer's machine would).
#
#   bash test/system_packages.sh GROUP...
#
# Groups: build (strip, python3 -m venv), browser (headless Chromium for the
# report's screenshot test), spark (a Java 17 runtime for PySpark), influx
# (influxd, started by the tests themselves on 127.0.0.1, never as a system
# service), valgrind (the memory-error run of the aggregate forms).
#
# As root with apt-get, the missing Debian packages are installed with one
# `apt-get update`; otherwise the script prints the one command to run and
# fails, naming what is missing.
set -euo pipefail

need=()
for group in "$@"; do
  case "$group" in
    build)
      command -v strip >/dev/null || need+=(binutils)
      python3 -m venv --help >/dev/null 2>&1 || need+=(python3-venv)
      ;;
    browser)
      [ -x /usr/bin/chromium ] || need+=(chromium)
      ;;
    spark)
      command -v java >/dev/null || need+=(openjdk-17-jre-headless)
      ;;
    influx)
      command -v influxd >/dev/null || need+=(influxdb)
      ;;
    valgrind)
      command -v valgrind >/dev/null || need+=(valgrind)
      ;;
    *)
      echo "system_packages.sh: unknown group '$group' (build, browser, spark, influx, valgrind)" >&2
      exit 2
      ;;
  esac
done

[ ${#need[@]} -eq 0 ] && exit 0

if [ "${EUID}" -ne 0 ] || ! command -v apt-get >/dev/null; then
  echo "missing system packages: ${need[*]}; install them (Debian: sudo apt-get install -y ${need[*]}) and run make again" >&2
  exit 1
fi

echo "installing Debian packages: ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq "${need[@]}" >/dev/null \
  || { echo "apt-get could not install ${need[*]}" >&2; exit 1; }
