#!/usr/bin/env bash
# Run one pytest tier and record its counts under out/test-matrix/, labelled with the QGIS version,
# so `make test` can print every version's tier counts at the end and a failure names its QGIS.
#   tools/test_tier.sh PYTHON TIER      e.g. tools/test_tier.sh .venv/bin/python processing
set -uo pipefail
cd "$(dirname "$0")/.."
PY=$1; TIER=$2
LABEL=${JANJA_QGIS_LABEL:-"QGIS $(dpkg-query -W -f='${Version}' qgis 2>/dev/null | cut -d+ -f1) (host)"}
mkdir -p -m 0700 "${XDG_RUNTIME_DIR:-/tmp/runtime-$(id -u)}"
mkdir -p out/test-matrix
slug=$(echo "$LABEL" | tr -c 'A-Za-z0-9.\n' '_')
log=out/test-matrix/$slug-$TIER.log
echo "=== $LABEL: tier $TIER ==="
"$PY" -m pytest -p no:cacheprovider "tests/$TIER" 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
summary=$(grep -E '^=+ .*(passed|failed|error|no tests ran).* =+$' "$log" | tail -1 | sed -E 's/^=+ //; s/ =+$//')
[ -n "$summary" ] || summary="no pytest summary (rc $rc)"
status=ok; [ "$rc" = 0 ] || status=FAILED
printf '%-32s %-11s %-6s %s\n' "$LABEL" "$TIER" "$status" "$summary" > "out/test-matrix/$slug-$TIER.txt"
[ "$rc" = 0 ] || echo "FAILED on $LABEL: tier $TIER ($summary); log: $log" >&2
exit "$rc"
