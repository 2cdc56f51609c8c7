#!/bin/sh
# tests/test_api_doc.sh — docs/api.md documents every public function: each name declared with
# EMBER_API in include/ember/*.h (the user API; the plugin ABI is documented in
# docs/writing-a-backend.md) must appear in the reference as `name(` or in a list of names.
top=${srcdir:-.}
echo "1..1"
missing=
for f in "$top"/include/ember/*.h; do
    case $f in */backend.h) continue ;; esac
    for name in $(sed -n 's/.*EMBER_API[^(]*[ *]\(em_[a-z0-9_]*\)(.*/\1/p' "$f"); do
        grep -q "\`$name\`\|\`$name(\|$name(" "$top/docs/api.md" || missing="$missing $name"
    done
done
if [ -n "$missing" ]; then
    echo "not ok 1 - docs/api.md lacks:$missing"
    exit 1
fi
echo "ok 1 - docs/api.md documents every public function"
