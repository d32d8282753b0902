/* What the proxyd core calls for inference.local besides pd_inference_accept (proxyd.h). */
#ifndef PD_INFERENCE_API_H
#define PD_INFERENCE_API_H

#include "proxyd/proxyd.h"

/* Build the inference state (CA and leaf, backend contexts, API keys) from conf and make it
 * current.  Call at start-up and after each accepted reload, while proxyd can still read the
 * root-only CA key and APIKeyFile=s.  On failure (no CA yet, unreadable key) the old state stays
 * (none at start: inference.local connections are then closed and logged as
 * "inference_unavailable"), the reason is logged and -1 returned.  Never fatal for proxyd. */
int pd_inference_reload(struct pd_conf *conf);
/* At exit: drop the state (connections in flight keep their reference). */
void pd_inference_shutdown(void);

#endif
