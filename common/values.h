/* Value syntaxes of the config language (DESIGN.md §3): integers, booleans, sizes (K/M/G),
 * durations (ms/s/min/h), port lists, socket addresses.  Each returns 0, or -1 with a message in
 * err (errlen bytes) saying what was expected. */
#ifndef PS_VALUES_H
#define PS_VALUES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "common/config.h"

int ps_parse_uint(const char *s, uint64_t max, uint64_t *out, char *err, size_t errlen);
int ps_parse_bool(const char *s, bool *out, char *err, size_t errlen);
/* "512", "4K", "10M", "1G" (binary multiples) */
int ps_parse_size(const char *s, uint64_t *out, char *err, size_t errlen);
/* "30" (seconds), "500ms", "120s", "2min", "1h" -> milliseconds */
int ps_parse_duration_ms(const char *s, uint64_t *out, char *err, size_t errlen);
/* "443", "80,443", "8000-8100", "*", mixed: "22,8000-8100" */
int ps_parse_ports(const char *s, struct ps_port_range **out, size_t *n, char *err, size_t errlen);
/* "127.0.0.1:3128", "[::1]:3128"; default_port 0 = the port is required */
int ps_parse_sockaddr(const char *s, uint16_t default_port, struct ps_sockaddr *out, char *err,
                      size_t errlen);
/* The port of a parsed address (host order), and setting it: one place that knows both families. */
uint16_t ps_sockaddr_port(const struct ps_sockaddr *a);
void ps_sockaddr_set_port(struct ps_sockaddr *a, uint16_t port);
/* "host:port" with host a DNS name or an IP literal ([v6]) */
int ps_parse_hostport(const char *s, char **host, uint16_t *port, uint16_t default_port, char *err,
                      size_t errlen);

#endif
