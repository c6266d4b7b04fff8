#!/usr/bin/env bash
# Tests scripts/lib-suites.sh: a skipped suite (exit 77) is counted as skipped, never as
# passed, and a failure still fails the summary.
set -uo pipefail
cd "$(dirname "$0")"
bad=0
expect() { # expect WANT_LINE WANT_STATUS SUITE_COMMANDS...
    local want=$1 want_rc=$2 out rc
    shift 2
    out=$(bash -c 'source ./lib-suites.sh; '"$*"'; summary' 2>&1)
    rc=$?
    if [ "$(echo "$out" | tail -n 1)" != "$want" ] || [ "$rc" -ne "$want_rc" ]; then
        echo "check-suites: '$*' gave '$(echo "$out" | tail -n 1)' (status $rc), want '$want' ($want_rc)"
        bad=$((bad + 1))
    fi
}
expect "suites: 1 passed, 0 failed, 1 skipped" 0 'suite a true; suite b bash -c "exit 77"'
expect "suites: 1 passed, 1 failed, 1 skipped" 1 'suite a true; suite b false; suite c bash -c "exit 77"'
expect "suites: 0 passed, 0 failed, 2 skipped" 0 'suite a bash -c "exit 77"; suite b bash -c "exit 77"'
expect "suites: 2 passed, 0 failed, 0 skipped" 0 'suite a true; suite b true'
out=$(bash -c 'source ./lib-suites.sh; suite jl bash -c "exit 77"; summary')
echo "$out" | grep -q '^skipped suites: jl$' || { echo "check-suites: skipped suites not listed"; bad=$((bad + 1)); }
echo "suites bookkeeping: $((5 - bad)) passed, $bad failed"
[ "$bad" -eq 0 ]
