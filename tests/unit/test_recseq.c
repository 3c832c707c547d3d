#define _GNU_SOURCE
/*
 * Unit tests of shim/tls/recseq.c: record sequence numbers from message
 * callback traces shaped as OpenSSL 3.0 makes them (a header callback
 * before the messages of its record; CCS and Finished after their record's
 * header).
 */
#include <criterion/criterion.h>

#include <openssl/ssl3.h>
#include <openssl/tls1.h>
#include <string.h>

#include "tls/recseq.h"

/* A sealed record as the write path leaves it: header, then (TLS 1.2
 * AES-GCM) the 8-byte explicit nonce. */
static uint8_t rec[5 + 8 + 16] = { 22, 3, 3, 0, 24,
				   1, 2, 3, 4, 5, 6, 7, 8 };
static const uint8_t finished[4] = { SSL3_MT_FINISHED, 0, 0, 12 };
static const uint8_t ticket[4] = { SSL3_MT_NEWSESSION_TICKET, 0, 0, 9 };
static const uint8_t ccs[1] = { 1 };

static void hdr(struct ktls_recseq *q, int w)
{
	ktls_recseq_observe(q, w, TLS1_2_VERSION, SSL3_RT_HEADER, rec, 5);
}

static void msg(struct ktls_recseq *q, int w, int v, int type,
		const uint8_t *b, size_t n)
{
	ktls_recseq_observe(q, w, v, type, b, n);
}

Test(recseq, unknown_until_a_key_change)
{
	struct ktls_recseq q;
	memset(&q, 0, sizeof(q));
	hdr(&q, 1);
	hdr(&q, 0);
	cr_assert_eq(ktls_recseq_next(&q, 0), -1);
	cr_assert_eq(ktls_recseq_next(&q, 1), -1);
}

Test(recseq, tls12_full_handshake_client)
{
	struct ktls_recseq q;
	memset(&q, 0, sizeof(q));
	/* ClientHello ... ClientKeyExchange */
	hdr(&q, 1);
	hdr(&q, 0);
	/* our CCS record, its message, then Finished under the new key */
	hdr(&q, 1);
	msg(&q, 1, TLS1_2_VERSION, SSL3_RT_CHANGE_CIPHER_SPEC, ccs, 1);
	hdr(&q, 1);
	msg(&q, 1, TLS1_2_VERSION, SSL3_RT_HANDSHAKE, finished, 4);
	/* theirs */
	hdr(&q, 0);
	msg(&q, 0, TLS1_2_VERSION, SSL3_RT_CHANGE_CIPHER_SPEC, ccs, 1);
	hdr(&q, 0);
	msg(&q, 0, TLS1_2_VERSION, SSL3_RT_HANDSHAKE, finished, 4);
	cr_assert_eq(ktls_recseq_next(&q, 0), 1);
	cr_assert_eq(ktls_recseq_next(&q, 1), 1);
	/* The explicit nonce of our Finished, for the kernel to go on from. */
	cr_assert(q.nonce_ok);
	cr_assert_eq(memcmp(q.nonce, rec + 5, 8), 0);
}

Test(recseq, tls13_server_counts_its_tickets)
{
	struct ktls_recseq q;
	memset(&q, 0, sizeof(q));
	hdr(&q, 1); /* ServerHello */
	/* compatibility CCS: no key change in TLS 1.3 */
	hdr(&q, 1);
	msg(&q, 1, TLS1_3_VERSION, SSL3_RT_CHANGE_CIPHER_SPEC, ccs, 1);
	hdr(&q, 1); /* EncryptedExtensions .. Finished, handshake key */
	msg(&q, 1, TLS1_3_VERSION, SSL3_RT_HANDSHAKE, finished, 4);
	hdr(&q, 0); /* client Finished */
	msg(&q, 0, TLS1_3_VERSION, SSL3_RT_HANDSHAKE, finished, 4);
	for (int i = 0; i < 2; i++) {
		hdr(&q, 1);
		msg(&q, 1, TLS1_3_VERSION, SSL3_RT_HANDSHAKE, ticket, 4);
	}
	cr_assert_eq(ktls_recseq_next(&q, 0), 2);
	cr_assert_eq(ktls_recseq_next(&q, 1), 0);
}

Test(recseq, tls13_finished_does_not_restart_tls12)
{
	struct ktls_recseq q;
	memset(&q, 0, sizeof(q));
	msg(&q, 0, TLS1_2_VERSION, SSL3_RT_CHANGE_CIPHER_SPEC, ccs, 1);
	hdr(&q, 0);
	msg(&q, 0, TLS1_2_VERSION, SSL3_RT_HANDSHAKE, finished, 4);
	hdr(&q, 0);
	cr_assert_eq(ktls_recseq_next(&q, 1), 2);
}

Test(recseq, no_nonce_from_a_record_too_short_to_have_one)
{
	struct ktls_recseq q;
	uint8_t tiny[5] = { 21, 3, 3, 0, 2 };
	memset(&q, 0, sizeof(q));
	msg(&q, 1, TLS1_2_VERSION, SSL3_RT_CHANGE_CIPHER_SPEC, ccs, 1);
	ktls_recseq_observe(&q, 1, TLS1_2_VERSION, SSL3_RT_HEADER, tiny, 5);
	cr_assert_not(q.nonce_ok);
	cr_assert_eq(ktls_recseq_next(&q, 0), 1);
}

Test(recseq, tls12_rx_without_the_peers_ccs)
{
	struct ktls_recseq q;
	memset(&q, 0, sizeof(q));
	/* 3.0 reports no callback for a received CCS record's message. */
	hdr(&q, 0);
	hdr(&q, 0);
	msg(&q, 0, TLS1_2_VERSION, SSL3_RT_HANDSHAKE, finished, 4);
	cr_assert_eq(ktls_recseq_next(&q, 1), 1);
	hdr(&q, 0);
	cr_assert_eq(ktls_recseq_next(&q, 1), 2);
	/* and TX without our CCS: a sequence number, but no nonce */
	hdr(&q, 1);
	msg(&q, 1, TLS1_2_VERSION, SSL3_RT_HANDSHAKE, finished, 4);
	cr_assert_eq(ktls_recseq_next(&q, 0), 1);
	cr_assert_not(q.nonce_ok);
}
