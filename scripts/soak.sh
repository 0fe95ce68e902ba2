#!/usr/bin/env bash
# Soak: run the topology (broker process, two control-plane replicas on
# PostgreSQL and Redis, three sidecars with directive streams, steady load)
# for DURATION with faults injected on a schedule, then print the
# accounting, memory and goroutine/thread counts over time and any error
# lines from the logs. Results go to soak-results/<UTC timestamp>/
# (summary.txt, samples.csv, logs/), which git ignores.
#
#   scripts/soak.sh 30m        # or: make soak DURATION=30m
#   SOAK_SHORT=1 scripts/soak.sh   # about one minute, to check it works
#   SOAK_RATE=300 scripts/soak.sh 1h   # requests per second (default 150)
set -euo pipefail
cd "$(dirname "$0")/.."

duration="${1:-${DURATION:-30m}}"
if [[ "${SOAK_SHORT:-}" == "1" ]]; then
	duration=1m
fi
out="$PWD/soak-results/$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$out"

# The servers the soak needs (PostgreSQL, Redis); test-deps installs them.
if ! command -v redis-server >/dev/null || [[ ! -x /usr/lib/postgresql/15/bin/initdb ]]; then
	bash scripts/test-deps.sh
fi
export PATH="${OMNIBRIDGE_CACHE:-$HOME/.cache/omnibridge}/bin:$PATH"

# The test's own timeout: the duration plus time to start, drain and account.
secs=0
rest="$duration"
while [[ -n "$rest" ]]; do
	if [[ "$rest" =~ ^([0-9]+)(h|m|s)(.*)$ ]]; then
		n=${BASH_REMATCH[1]}
		case ${BASH_REMATCH[2]} in h) secs=$((secs + n * 3600)) ;; m) secs=$((secs + n * 60)) ;; s) secs=$((secs + n)) ;; esac
		rest=${BASH_REMATCH[3]}
	else
		echo "soak: duration \"$duration\" is not like 30m, 1h or 1h30m" >&2
		exit 2
	fi
done
timeout=$((secs + 600))s

echo "soak: $duration, results in $out"
set +e
OMNIBRIDGE_SOAK_DURATION="$duration" OMNIBRIDGE_SOAK_OUT="$out" OMNIBRIDGE_SOAK_RATE="${SOAK_RATE:-150}" \
	go test -count=1 -timeout "$timeout" -run '^TestSoak$' -v ./e2e/faults/ 2>&1 | tee "$out/test.log"
status=${PIPESTATUS[0]}
set -e
echo
if [[ -f "$out/summary.txt" ]]; then
	cat "$out/summary.txt"
fi
echo "soak: exit $status; results in $out"
exit "$status"
