#!/bin/sh
# tests/test_ini_doc.sh — every key a first-party backend accepts in its device.ini section
# (its config_keys list, which the core checks files against) is documented, in that
# section, both in README.md's device.ini example and in the installed data/device.ini.
top=${srcdir:-.}
echo "1..2"
# "section key" for each backend: backends/<name>/* declare <x>_config_keys[] = {"k", ..., NULL}
keys=$(for f in "$top"/backends/cpu/cpu.c "$top"/backends/opencl/opencl.c \
                "$top"/backends/cuda/cuda_backend.cu; do
    sec=$(basename "$(dirname "$f")")
    sed -n 's/.*_config_keys\[\] = {\(.*\), NULL};.*/\1/p' "$f" | tr -d '" ' | tr ',' '\n' |
        sed "s/^/$sec /"
done)
# the keys, commented out or not, of each [section] (itself commented out or not) of a file
documented() {
    awk '/^(; )?\[[a-z]+\]/ { s = $0; sub(/^; /, "", s); gsub(/[][]/, "", s); next }
         /^;? ?[a-z_]+ *=/ { k = $0; sub(/^;? ?/, "", k); sub(/ *=.*/, "", k); print s " " k }' "$1"
}
# README: only its ```ini block
ini=$(mktemp) || exit 1
trap 'rm -f "$ini"' EXIT
awk '/^```ini$/ { on = 1; next } /^```$/ { on = 0 } on' "$top/README.md" > "$ini"
n=0
for f in "$ini" "$top/data/device.ini"; do
    n=$((n + 1))
    have=$(documented "$f")
    missing=$(echo "$keys" | while read -r sec key; do
        echo "$have" | grep -qx "$sec $key" || printf ' [%s] %s' "$sec" "$key"
    done)
    name=$f; [ "$f" = "$ini" ] && name="README.md's device.ini"
    if [ -z "$keys" ]; then
        echo "not ok $n - no config_keys lists found in the backends' sources"
    elif [ -n "$missing" ]; then
        echo "not ok $n - $name lacks:$missing"
    else
        echo "ok $n - $name documents every backend key ($(echo "$keys" | tr '\n' ',' | sed 's/,$//'))"
    fi
done
