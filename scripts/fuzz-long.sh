#!/bin/bash
# The long fuzzing run: every libFuzzer target in its fast builds (-O2, UBSan trapping,
# VIO_DEBUG, no ASan), ROUNDS times over, at the lowest CPU priority so it can run in the
# background while you work. Every input a run adds to a target's corpus is then executed
# once by the ASan build, so the speed costs no memory-error detection on what the fuzzer
# found interesting. One line per target, build and round goes to build/fuzz/totals.txt;
# scripts/fuzz-totals.sh sums them.
#
# Each target's slice starts with FUZZ_CMP_SHARE percent (10) in build/fuzz-cmp, which
# traces comparisons so that libFuzzer mutates towards the constants the library compares
# device values with, and spends the rest in build/fuzz-fast, which has edge coverage only
# and runs 2-5x the executions per second (see the Makefile). Both share one corpus.
#
# A round lasts SECONDS per target, split by what each target still lacks: a target gets
# time in proportion to the seconds it needs to reach FUZZ_GOAL executions (10^8) in total,
# at the rate of its last runs in totals.txt (and at least a tenth of SECONDS), so that all
# of them get there at about the same time; one that has reached the goal gets none, one
# never run gets SECONDS. FUZZ_SPLIT=even gives every target SECONDS.
#
# libFuzzer's entropic scheduler counts, for every feature an input reaches, how often it has
# been seen while it is rare, with a linear search of the rare ones; at its default threshold
# (a feature is rare until seen 255 times) that search was 15-64% of every target's time.
# FUZZ_FLAGS (default -entropic_feature_frequency_threshold=16) keeps the scheduler and
# bounds that cost: 1.1-1.3x the executions per second, 2.4x for fuzz_mmio_probe.
#
#   scripts/fuzz-long.sh [SECONDS [ROUNDS]]     (make fuzz-long builds first)
#   FUZZ_JOBS=2 runs two targets at once; FUZZ_TARGETS="fuzz_used_ring fuzz_net_rx" picks.
set -u
secs=${1:-600}
rounds=${2:-1}
build=${BUILD:-build}
jobs=${FUZZ_JOBS:-1}
goal=${FUZZ_GOAL:-100000000}
split=${FUZZ_SPLIT:-lack}
share=${FUZZ_CMP_SHARE:-10}
flags=${FUZZ_FLAGS--entropic_feature_frequency_threshold=16}
totals=$build/fuzz/totals.txt
mkdir -p "$build/fuzz/artifacts"
targets=${FUZZ_TARGETS:-$(cd tests/fuzz && ls fuzz_*.c | sed 's/\.c$//')}

# "target seconds" for each target of this round (see the header).
plan() {
	local t
	for t in $targets; do
		echo "$t"
	done | awk -v secs="$secs" -v goal="$goal" -v mode="$split" -v totals="$totals" \
		-v share="$share" '
		BEGIN {
			while ((getline line < totals) > 0) {
				split(line, f, " ")
				done[f[2]] += f[4]
				if (f[6] > 0 && f[9] == 0 && f[4] > 0) # the last run that did not crash
					r[f[2], f[3]] = f[4] / f[6]
			}
			# The rate of a slice: its share in fuzz-cmp, the rest in fuzz-fast.
			for (k in r) {
				split(k, kk, SUBSEP)
				n = kk[1]
				if (n in rate)
					continue
				if (((n, "cmp") in r) && ((n, "fast") in r))
					rate[n] = 1 / (share / 100 / r[n, "cmp"] + (1 - share / 100) / r[n, "fast"])
				else
					rate[n] = r[k]
			}
		}
		{ t[NR] = $1 }
		END {
			floor = int(secs / 10) # no slice so thin that loading the corpus is all
			budget = secs * NR
			for (i = 1; i <= NR; i++) {
				n = t[i]
				if (mode != "lack" || !(n in rate)) {
					fixed[n] = secs
				} else if (done[n] >= goal) {
					fixed[n] = 0
				} else {
					need[n] = (goal - done[n]) / rate[n]
					sum += need[n]
					fixed[n] = -1
				}
				budget -= fixed[n] > 0 ? fixed[n] : fixed[n] < 0 ? floor : 0
			}
			if (budget < 0)
				budget = 0
			for (i = 1; i <= NR; i++) {
				n = t[i]
				s = fixed[n] >= 0 ? fixed[n] : floor + int(budget * need[n] / sum + 0.5)
				if (s > 0)
					print n, s
			}
		}'
}

# fuzz_with KIND TARGET SECONDS: one run of build/fuzz-KIND/TARGET, then ASan on what it added.
fuzz_with() {
	local kind=$1 t=$2 secs=$3 corpus=$build/fuzz/corpus-$2 log=$build/fuzz/$2.long.log
	local before new rc execs crashes=0 rechecked=0 seeds=
	# The committed seeds (scripts/fuzz-corpus.sh) are read too; new inputs go to $corpus.
	[ -d "tests/fuzz/corpus/$t" ] && seeds=tests/fuzz/corpus/$t
	mkdir -p "$corpus"
	before=$(mktemp)
	ls "$corpus" | sort >"$before"
	# shellcheck disable=SC2086 # FUZZ_FLAGS is a list of flags, seeds one directory or none
	nice -n 19 "$build/fuzz-$kind/$t" -max_total_time="$secs" -print_final_stats=1 $flags \
		-artifact_prefix="$build/fuzz/artifacts/$t-" "$corpus" $seeds >/dev/null 2>"$log"
	rc=$?
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
	[ $rc -ne 0 ] && crashes=1
	# The new inputs, once each under ASan.
	new=$(mktemp -d)
	comm -13 "$before" <(ls "$corpus" | sort) | while read -r f; do
		ln -s "$PWD/$corpus/$f" "$new/$f"
	done
	rechecked=$(ls "$new" | wc -l)
	if [ "$rechecked" -gt 0 ] &&
	   ! nice -n 19 "$build/fuzz/$t" -runs=0 "$new" >/dev/null 2>"$log.asan"; then
		crashes=1
		echo "fuzz-long: $t: an input failed under ASan, see $log.asan" >&2
	fi
	rm -rf "$new" "$before"
	[ $crashes -ne 0 ] && echo "fuzz-long: $t: crash, see $log and $build/fuzz/artifacts/" >&2
	printf '%s %s %s %s execs %s s crashes %s asan-rechecked %s\n' \
		"$(date -u +%Y-%m-%dT%H:%MZ)" "$t" "$kind" "${execs:-0}" "$secs" "$crashes" \
		"$rechecked" >>"$totals"
	echo "fuzz-long: $t ($kind) ${execs:-0} executions in $secs s (crashes: $crashes)"
}

# run_one TARGET SECONDS: the target's slice, its share with comparison tracing first.
run_one() {
	local t=$1 secs=$2 cmp_secs=$(($2 * share / 100))
	[ "$cmp_secs" -gt 0 ] && fuzz_with cmp "$t" "$cmp_secs"
	[ "$secs" -gt "$cmp_secs" ] && fuzz_with fast "$t" $((secs - cmp_secs))
}

for ((r = 1; r <= rounds; r++)); do
	n=0
	while read -r t s; do
		run_one "$t" "$s" </dev/null &
		n=$((n + 1))
		if [ $n -ge "$jobs" ]; then
			wait -n
			n=$((n - 1))
		fi
	done < <(plan)
	wait
done
scripts/fuzz-totals.sh "$totals"
