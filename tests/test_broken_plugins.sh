#!/bin/sh
# tests/test_broken_plugins.sh — a corpus of broken plugins in two plugin directories, seen
# through ember-info (which loads every plugin it finds) and through context creation:
# not an ELF file, a truncated .so, one that needs an absent library, no entry symbol, a
# newer ABI major, a name that does not match its file, an init failure, no device, and a
# duplicate name in a second directory. Each must get its precise message; nothing crashes.
# Then backend names: a name that is neither one of ember's own backends nor an installed
# plugin is a configuration error (no fallback), while ember's own names that are not built
# keep the fallback — seen by a program whose libember has only the cpu plugin beside it.
# Then ember-info --config FILE marks FILE as the file used, not ./device.ini. Last,
# ember-conform --library on the mismatched one names the file-name rule.
set -u
top=${EMBER_TEST_BUILD_DIR:-.}
plugins=${EMBER_TEST_PLUGIN_DIR:-$top/tests/plugins/.libs}
inc=${EMBER_TEST_INCLUDE_DIR:-}
cc=${CC:-cc}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/a" "$tmp/b" "$tmp/dep"
cp "$plugins"/ember-backend-t*.so "$tmp/a/"
cp "$plugins/ember-backend-tgood.so" "$tmp/b/"
echo "this is not a shared object" > "$tmp/a/ember-backend-notelf.so"
head -c 3000 "$plugins/ember-backend-tgood.so" > "$tmp/a/ember-backend-trunc.so"
# a plugin that needs a library which is not there at run time
cat > "$tmp/dep/dep.c" <<'C'
int em_test_dep_value(void);
int em_test_dep_value(void) { return 7; }
C
cat > "$tmp/dep/needsdep.c" <<'C'
#include <ember/backend.h>
int em_test_dep_value(void);
EM_BACKEND_ENTRY
{
    (void)host; (void)hc; (void)config; (void)n_config; (void)out;
    return em_test_dep_value() ? EM_ERR_BACKEND : EM_OK;
}
C
have_needsdep=no
if $cc -shared -fPIC -o "$tmp/dep/libemtestdep.so" "$tmp/dep/dep.c" 2>"$tmp/cc.log" &&
   $cc -shared -fPIC ${inc:+-I"$inc"} -o "$tmp/a/ember-backend-needsdep.so" "$tmp/dep/needsdep.c" \
       -L"$tmp/dep" -lemtestdep 2>>"$tmp/cc.log"; then
    rm -f "$tmp/dep/libemtestdep.so"
    have_needsdep=yes
fi

export EMBER_BACKEND_PATH="$tmp/a:$tmp/b"
export EMBER_CONFIG=/dev/null   # built-in defaults, whatever the developer's own files say
unset EMBER_DEVICE
"$top/tools/ember-info" > "$tmp/info.out" 2>&1
info_rc=$?
# ember-info wraps long lines: join them so phrases can be searched
tr -s ' \n' '  ' < "$tmp/info.out" > "$tmp/info.flat"

echo "1..18"
n=0
ok() { n=$((n + 1)); if [ "$1" = 0 ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; fi; }
has() { grep -qF -- "$1" "$tmp/info.flat"; }
check() { d=$1; shift; r=0; for p in "$@"; do has "$p" || { r=1; echo "# missing: $p"; }; done; ok $r "$d"; }

ok $([ $info_rc -eq 0 ]; echo $?) "ember-info survives the corpus and still reports the default cpu context (exit $info_rc)"
check "not an ELF file: stage open, dlerror text" \
    "ember-backend-notelf.so" "FAILED at stage 'open'" "file too short"
check "truncated .so: detected before dlopen" "ember-backend-trunc.so" "it is truncated"
if [ $have_needsdep = yes ]; then
    check "missing dependency: dlopen's message names the library" \
        "ember-backend-needsdep.so" "libemtestdep.so: cannot open shared object file"
else
    n=$((n + 1)); echo "ok $n - # SKIP no C compiler to build the plugin ($(head -1 "$tmp/cc.log"))"
fi
check "no entry symbol" "FAILED at stage 'symbol'" "no symbol 'ember_backend_entry'"
abi=$("$top/tools/ember-info" --version | sed -n 's/.*plugin ABI \([0-9]*\.[0-9]*\).*/\1/p')
check "newer ABI major refused with both versions" "FAILED at stage 'abi'" "plugin ABI $((${abi%.*} + 1)).${abi#*.}, but this libember uses ABI $abi"
check "name that does not match the file" "calls itself 'somethingelse', expected 'tmismatch'"
check "init failure carries the plugin's message" "FAILED at stage 'init'" "simulated driver failure"
check "no device" "FAILED at stage 'devices'" "no test hardware"
check "duplicate name: first wins, the other is reported" "$tmp/b/ember-backend-tgood.so" "shadowed by $tmp/a/ember-backend-tgood.so"

# choosing a broken plugin: ember-info exits 2, context creation gives the stage message
EMBER_DEVICE=tbadabi "$top/tools/ember-info" > "$tmp/bad.out" 2>&1
rc=$?
tr -s ' \n' '  ' < "$tmp/bad.out" > "$tmp/info.flat"
r=1; [ $rc -eq 2 ] && has "ABI $((${abi%.*} + 1)).${abi#*.}" && r=0
ok $r "EMBER_DEVICE=tbadabi: ember-info exits 2 and says why (exit $rc)"
EMBER_DEVICE=trunc "$top/tools/ember-info" > "$tmp/trunc.out" 2>&1
rc=$?
tr -s ' \n' '  ' < "$tmp/trunc.out" > "$tmp/info.flat"
r=1; [ $rc -eq 2 ] && has "truncated" && r=0
ok $r "EMBER_DEVICE=trunc: exits 2 and says the file is truncated (exit $rc)"
EMBER_DEVICE=nosuchbackend "$top/tools/ember-info" > "$tmp/none.out" 2>&1
rc=$?
tr -s ' \n' '  ' < "$tmp/none.out" > "$tmp/info.flat"
r=1; [ $rc -eq 2 ] && has "EMBER_DEVICE=nosuchbackend: unknown backend 'nosuchbackend'" &&
    has "installed backends: cpu," && has "tgood" && has "$tmp/a" && r=0
ok $r "EMBER_DEVICE=nosuchbackend: unknown, with the installed backends and the directories searched (exit $rc)"

# ---- backend names, as a build without opencl and cuda sees them: a libember whose
# directory holds only the cpu plugin, and nothing installed on the search path
unset EMBER_BACKEND_PATH
mkdir -p "$tmp/lib"
real=$(readlink -f "$top/.libs/libember.so")
cp "$real" "$tmp/lib/"
for l in "$top"/.libs/libember.so*; do
    [ -L "$l" ] && ln -sf "$(basename "$real")" "$tmp/lib/$(basename "$l")"
done
cp "$top/.libs/ember-backend-cpu.so" "$tmp/lib/"
cat > "$tmp/which.c" <<'C'
#include <ember/ember.h>
#include <stdio.h>
int main(void)
{
    em_context *ctx;
    if (em_context_create(&ctx, NULL) != EM_OK) {
        fprintf(stderr, "error: %s\n", em_last_error());
        return 1;
    }
    printf("backend %s\n", em_context_backend(ctx));
    em_context_free(ctx);
    return 0;
}
C
run_which() {  # device.ini text; output in $tmp/which.out, .err; status in $rc
    printf "$1" > "$tmp/which.ini"
    EMBER_CONFIG="$tmp/which.ini" LD_LIBRARY_PATH="$tmp/lib" "$tmp/which" \
        > "$tmp/which.out" 2> "$tmp/which.err"
    rc=$?
}
# a sanitizer build's libember needs its runtime in the program too
san=$(sed -n 's/^CFLAGS = .*\(-fsanitize=[^ ]*\).*/\1/p' "$top/Makefile" 2>/dev/null)
# shellcheck disable=SC2086
if $cc $san ${inc:+-I"$inc"} -o "$tmp/which" "$tmp/which.c" -L"$tmp/lib" -lember 2>"$tmp/cc.log"; then
    for own in cuda opencl; do
        if [ -e "${EMBER_TEST_BACKENDDIR:-/nonexistent}/ember-backend-$own.so" ]; then
            n=$((n + 1)); echo "ok $n - # SKIP an installed ember-backend-$own.so is on the search path"
            continue
        fi
        run_which "[device]\nbackend = $own\nfallback = cpu\n"
        r=1; [ $rc -eq 0 ] && grep -qx "backend cpu" "$tmp/which.out" &&
            grep -q "backend '$own' unavailable (not found: no ember-backend-$own.so" "$tmp/which.err" &&
            grep -q "using fallback 'cpu'" "$tmp/which.err" && r=0
        ok $r "backend = $own where it is not built: the documented fallback to cpu, announced (exit $rc)"
        [ $r -eq 0 ] || sed 's/^/# /' "$tmp/which.out" "$tmp/which.err"
    done
    run_which "[device]\nbackend = cpux\nfallback = cpu\n"
    r=1; [ $rc -eq 1 ] && [ ! -s "$tmp/which.out" ] &&
        grep -q "which.ini:2: \[device\] backend: unknown backend 'cpux'; did you mean 'cpu'? (installed backends: cpu;" "$tmp/which.err" &&
        ! grep -q "using fallback" "$tmp/which.err" && r=0
    ok $r "backend = cpux with fallback = cpu: a configuration error with file:line, 'did you mean', the installed backends (exit $rc)"
    [ $r -eq 0 ] || sed 's/^/# /' "$tmp/which.out" "$tmp/which.err"
else
    for i in 1 2 3; do
        n=$((n + 1)); echo "ok $n - # SKIP no C compiler to build the program ($(head -1 "$tmp/cc.log"))"
    done
fi

# ---- ember-info --config FILE beside a ./device.ini: FILE is the one used
mkdir -p "$tmp/cwd"
printf '[device]\nbackend = cpu\n' > "$tmp/cwd/device.ini"
printf '[device]\nbackend = cpu\nlog = error\n' > "$tmp/given.ini"
(cd "$tmp/cwd" && EMBER_CONFIG= "$top/tools/ember-info" --config "$tmp/given.ini") > "$tmp/given.out" 2>&1
rc=$?
r=1
[ $rc -eq 0 ] && [ "$(grep -c "<- used" "$tmp/given.out")" = 1 ] &&
    grep -q "^  --config  *$tmp/given.ini  found  <- used" "$tmp/given.out" &&
    grep -q "^ *\./device.ini (current directory)  *$tmp/cwd/device.ini  found  (not consulted)" "$tmp/given.out" &&
    grep -q "^ *log  *error  *$tmp/given.ini:3" "$tmp/given.out" && r=0
ok $r "ember-info --config FILE: FILE is marked used, ./device.ini is not (exit $rc)"
[ $r -eq 0 ] || sed -n '1,20p' "$tmp/given.out" | sed 's/^/# /'

# ember-conform --library on a plugin whose name differs from its file's: the hint is the
# file-name rule (the file is named like a plugin), not library=, which the user never wrote
"$top/tools/ember-conform" --library "$tmp/a/ember-backend-tmismatch.so" > "$tmp/conform.out" 2>&1
rc=$?
tr -s ' \n' '  ' < "$tmp/conform.out" > "$tmp/info.flat"
r=1; [ $rc -eq 2 ] && has "calls itself 'somethingelse', expected 'tmismatch'" &&
    has "a plugin file must be named ember-backend-<its name>.so: rename the file ember-backend-somethingelse.so" &&
    ! has "library=" && r=0
ok $r "ember-conform --library, name mismatch: the file-name rule, not library= (exit $rc)"
[ $r -eq 0 ] || sed 's/^/# /' "$tmp/conform.out"
