#define _GNU_SOURCE
/*
 * shim/kernel/zerocopy_ro.c through the ktls_sockops seam: a fake kernel that
 * takes, refuses or silently drops TLS_TX_ZEROCOPY_RO.
 */
#include <criterion/criterion.h>

#include <errno.h>
#include <linux/tls.h>
#include <string.h>

#include "kernel/zerocopy_ro.h"

#ifndef SOL_TLS
#define SOL_TLS 282
#endif

static struct {
	int set_err;  /* errno for setsockopt, 0: accept */
	int get_err;  /* errno for getsockopt, 0: answer */
	int remember; /* 0: a kernel that accepts and forgets */
	int value;
	int nset, nget, level, name, fd;
	socklen_t setlen;
} k;

static int fake_set(int fd, int level, int name, const void *val,
		    socklen_t len)
{
	k.nset++, k.fd = fd, k.level = level, k.name = name, k.setlen = len;
	if (k.set_err)
		return errno = k.set_err, -1;
	if (k.remember)
		memcpy(&k.value, val, sizeof(int));
	return 0;
}

static int fake_get(int fd, int level, int name, void *val, socklen_t *len)
{
	(void)fd;
	k.nget++;
	cr_assert_eq(level, SOL_TLS);
	cr_assert_eq(name, TLS_TX_ZEROCOPY_RO);
	if (k.get_err)
		return errno = k.get_err, -1;
	cr_assert_geq(*len, sizeof(int));
	memcpy(val, &k.value, sizeof(int));
	*len = sizeof(int);
	return 0;
}

static const struct ktls_sockops fake = { fake_set, fake_get };

static void reset(void)
{
	memset(&k, 0, sizeof(k));
	k.remember = 1;
}

TestSuite(zerocopy_ro, .init = reset);

Test(zerocopy_ro, kernel_takes_it)
{
	char buf[48];
	int rc = ktls_tx_zerocopy_ro(&fake, 7);
	cr_assert_eq(rc, 1);
	cr_assert_eq(k.fd, 7);
	cr_assert_eq(k.level, SOL_TLS);
	cr_assert_eq(k.name, TLS_TX_ZEROCOPY_RO);
	cr_assert_eq(k.setlen, sizeof(int));
	cr_assert_eq(k.value, 1);
	cr_assert_eq(k.nget, 1); /* read back */
	cr_assert_str_eq(ktls_tx_zerocopy_ro_name(rc, buf, sizeof(buf)), "on");
}

Test(zerocopy_ro, old_kernel_refuses)
{
	char buf[48];
	k.set_err = ENOPROTOOPT;
	int rc = ktls_tx_zerocopy_ro(&fake, 3);
	cr_assert_eq(rc, -ENOPROTOOPT);
	cr_assert_eq(k.nget, 0);
	cr_assert_str_eq(ktls_tx_zerocopy_ro_name(rc, buf, sizeof(buf)),
			 "refused-ENOPROTOOPT");
}

Test(zerocopy_ro, accepted_but_not_held_is_not_on)
{
	char buf[48];
	k.remember = 0;
	int rc = ktls_tx_zerocopy_ro(&fake, 3);
	cr_assert_eq(rc, -EPROTO);
	cr_assert_str_eq(ktls_tx_zerocopy_ro_name(rc, buf, sizeof(buf)),
			 "refused-EPROTO");
}

Test(zerocopy_ro, read_back_fails)
{
	k.get_err = EINVAL;
	cr_assert_eq(ktls_tx_zerocopy_ro(&fake, 3), -EINVAL);
}

Test(zerocopy_ro, short_buffer_name_is_terminated)
{
	char buf[10];
	const char *n = ktls_tx_zerocopy_ro_name(-ENOPROTOOPT, buf, sizeof(buf));
	cr_assert_eq(strlen(n), sizeof(buf) - 1);
}
