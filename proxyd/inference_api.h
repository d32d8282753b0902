/* What the proxyd core calls for inference.local besides pd_inference_accept (proxyd.h). */
#ifndef PD_INFERENCE_API_H
#define PD_INFERENCE_API_H

#include "proxyd/proxyd.h"

/* Build the inference state (CA and leaf, backend contexts, API keys) from conf and make it
 * current.  Call at start-up (as root, secrets NULL: the files are read) and after each accepted
 * reload (secrets: the root-only CA key and APIKeyFile=s handed over by the privileged helper, or
 * NULL when this process could read them itself).  On failure (no CA yet, unreadable key) the old state stays
 * (none at start: inference.local connections are then closed and logged as
 * "inference_unavailable"), the reason is logged and -1 returned.  Never fatal for proxyd. */
struct pd_secrets;
int pd_inference_reload(struct pd_conf *conf, const struct pd_secrets *secrets);
/* At exit: drop the state (connections in flight keep their reference). */
void pd_inference_shutdown(void);

#endif
