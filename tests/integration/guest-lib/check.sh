# SPDX-License-Identifier: Apache-2.0
# shellcheck shell=sh
#
# check.sh - the checks' vocabulary of the guest-side test scripts (busybox sh). In every guest
# that scripts/build-guest.sh builds with a tests directory, as /tests/lib/check.sh: a script
# sources it with `. /tests/lib/check.sh`.
#
# Each check prints "VDK-CHECK: <name>: ok|FAIL <why>" on the console, where the host test
# reads it; the script ends with `[ "$fails" = 0 ]`, its exit status /init's verdict.

fails=0

# ok NAME [DETAIL]: check NAME passed.
ok() { echo "VDK-CHECK: $1: ok${2:+ ($2)}"; }

# bad NAME WHY: check NAME failed (counted in $fails).
bad() {
	echo "VDK-CHECK: $1: FAIL $2"
	fails=$((fails + 1))
}

# param NAME: the value of vdk.NAME= on the kernel command line (read once: a fork costs
# milliseconds in a nested guest).
read -r vdk_cmdline </proc/cmdline
param() {
	for w in $vdk_cmdline; do
		case "$w" in "vdk.$1="*) echo "${w#*=}" ;; esac
	done
}

# wait_for SECONDS COMMAND...: run COMMAND every 0.2 s until it succeeds.
wait_for() {
	n=$(($1 * 5))
	shift
	while [ "$n" -gt 0 ]; do
		"$@" && return 0
		sleep 0.2
		n=$((n - 1))
	done
	return 1
}
