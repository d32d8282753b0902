#!/usr/bin/env bash
# The cost of pam_sandbox.so (DESIGN.md §6; targets in issue 3: < 5 ms added per login, < 50 ns per
# system call), measured side by side in a private world (tests/lib/world.sh) and printed as
# ratios, never asserted:
#   - pam_open_session + pam_close_session: the module alone, versus a pam_permit-only stack and
#     versus pam_limits alone (each round in a fresh child: see bench/pam_bench.c);
#   - getppid() via syscall(2) in a tight loop: without a filter, under an allow-all filter (what
#     the kernel charges any seccomp user per system call, the floor) and under the module's
#     filters.
# Use: bench/module.sh [ROUNDS] [SYSCALLS]   (as root; PS_BUILD selects the build, default build/)
set -u
ROUNDS=${1:-${PS_BENCH_ROUNDS:-300}}
CALLS=${2:-${PS_BENCH_SYSCALLS:-5000000}}
. "$(dirname "$0")/../tests/lib/world.sh" || exit 1; world_enter "$@"
. "$PS_SRC/tests/lib/module_world.sh"
BENCH="$PS_BUILD/bench/pam_bench"
[ -x "$BENCH" ] || skip "$BENCH not built"

mod_setup >/dev/null
world_add_user ps-bench 59290
mod_profile 10-bench <<'EOP'
[Match]
User=ps-bench
EOP
mod_apply >/dev/null
echo "session required pam_permit.so" > /etc/pam.d/ps-bench-permit
echo "session required pam_limits.so" > /etc/pam.d/ps-bench-limits
echo "session required $MOD_SO conf=$CONF" > /etc/pam.d/ps-bench-module

val() { awk -v k="$2" '$1 == k { print $2 }' <<<"$1"; }
declare -A med
for s in permit limits module; do
    out=$("$BENCH" session "ps-bench-$s" ps-bench "$ROUNDS") || fail "session bench $s: $out"
    med[$s]=$(val "$out" session_median_us)
    printf 'open+close session  %-7s median %8.1f us  mean %8.1f us  (%s rounds)\n' \
        "$s" "${med[$s]}" "$(val "$out" session_mean_us)" "$ROUNDS"
done
out=$("$BENCH" steps "$CONF" ps-bench "$ROUNDS") || fail "steps bench: $out"
printf 'open_session steps (median us): config load %s, account+profile %s, nftables %s, seccomp build %s\n' \
    "$(val "$out" step_config_load_us)" "$(val "$out" step_identity_resolve_us)" \
    "$(val "$out" step_nft_ensure_uid_us)" "$(val "$out" step_seccomp_build_us)"
# A login runs the steps once in a fresh process: cold NSS, libnftables and libseccomp state.
cold=$(for i in 1 2 3 4 5 6 7; do "$BENCH" steps "$CONF" ps-bench 1; done)
cmed() { awk -v k="$1" '$1 == k { print $2 }' <<<"$cold" | sort -n | sed -n 4p; }
printf 'open_session steps cold, one per process (median of 7, us): config load %s, account+profile %s, nftables %s, seccomp build %s\n' \
    "$(cmed step_config_load_us)" "$(cmed step_identity_resolve_us)" "$(cmed step_nft_ensure_uid_us)" \
    "$(cmed step_seccomp_build_us)"
out=$("$BENCH" syscall "$CONF" ps-bench "$CALLS") || fail "syscall bench: $out"
for k in syscall argcheck; do
    eval "${k}_p=\$(val \"\$out\" ${k}_plain_ns) ${k}_a=\$(val \"\$out\" ${k}_any_filter_ns) ${k}_f=\$(val \"\$out\" ${k}_filtered_ns)"
done
printf 'getppid()            plain %.2f ns   allow-all filter %.2f ns   module filters %.2f ns   (best of 7 alternating runs of 5 x %s/5 calls)\n' \
    "$syscall_p" "$syscall_a" "$syscall_f" "$CALLS"
printf 'ioctl(-1, FIONREAD)  plain %.2f ns   allow-all filter %.2f ns   module filters %.2f ns   (arguments checked: the filter runs in full)\n' \
    "$argcheck_p" "$argcheck_a" "$argcheck_f"
awk -v p="${med[permit]}" -v l="${med[limits]}" -v m="${med[module]}" -v a="$syscall_p" -v b="$syscall_f" -v f="$syscall_a" \
    -v ap="$argcheck_p" -v af="$argcheck_a" -v am="$argcheck_f" 'BEGIN {
    printf "ratio module/pam_permit   %.2f  (adds %.3f ms per login; target < 5 ms)\n", m / p, (m - p) / 1000
    printf "ratio module/pam_limits   %.2f\n", m / l
    printf "ratio filtered/plain syscall %.2f  (adds %.1f ns per syscall; target < 50 ns)\n", b / a, b - a
    printf "ratio filtered/plain ioctl   %.2f  (adds %.1f ns per syscall whose arguments are checked; target < 50 ns)\n", am / ap, am - ap
    printf "any seccomp filter costs %.1f ns per syscall on this kernel; over that floor the module filters add %.1f ns (getppid) and %.1f ns (ioctl)\n", f - a, b - f, am - af
}'
