/* Process-wide state of the preload library. */
#ifndef KTLS_SHIM_SHIM_H
#define KTLS_SHIM_SHIM_H

#include "core/config.h"

extern struct ktls_config ktls_cfg;

/*
 * 1 when this process is on the allowlist and the config parsed; runs the
 * one-time initialisation if a hook got here before the constructor did.
 */
int ktls_shim_active(void);
/* The program's name, for the exit summary (copied at start: nginx and
 * others rewrite argv). */
extern char ktls_prog_name[64];

#endif
