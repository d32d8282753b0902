#!/usr/bin/env bash
# Policy DNS of the real sandbox-proxyd (DESIGN.md §5.3), UDP and TCP, against a test resolver in an
# upstream namespace: allowed names get synthetic A records, AAAA and other types empty answers,
# denied names REFUSED with no upstream query at all, accounts that are not sandboxed REFUSED,
# inference.local answered locally and never asked upstream.  UIDs 59700-59709.
. "$(dirname "$0")/../lib/world.sh" || exit 1; world_enter "$@"
. "$PS_SRC/tests/lib/dns_world.sh"

world_add_user dnsuser 59701 dnsbox
world_add_user dnsdenied 59702 dnsdeny
world_add_user dnsfree 59703
world_add_user dnsreporter 59704 dnsreport
dns_world_upstream github.com=A:203.0.113.10 www.example.com=A:203.0.113.10 \
    secret.example.net=A:203.0.113.10 denied-dns.example.org=A:203.0.113.10 \
    portdenied.example.com=A:203.0.113.10 \
    report-only.example.org=A:203.0.113.10
dns_world_conf
dns_profile 10-box.conf "[Match]
Group=dnsbox
[Network]
Allow=github.com:443
Allow=*.example.com:80,443
Deny=blocked.example.com
Deny=portdenied.example.com:80,443
[Inference]
Models=*"
dns_profile 20-denyall.conf "[Match]
Group=dnsdeny"
dns_profile 30-report.conf "[Match]
Group=dnsreport
[Network]
Allow=github.com:443
Mode=report"
dns_start_proxyd

for tr in "" "+tcp"; do
    t=${tr:-udp}; t=${t#+}
    out=$(dns_q dnsuser $tr github.com A)
    assert_eq "$t: allowed name status" NOERROR "$(dns_status "$out")"
    a1=$(dns_answers "$out")
    dns_is_synthetic "$a1" || fail "$t: github.com answered [$a1], not a synthetic address"
    ok "$t: github.com -> synthetic $a1"
    out=$(dns_q dnsuser $tr GitHub.COM. A)
    assert_eq "$t: same name (case, trailing dot) same address" "$a1" "$(dns_answers "$out")"

    out=$(dns_q dnsuser $tr github.com AAAA)
    assert_eq "$t: AAAA status" NOERROR "$(dns_status "$out")"
    assert_eq "$t: AAAA answers" 0 "$(dns_ancount "$out")"
    out=$(dns_q dnsuser $tr github.com TXT)
    assert_eq "$t: TXT status" NOERROR "$(dns_status "$out")"
    assert_eq "$t: TXT answers" 0 "$(dns_ancount "$out")"

    out=$(dns_q dnsuser $tr www.example.com A)
    a2=$(dns_answers "$out")
    dns_is_synthetic "$a2" || fail "$t: wildcard-allowed name answered [$a2]"
    [ "$a2" != "$a1" ] || fail "$t: two names share synthetic address $a1"
    ok "$t: *.example.com rule -> $a2"

    # Allowed by the rules but nonexistent upstream: NXDOMAIN, so search lists keep walking.
    out=$(dns_q dnsuser $tr "nope-$t.example.com" A)
    assert_eq "$t: allowed but nonexistent" NXDOMAIN "$(dns_status "$out")"

    # Denied: by no rule, and by a Deny= rule inside an allowed wildcard.  No upstream query.
    out=$(dns_q dnsuser $tr secret.example.net A)
    assert_eq "$t: denied name" REFUSED "$(dns_status "$out")"
    assert_eq "$t: denied name has no answer" 0 "$(dns_ancount "$out")"
    out=$(dns_q dnsuser $tr blocked.example.com A)
    assert_eq "$t: Deny= rule" REFUSED "$(dns_status "$out")"
    # Allowed by *.example.com on 80 and 443, denied on exactly those: no port is open, no answer.
    out=$(dns_q dnsuser $tr portdenied.example.com A)
    assert_eq "$t: Deny= on every allowed port" REFUSED "$(dns_status "$out")"

    # inference.local: synthetic for a profile with models, never asked upstream.
    out=$(dns_q dnsuser $tr inference.local A)
    ai=$(dns_answers "$out")
    dns_is_synthetic "$ai" || fail "$t: inference.local answered [$ai]"
    ok "$t: inference.local -> $ai"

    # A deny-all profile and an account that is not sandboxed: REFUSED for everything.
    for n in github.com inference.local denied-dns.example.org; do
        assert_eq "$t: deny-all profile, $n" REFUSED "$(dns_status "$(dns_q dnsdenied $tr $n A)")"
        assert_eq "$t: not sandboxed, $n" REFUSED "$(dns_status "$(dns_q dnsfree $tr $n A)")"
    done
done

# The upstream resolver never saw a denied name, nor inference.local; it did see allowed ones.
for n in secret.example.net blocked.example.com portdenied.example.com inference.local denied-dns.example.org; do
    assert_eq "upstream queries for $n" 0 "$(dns_upstream_count $n)"
done
[ "$(dns_upstream_count github.com A)" -ge 1 ] || fail "upstream never asked for github.com"
ok "upstream asked for the allowed github.com"
assert_eq "upstream asked for an allowed nonexistent name" 1 "$(dns_upstream_count nope-udp.example.com A)"

# Every decision is in the decision log with mode dns, and the reasons say why.
sleep 0.3
log="$WORLD/decisions.jsonl"
[ -s "$log" ] || log="$SYSLOG"
d=$(grep '"mode":"dns"' "$log" | grep '"host":"secret.example.net"' | head -n 1)
assert_match "denied name logged" '"decision":"deny"' "$d"
assert_match "denied name reason" '"reason":"no_matching_rule"' "$d"
d=$(grep '"mode":"dns"' "$log" | grep '"host":"blocked.example.com"' | head -n 1)
assert_match "Deny= rule logged with its place" '"rule":"[^"]*10-box.conf:[0-9]+"' "$d"
d=$(grep '"mode":"dns"' "$log" | grep '"host":"github.com"' | grep '"decision":"allow"' | head -n 1)
assert_match "allowed name logged with the rule" '"rule":"[^"]*10-box.conf:4"' "$d"
d=$(grep '"mode":"dns"' "$log" | grep '"account":"dnsfree"' | head -n 1)
assert_match "not sandboxed logged" '"reason":"not_sandboxed"' "$d"
# Mode=report: a name the rules deny is answered (and asked upstream), logged as would_deny.
out=$(dns_q dnsreporter report-only.example.org A)
dns_is_synthetic "$(dns_answers "$out")" || fail "report mode: denied name not answered: $out"
ok "report mode answers a denied name"
sleep 0.3
d=$(grep '"mode":"dns"' "$log" | grep '"host":"report-only.example.org"' | head -n 1)
assert_match "report mode logs would_deny" '"decision":"would_deny"' "$d"

dns_done
