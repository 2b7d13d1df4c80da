#!/bin/bash
# Sums the executions per fuzz target recorded by scripts/fuzz-long.sh (build/fuzz/totals.txt
# or the file given), with the first and last date and any run that crashed.
f=${1:-${BUILD:-build}/fuzz/totals.txt}
[ -f "$f" ] || { echo "fuzz-totals: no $f yet (run make fuzz-long)" >&2; exit 1; }
awk '{ n[$2] += $4; s[$2] += $6; c[$2] += $9; if (!($2 in first)) first[$2] = $1; last[$2] = $1 }
     END { for (t in n) printf "%-22s %14d executions %8d s  crashes %d  %s .. %s\n",
	   t, n[t], s[t], c[t], first[t], last[t] }' "$f" | sort
