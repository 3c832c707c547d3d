/*
 * The shim's shared mutable state under ThreadSanitizer, with no
 * LD_PRELOAD: many threads at once through the code every tracked fd and
 * every TLS 1.3 KeyUpdate runs (byte accounting and the TX key budget, the
 * refusal of poisoned fds, close, the kernel probe's cache, the rekey core
 * with its KDF and stats, the session counters, logging). Criterion cannot
 * run under TSan (Criterion issue 274: its arena and TSan's shadow memory
 * collide), so this is a plain program with TAP output; any race makes
 * TSan exit with 66 (TSAN_OPTIONS in tests/meson.build).
 *
 * --plant-race adds one unsynchronised counter, to prove the run would
 * catch a race: meson expects that run to fail.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/tls.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/fdtab.h"
#include "core/log.h"
#include "core/shim.h"
#include "core/stats.h"
#include "kernel/probe.h"
#include "session/fd.h"
#include "session/keyupdate.h"

#define THREADS 8
#define ROUNDS 4000
#define SHARED_FDS 4 /* fds 3..6: every thread writes and reads on them */

static const struct ktls_kdf_ops ops = {
	.fetch = EVP_KDF_fetch, .free = EVP_KDF_free,
	.ctx_new = EVP_KDF_CTX_new, .ctx_free = EVP_KDF_CTX_free,
	.derive = EVP_KDF_derive, .cleanse = OPENSSL_cleanse,
};

static _Atomic unsigned long installs;
static int planted; /* --plant-race: written by every thread, no lock */
static int plant;

static int fake_setsockopt(int fd, int level, int name, const void *val,
			   socklen_t len)
{
	(void)fd, (void)level, (void)name, (void)val, (void)len;
	atomic_fetch_add(&installs, 1);
	return 0;
}

static int fake_getsockopt(int fd, int level, int name, void *val,
			   socklen_t *len)
{
	(void)fd, (void)level, (void)name, (void)val, (void)len;
	return errno = ENOPROTOOPT, -1;
}

static const struct ktls_sockops fake = { fake_setsockopt, fake_getsockopt };
static int yes(void) { return 1; }

static void *worker(void *arg)
{
	int id = (int)(long)arg, own = 100 + id;
	struct ktls_secrets sec;
	uint8_t s0[32];
	memset(s0, id + 1, sizeof(s0));
	memset(&sec, 0, sizeof(sec));
	ktls_secrets_set(&sec, 0, s0, sizeof(s0));
	struct ktls_ku_ctx c = { .fd = own, .kc = KTLS_CIPHER_AES_128_GCM,
				 .sec = &sec, .kdf = &ops, .ops = &fake,
				 .can_rekey = yes };
	for (int i = 0; i < ROUNDS; i++) {
		struct ktls_fd *e = ktls_fd_get(3 + i % SHARED_FDS);
		ktls_fd_count(e, KTLS_IO_WRITE, 100);
		ktls_fd_count(e, KTLS_IO_READ, 10);
		(void)ktls_fd_send_refused(e);
		(void)ktls_fd_rekey_due_seen();
		(void)ktls_kernel_can_rekey();
		ktls_stats_session(KTLS_R_MOVED, KTLS_R_NO_KERNEL_TLS);
		if (i % 64 == 0) {
			if (ktls_ku_rekey(&c, 0) != 0)
				return (void *)1;
			ktls_dbg("thread %d round %d", id, i);
		}
		/* A thread's own fd: tracked, counted, closed, again. */
		struct ktls_fd *mine = ktls_fd_get(own);
		ktls_fd_set_tls(mine, KTLS_FD_TX);
		ktls_fd_count(mine, KTLS_IO_WRITE, 1);
		ktls_fd_close(own, mine);
		if (plant)
			planted++;
	}
	return NULL;
}

int main(int argc, char **argv)
{
	plant = argc > 1 && strcmp(argv[1], "--plant-race") == 0;
	printf("1..3\n");
	ktls_log_setup(KTLS_LOG_OFF, KTLS_LOG_STDERR, "");
	if (ktls_fdtab_init(1024) != 0) {
		printf("not ok 1 - fd table\n");
		return 1;
	}
	for (int fd = 3; fd < 3 + SHARED_FDS; fd++) {
		struct ktls_fd *e = ktls_fd_get(fd);
		ktls_fd_set_tls(e, KTLS_FD_TX | KTLS_FD_RX);
		/* A budget the threads run out of together. */
		atomic_store(&e->tx_key_limit, 50000);
	}
	pthread_t t[THREADS];
	for (long i = 0; i < THREADS; i++)
		pthread_create(&t[i], NULL, worker, (void *)i);
	int failed = 0;
	for (int i = 0; i < THREADS; i++) {
		void *r;
		pthread_join(t[i], &r);
		failed |= r != NULL;
	}
	printf("%s 1 - %d threads x %d rounds, every rekey installed\n",
	       failed ? "not ok" : "ok", THREADS, ROUNDS);
	unsigned long long tx = 0, rx = 0;
	int due = 1;
	for (int fd = 3; fd < 3 + SHARED_FDS; fd++) {
		struct ktls_fd *e = ktls_fd_get(fd);
		tx += atomic_load(&e->tx_bytes);
		rx += atomic_load(&e->rx_bytes);
		due &= !!(atomic_load(&e->flags) & KTLS_FD_REKEY_DUE);
	}
	unsigned long long want_tx = 100ull * THREADS * ROUNDS;
	int counts_ok = tx == want_tx && rx == want_tx / 10 && due &&
			atomic_load(&ktls_stats.sessions) ==
				(unsigned long)THREADS * ROUNDS;
	printf("%s 2 - no count lost (tx %llu of %llu, rx %llu, budgets "
	       "spent: %d)\n",
	       counts_ok ? "ok" : "not ok", tx, want_tx, rx, due);
	unsigned long rekeys = atomic_load(&ktls_stats.rekeys_tx);
	int rekeys_ok = rekeys == atomic_load(&installs) &&
			rekeys == (unsigned long)THREADS * ((ROUNDS + 63) / 64);
	printf("%s 3 - rekeys counted once each (%lu)\n",
	       rekeys_ok ? "ok" : "not ok", rekeys);
	return failed || !counts_ok || !rekeys_ok;
}
