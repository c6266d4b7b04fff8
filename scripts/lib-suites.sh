# Suite bookkeeping for scripts/test.sh (sourced). A suite is a command: exit status 0 =
# passed, 77 = skipped (the automake convention: e.g. bindings/julia/test.sh without julia),
# anything else = failed. `summary` prints the closing line
#   suites: N passed, N failed, N skipped
# (CI reads its "N passed, N failed" part) and returns non-zero if any suite failed.
# scripts/check-suites.sh tests this file.
passed=0
failed=0
skipped=0
failures=()
skips=()

suite() {
    local name=$1 rc=0
    shift
    echo
    echo "=================== $name: $*"
    "$@" || rc=$?
    case $rc in
        0) passed=$((passed + 1)) ;;
        77)
            skipped=$((skipped + 1))
            skips+=("$name")
            ;;
        *)
            failed=$((failed + 1))
            failures+=("$name")
            ;;
    esac
}

summary() {
    echo
    [ ${#skips[@]} -eq 0 ] || echo "skipped suites: ${skips[*]}"
    [ ${#failures[@]} -eq 0 ] || echo "failed suites: ${failures[*]}"
    echo "suites: $passed passed, $failed failed, $skipped skipped"
    [ "$failed" -eq 0 ]
}
