#!/bin/sh
# tests/test_conform_json.sh — ember-conform --json, the report a vendor's CI reads: one JSON
# object with the backend, the plugin file and its ABI, per op its kernels, result, checks
# and per-dtype error and tolerance, and totals that agree with the rows and the exit status.
# Run on the cpu backend (all pass), on the test plugin in a mode that fails one row, and on
# a backend that does not exist (the reason, exit 2). Parsed with /usr/bin/python3's json
# where there is one, else checked line by line.
set -u
top=${EMBER_TEST_BUILD_DIR:-.}
plugins=${EMBER_TEST_PLUGIN_DIR:-$top/tests/plugins/.libs}
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
unset EMBER_DEVICE
printf '[backends]\npath = %s\n' "${EMBER_TEST_BACKEND_DIR:-$top/.libs}" > "$tmp/device.ini"
cp "$tmp/device.ini" "$tmp/liar.ini"
printf '[tgood]\nmode = host-liar\n' >> "$tmp/liar.ini"
py=
[ -x /usr/bin/python3 ] && /usr/bin/python3 -c 'import json' 2>/dev/null && py=/usr/bin/python3

n=0
fails=0
report() {
    n=$((n + 1))
    if [ "$2" -eq 0 ]; then
        echo "ok $n - $1"
    else
        echo "not ok $n - $1"
        sed 's/^/# /' "$tmp/out" | tail -n 30
        fails=$((fails + 1))
    fi
}

# check RC EXPECTED-STATUS-OF-ROW ROW: the object parses, totals match the rows, exit_status
# is the process's, ROW has the status expected
check() {
    rc=$1; want=$2; op=$3
    if [ -n "$py" ]; then
        "$py" - "$tmp/out" "$rc" "$want" "$op" <<'PY' >> "$tmp/out" 2>&1
import json, sys
path, rc, want, op = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
with open(path) as f:
    text = f.read()
o = json.loads(text[:text.rindex('}') + 1])
assert o["tool"] == "ember-conform", o["tool"]
assert o["exit_status"] == rc, (o["exit_status"], rc)
assert o["plugin"]["abi"].count(".") == 1 and o["plugin"]["path"].endswith(".so"), o["plugin"]
rows = o["ops"]
count = {"pass": 0, "fallback": 0, "FAIL": 0, "skip": 0}
for r in rows:
    count[r["status"]] += 1
    assert r["failures"] <= r["checks"], r
    assert (r["failures"] > 0) == (r["status"] == "FAIL"), r
    for dt in ("f32", "f64"):
        e = r[dt]
        assert e is None or (e["tolerance"] >= 0 and (e["max_error"] is None or e["max_error"] >= 0)), r
t = o["totals"]
assert t["ops"] == len(rows) and t["pass"] == count["pass"] and t["fallback"] == count["fallback"] \
    and t["fail"] == count["FAIL"] and t["skip"] == count["skip"], (t, count)
assert (t["fail"] > 0) == (rc == 1), (t, rc)
row = [r for r in rows if r["op"] == op]
assert row and row[0]["status"] == want, (op, row)
if want == "FAIL":
    assert row[0]["first_failure"], row
PY
    else
        grep -q '"tool": "ember-conform"' "$tmp/out" &&
            grep -q "\"exit_status\": $rc" "$tmp/out" &&
            grep -A3 "\"op\": \"$op\"" "$tmp/out" | grep -q "\"status\": \"$want\""
    fi
}

"$top/tools/ember-conform" --config "$tmp/device.ini" --backend cpu --filter add --json \
    > "$tmp/out" 2>/dev/null
rc=$?
r=1; [ $rc -eq 0 ] && check $rc pass add.grad && r=0
report "cpu --json: parses, rows and totals agree, all pass (exit $rc)" $r

"$top/tools/ember-conform" --config "$tmp/liar.ini" --library "$plugins/ember-backend-tgood.so" \
    --filter abi. --json > "$tmp/out" 2>/dev/null
rc=$?
r=1; [ $rc -eq 1 ] && check $rc FAIL abi.host_buffers && r=0
report "a failing plugin --json: the row is FAIL with its first failure, exit_status 1 (exit $rc)" $r

"$top/tools/ember-conform" --config "$tmp/device.ini" --backend nosuchbackend --json \
    > "$tmp/out" 2>/dev/null
rc=$?
r=1
if [ $rc -eq 2 ]; then
    if [ -n "$py" ]; then
        "$py" -c 'import json, sys; o = json.load(open(sys.argv[1])); assert o["exit_status"] == 2 and "unknown backend" in o["unusable"], o' \
            "$tmp/out" >> "$tmp/out" 2>&1 && r=0
    else
        grep -q '"unusable": ".*unknown backend' "$tmp/out" && r=0
    fi
fi
report "an unusable backend --json: the reason, exit_status 2 (exit $rc)" $r

"$top/tools/ember-conform" --tap --json > "$tmp/out" 2>&1
rc=$?
r=1; [ $rc -eq 3 ] && r=0
report "--tap and --json together: a usage error (exit $rc)" $r

echo "1..$n"
[ $fails -eq 0 ]
