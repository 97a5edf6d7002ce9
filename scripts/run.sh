#!/usr/bin/env bash
# scripts/run.sh BINARY — run the API and the CDC side by side against the
# local services until Ctrl-C, then stop both cleanly.
set -euo pipefail
bin="$1"
# A Redis URL given by the caller (e.g. the local Redis Cluster's) wins.
redis_url=${SWAPMEET_REDIS_URL:-}
eval "$("$(dirname "$0")/services.sh" env)"
if [[ -n $redis_url ]]; then
	export SWAPMEET_REDIS_URL=$redis_url
fi

"$bin" migrate

pids=()
stop() {
	trap - INT TERM
	echo "run: stopping"
	kill -TERM "${pids[@]}" 2>/dev/null || true
	wait "${pids[@]}" 2>/dev/null || true
}
trap stop INT TERM

"$bin" cdc &
pids+=($!)
"$bin" serve &
pids+=($!)
echo "run: API on http://${SWAPMEET_HTTP_ADDR:-127.0.0.1:8080}, CDC streaming; Ctrl-C stops both"
# If either exits on its own, stop the other and report failure.
wait -n "${pids[@]}" || status=$?
stop
exit "${status:-0}"
