#!/bin/sh
# tests/test_man.sh — the section-1 manual pages (man/*.1, installed by make install) keep up
# with the tools: every option a tool's --help names appears in its page, and each page
# formats without warnings (when groff is installed).
set -u
top=${EMBER_TEST_BUILD_DIR:-.}
src=${srcdir:-.}
tools="ember-info ember-bench ember-conform"
echo "1..6"
n=0
for t in $tools; do
    n=$((n + 1))
    page="$src/man/$t.1"
    if [ ! -f "$page" ]; then
        echo "not ok $n - $t: no man/$t.1"
        continue
    fi
    opts=$("$top/tools/$t" --help 2>&1 | grep -o -- '--[a-z][a-z0-9-]*' | sort -u)
    # the page's text with roff's escapes for '-' and fonts undone
    text=$(sed -e 's/\\-/-/g' -e 's/\\f[BIRP]//g' "$page")
    missing=
    for o in $opts; do
        printf '%s\n' "$text" | grep -q -- "$o\([^a-z0-9-]\|$\)" || missing="$missing $o"
    done
    if [ -z "$opts" ]; then
        echo "not ok $n - $t: --help names no options"
    elif [ -n "$missing" ]; then
        echo "not ok $n - $t.1 lacks options of $t --help:$missing"
    else
        echo "ok $n - $t.1 documents every option of $t --help ($(echo $opts))"
    fi
done
for t in $tools; do
    n=$((n + 1))
    if ! command -v groff > /dev/null 2>&1; then
        echo "ok $n - # SKIP no groff to format $t.1"
        continue
    fi
    warn=$(LC_ALL=C groff -man -Tutf8 -ww -z "$src/man/$t.1" 2>&1)
    if [ -z "$warn" ]; then
        echo "ok $n - $t.1 formats without warnings"
    else
        echo "not ok $n - $t.1 formats without warnings"
        printf '%s\n' "$warn" | sed 's/^/# /'
    fi
done
