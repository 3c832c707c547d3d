#define _GNU_SOURCE
#include "gnutls/bind.h"

#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>

#include "core/fault.h"
#include "core/log.h"

struct ktls_gt ktls_gt;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void *find(const char *name)
{
	void *p = dlsym(RTLD_NEXT, name);
	if (p)
		return p;
	/* A library dlopen()ed with RTLD_LOCAL is not in the global scope;
	 * NOLOAD never loads a GnuTLS the program did not. */
	void *h = dlopen("libgnutls.so.30", RTLD_LAZY | RTLD_NOLOAD);
	if (!h)
		return NULL;
	p = dlsym(h, name);
	dlclose(h); /* NOLOAD took a reference; it stays loaded */
	return p;
}

#define NEED(f)                                                               \
	do {                                                                  \
		ktls_gt.f = (__typeof__(ktls_gt.f))find("gnutls_" #f);        \
		ok = ok && ktls_gt.f;                                         \
	} while (0)
#define WANT(f) (ktls_gt.f = (__typeof__(ktls_gt.f))find("gnutls_" #f))

static void bind_all(void)
{
	int saved = errno, ok = 1;
	NEED(init);
	NEED(deinit);
	NEED(handshake);
	NEED(record_send);
	NEED(record_recv);
	NEED(record_check_pending);
	NEED(bye);
	NEED(transport_set_push_function);
	NEED(transport_set_pull_function);
	NEED(transport_get_int2);
	NEED(record_get_state);
	NEED(protocol_get_version);
	NEED(cipher_get);
	NEED(cipher_get_name);
	NEED(record_get_max_size);
	WANT(record_send2);
	WANT(record_recv_seq);
	WANT(record_recv_packet);
	WANT(record_send_file);
	WANT(record_get_direction);
	WANT(alert_send);
	WANT(alert_get);
	WANT(session_key_update);
	WANT(transport_set_vec_push_function);
	WANT(transport_is_ktls_enabled);
	WANT(record_get_max_send_size);
	WANT(handshake_set_hook_function);
	WANT(session_set_keylog_function);
	WANT(session_get_keylog_function);
	WANT(hkdf_expand);
	ktls_gt.ok = ok;
#ifdef KTLS_FAULT
	if (ok)
		ktls_fault_wrap_gt(&ktls_gt);
#endif
	if (!ok && ktls_gt.handshake)
		ktls_warn("libgnutls symbols missing; GnuTLS sessions stay in "
			  "userspace");
	errno = saved;
}

int ktls_gt_bind(void)
{
	pthread_once(&once, bind_all);
	return ktls_gt.ok;
}
