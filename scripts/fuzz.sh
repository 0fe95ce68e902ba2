#!/usr/bin/env bash
# fuzz.sh runs every Go fuzz target in the repo for a set time each
# (default 20s): `make fuzz FUZZTIME=1m`. Seed corpora under each package's
# testdata/fuzz/ also run as ordinary regression tests in `make test`.
set -euo pipefail
cd "$(dirname "$0")/.."
fuzztime="${1:-20s}"
status=0
while IFS= read -r file; do
  dir=$(dirname "$file")
  for fn in $(grep -oE '^func (Fuzz[A-Za-z0-9_]+)\(' "$file" | sed -E 's/^func (Fuzz[A-Za-z0-9_]+)\(/\1/'); do
    echo "== ./$dir $fn ($fuzztime)"
    if ! go test "./$dir" -run '^$' -fuzz "^${fn}\$" -fuzztime "$fuzztime"; then
      echo "!! $fn found a failure: the crasher is saved under ./$dir/testdata/fuzz/$fn"
      status=1
    fi
  done
done < <(git ls-files --cached --others --exclude-standard '*_test.go' | xargs grep -l '^func Fuzz' | sort)
exit $status
