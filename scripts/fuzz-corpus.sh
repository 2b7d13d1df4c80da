#!/bin/bash
# Refresh the committed seed corpus, tests/fuzz/corpus/TARGET/: the smallest set of inputs
# that reaches every edge the ASan build of TARGET reaches with the inputs already committed
# plus everything the local runs found (build/fuzz/corpus-TARGET). Edges only
# (-use_counters=0): a few hundred small files per target, not the tens of thousands the long
# run keeps. `make fuzz` and scripts/fuzz-long.sh read the seeds as a second corpus, so a
# fresh clone, and CI's 30 s per target, start where the long runs got to, and every input
# that once reached a new edge is run again on every CI run.
#
# The merge runs each input once under ASan and UBSan, so an input that crashes the library
# stops the refresh (and is left in build/fuzz/artifacts/) rather than being committed.
#
#   make fuzz-corpus       (builds the ASan targets first)
#   FUZZ_TARGETS="fuzz_net_rx" scripts/fuzz-corpus.sh
set -u
build=${BUILD:-build}
targets=${FUZZ_TARGETS:-$(cd tests/fuzz && ls fuzz_*.c | sed 's/\.c$//')}
status=0
mkdir -p "$build/fuzz/artifacts"
for t in $targets; do
	seeds=tests/fuzz/corpus/$t local=$build/fuzz/corpus-$t
	mkdir -p "$seeds" "$local"
	out=$(mktemp -d)
	if ! "$build/fuzz/$t" -merge=1 -use_counters=0 \
		-artifact_prefix="$build/fuzz/artifacts/$t-" "$out" "$seeds" "$local" \
		>/dev/null 2>"$build/fuzz/$t.merge.log"; then
		echo "fuzz-corpus: $t: the merge failed, see $build/fuzz/$t.merge.log" >&2
		rm -rf "$out"
		status=1
		continue
	fi
	before=$(ls "$seeds" | wc -l)
	rm -rf "$seeds"
	mv "$out" "$seeds"
	chmod 755 "$seeds"
	edges=$(sed -n 's/.*MERGE-OUTER: .* \([0-9]*\) new coverage edges.*/\1/p' \
		"$build/fuzz/$t.merge.log" | tail -1)
	printf 'fuzz-corpus: %-22s %4d -> %4d inputs, %s edges, %s bytes\n' "$t" "$before" \
		"$(ls "$seeds" | wc -l)" "${edges:-?}" "$(cat "$seeds"/* 2>/dev/null | wc -c)"
done
exit $status
