#!/usr/bin/env bash
# Autobahn|Testsuite (RFC 6455 conformance) against compliance/echo_server.py.
#
# Usage: compliance/run.sh [options]
#   -c, --cases LIST     case patterns to run, comma separated (default: *)
#   -x, --exclude LIST   case patterns to leave out (repeatable)
#       --fast           same as -x '9.*,12.*,13.*' (slow limits, permessage-deflate)
#   -p, --port PORT      port of the echo server on 127.0.0.1 (default: 9001)
#   -t, --timeout SECS   kill wstest after this long (default: 3600)
#       --install-only   only build (or check) the suite's virtualenv
#   -h, --help
# Environment:
#   PYTHON             Python 3 that can import syncaerys (default: python3)
#   AUTOBAHN_DIR       work folder (default: .autobahn in the project); holds
#                      venv/, and out/ with spec.json, logs and reports/
#   AUTOBAHN_VENV      the suite's Python 2.7 virtualenv (default: $AUTOBAHN_DIR/venv),
#                      built on first use and reused while `wstest -a` works
#   AUTOBAHN_PYTHON2   Python 2.7 to build it with (default: pyenv's 2.7.*, python2.7)
# The last line printed is
#   autobahn: N ok, N non-strict, N informational, N unimplemented, N failed
# Exit status: 0 nothing failed, 1 failures, 2 no report, 3 setup error.
set -u -o pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="${PYTHON:-python3}"
WORK="${AUTOBAHN_DIR:-$ROOT/.autobahn}"
VENV="${AUTOBAHN_VENV:-$WORK/venv}"
OUT="$WORK/out"
CASES="*"
EXCLUDE=""
PORT=9001
TIMEOUT=3600
INSTALL_ONLY=0

die() { echo "run.sh: $*" >&2; echo "autobahn: error: $*"; exit 3; }
log() { echo "run.sh: $*" >&2; }

while [ $# -gt 0 ]; do
  case "$1" in
    -c|--cases) CASES="$2"; shift 2 ;;
    -x|--exclude) EXCLUDE="${EXCLUDE:+$EXCLUDE,}$2"; shift 2 ;;
    --fast) EXCLUDE="${EXCLUDE:+$EXCLUDE,}9.*,12.*,13.*"; shift ;;
    -p|--port) PORT="$2"; shift 2 ;;
    -t|--timeout) TIMEOUT="$2"; shift 2 ;;
    --install-only) INSTALL_ONLY=1; shift ;;
    -h|--help) sed -n '2,/^set -u/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument $1 (see --help)" ;;
  esac
done
[[ "$PORT" =~ ^[0-9]+$ ]] || die "bad port $PORT"
command -v "$PYTHON" >/dev/null || die "$PYTHON not found (set PYTHON)"

# ------------------------------------------------------------ the suite's virtualenv
suite_ok() { "$VENV/bin/wstest" -a 2>/dev/null | grep -q AutobahnTestSuite; }

build_venv() {
  local py2="" c tmp
  for c in ${AUTOBAHN_PYTHON2:-} "$HOME"/.pyenv/versions/2.7*/bin/python2.7 python2.7 python2; do
    if command -v "$c" >/dev/null && "$c" -c 'import sys; sys.exit(sys.version_info[:2] != (2, 7))' 2>/dev/null; then
      py2="$(command -v "$c")"; break
    fi
  done
  [ -n "$py2" ] || die "no Python 2.7 found (set AUTOBAHN_PYTHON2; pyenv install 2.7.18 works)"
  log "building $VENV with $py2"
  mkdir -p "$WORK" || die "cannot create $WORK"
  tmp="$(mktemp -d)"
  # Python 2.7 has no venv module; virtualenv < 20.22 is the last that creates
  # 2.7 environments, so it runs from a throwaway Python 3 venv.
  if ! { "$PYTHON" -m venv "$tmp/boot" && "$tmp/boot/bin/pip" install 'virtualenv<20.22' \
         && rm -rf "$VENV" && "$tmp/boot/bin/virtualenv" -p "$py2" "$VENV" \
         && "$VENV/bin/pip" install --disable-pip-version-check -r "$ROOT/compliance/requirements-py27.txt"
       } >"$tmp/install.log" 2>&1; then
    tail -20 "$tmp/install.log" >&2
    rm -rf "$tmp"; die "building the suite's virtualenv failed"
  fi
  rm -rf "$tmp"
  suite_ok || die "wstest does not run in $VENV"
}

suite_ok || build_venv
if [ "$INSTALL_ONLY" = 1 ]; then "$VENV/bin/wstest" -a; exit 0; fi

# ------------------------------------------------------------ the echo server
# The checked-out syncaerys comes first on the path, so that it is what is tested.
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
"$PYTHON" -c 'import syncaerys' 2>/dev/null \
  || die "$PYTHON cannot import syncaerys and its dependencies (set PYTHON to your venv's python)"
port_open() { "$PYTHON" -c 'import socket, sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=1).close()' "$PORT" 2>/dev/null; }
port_open && die "something already listens on 127.0.0.1:$PORT (use --port)"

mkdir -p "$OUT" || die "cannot create $OUT"
rm -rf "$OUT/reports" "$OUT/spec.json" "$OUT/wstest.log" "$OUT/server.log"
SERVER_PID=""
WSTEST_PID=""
cleanup() {
  [ -n "$WSTEST_PID" ] && kill "$WSTEST_PID" 2>/dev/null
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -TERM "$SERVER_PID" 2>/dev/null
    for _ in $(seq 50); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$SERVER_PID" 2>/dev/null
  fi
  return 0
}
trap cleanup EXIT
trap 'exit 130' INT TERM

"$PYTHON" "$ROOT/compliance/echo_server.py" --port "$PORT" >"$OUT/server.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 100); do
  port_open && break
  kill -0 "$SERVER_PID" 2>/dev/null || { tail -5 "$OUT/server.log" >&2; die "the echo server exited"; }
  sleep 0.1
done
port_open || die "the echo server does not accept connections on 127.0.0.1:$PORT"

# ------------------------------------------------------------ the fuzzingclient
"$PYTHON" - "$PORT" "$CASES" "$EXCLUDE" "$OUT/reports/servers" >"$OUT/spec.json" <<'EOF' || die "cannot write spec.json"
import json, sys
port, cases, exclude, outdir = sys.argv[1:]
split = lambda s: [p.strip() for p in s.split(",") if p.strip()]
print(json.dumps({
    "outdir": outdir,
    "servers": [{"agent": "syncaerys", "url": "ws://127.0.0.1:%s/" % port}],
    "cases": split(cases) or ["*"],
    "exclude-cases": split(exclude),
    "exclude-agent-cases": {},
}, indent=2))
EOF

log "wstest fuzzingclient on ws://127.0.0.1:$PORT/ (cases: $CASES; exclude: ${EXCLUDE:-none}; log: $OUT/wstest.log)"
START=$SECONDS
(cd "$OUT" && exec timeout -k 10 "$TIMEOUT" "$VENV/bin/wstest" -m fuzzingclient -s spec.json) >"$OUT/wstest.log" 2>&1 &
WSTEST_PID=$!
NEXT=60
while kill -0 "$WSTEST_PID" 2>/dev/null; do
  sleep 1
  if [ $((SECONDS - START)) -ge "$NEXT" ]; then
    NEXT=$((NEXT + 60))
    log "$((SECONDS - START))s: $(grep -c '^Running test case' "$OUT/wstest.log") cases started"
  fi
done
wait "$WSTEST_PID"; RC=$?
WSTEST_PID=""
case "$RC" in
  0) ;;
  124|137) log "wstest killed after ${TIMEOUT}s: it writes no report then" ;;
  *) log "wstest exited with $RC:"; tail -5 "$OUT/wstest.log" >&2 ;;
esac
kill -0 "$SERVER_PID" 2>/dev/null || log "the echo server died during the run; see $OUT/server.log"
log "wstest took $((SECONDS - START))s; report: $OUT/reports/servers/index.html"

"$PYTHON" "$ROOT/compliance/summarize.py" "$OUT/reports/servers" --log "$OUT/wstest.log"
