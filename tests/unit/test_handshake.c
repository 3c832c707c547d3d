#define _GNU_SOURCE
/*
 * Unit tests of shim/tls/handshake.c, the one parser of post-handshake
 * messages every engine uses: framing, where a KeyUpdate sits in a record
 * (the kernel only looks at a record's first message), what each message
 * means, and the KeyUpdate message both ways. The streams are the records
 * a peer sends after the handshake: a KeyUpdate alone, coalesced behind a
 * NewSessionTicket, split across records, with update_requested.
 */
#include <criterion/criterion.h>

#include <string.h>

#include "tls/handshake.h"
#include "tls/record.h"

/* A KeyUpdate, update_not_requested / update_requested. */
static const uint8_t ku0[5] = { 24, 0, 0, 1, 0 };
static const uint8_t ku1[5] = { 24, 0, 0, 1, 1 };
/* A NewSessionTicket with a 6-byte body. */
static const uint8_t nst[10] = { 4, 0, 0, 6, 0, 0, 0x1c, 0x20, 0, 0 };

Test(handshake, framing)
{
	const uint8_t big[4] = { 4, 0x01, 0x00, 0x02 };
	cr_assert_eq(ktls_hs_msg_len(ku0, 3), 0);
	cr_assert_eq(ktls_hs_msg_len(ku0, 4), 5);
	cr_assert_eq(ktls_hs_msg_len(ku0, 5), 5);
	cr_assert_eq(ktls_hs_msg_len(big, 4), 4 + 0x010002);
	cr_assert_eq(ktls_hs_msg_len(nst, sizeof(nst)), sizeof(nst));
}

Test(handshake, key_update_alone_begins_the_record)
{
	cr_assert_eq(ktls_hs_key_update_at(ku0, sizeof(ku0)), 0);
	cr_assert_eq(ktls_hs_key_update_at(ku1, sizeof(ku1)), 0);
}

Test(handshake, key_update_coalesced_behind_a_ticket)
{
	uint8_t rec[sizeof(nst) + sizeof(ku1)];
	memcpy(rec, nst, sizeof(nst));
	memcpy(rec + sizeof(nst), ku1, sizeof(ku1));
	/* Behind another message: the kernel did not pause RX for it. */
	cr_assert_eq(ktls_hs_key_update_at(rec, sizeof(rec)), 1);
	/* Tickets alone carry none. */
	cr_assert_eq(ktls_hs_key_update_at(nst, sizeof(nst)), -1);
}

Test(handshake, key_update_then_ticket)
{
	uint8_t rec[sizeof(ku0) + sizeof(nst)];
	memcpy(rec, ku0, sizeof(ku0));
	memcpy(rec + sizeof(ku0), nst, sizeof(nst));
	cr_assert_eq(ktls_hs_key_update_at(rec, sizeof(rec)), 0);
}

Test(handshake, split_across_records)
{
	/* The first record ends inside the ticket: the KeyUpdate in the next
	 * record is not seen in this one, and nothing reads past the end. */
	uint8_t rec[sizeof(nst) + sizeof(ku0)];
	memcpy(rec, nst, sizeof(nst));
	memcpy(rec + sizeof(nst), ku0, sizeof(ku0));
	cr_assert_eq(ktls_hs_key_update_at(rec, 7), -1);
	/* A KeyUpdate's own header split: 3 bytes are not a message yet. */
	cr_assert_eq(ktls_hs_key_update_at(ku0, 3), -1);
	/* Its header whole, its body in the next record: it is there (the
	 * caller then finds it too short). */
	cr_assert_eq(ktls_hs_key_update_at(ku0, 4), 0);
	cr_assert_eq(ktls_hs_key_update_request(ku0, 4), -1);
	/* The rest of a split ticket opens the next record: no KeyUpdate at
	 * its start, one behind it. */
	cr_assert_eq(ktls_hs_key_update_at(rec + 7, sizeof(rec) - 7), -1);
}

Test(handshake, key_update_request)
{
	cr_assert_eq(ktls_hs_key_update_request(ku0, sizeof(ku0)), 0);
	cr_assert_eq(ktls_hs_key_update_request(ku1, sizeof(ku1)), 1);
	/* RFC 8446 4.6.3: anything but 0 or 1 is a decode error. */
	const uint8_t bad_value[5] = { 24, 0, 0, 1, 2 };
	cr_assert_eq(ktls_hs_key_update_request(bad_value, 5), -1);
	/* A body of another length. */
	const uint8_t long_body[6] = { 24, 0, 0, 2, 0, 0 };
	cr_assert_eq(ktls_hs_key_update_request(long_body, 6), -1);
	/* Not a KeyUpdate at all. */
	const uint8_t finished[5] = { 20, 0, 0, 1, 0 };
	cr_assert_eq(ktls_hs_key_update_request(finished, 5), -1);
}

Test(handshake, key_update_message_round_trips)
{
	uint8_t m[KTLS_KEY_UPDATE_LEN];
	for (int req = 0; req <= 1; req++) {
		ktls_hs_key_update_msg(m, req);
		cr_assert_arr_eq(m, req ? ku1 : ku0, sizeof(m));
		cr_assert_eq(ktls_hs_key_update_request(m, sizeof(m)), req);
		cr_assert_eq(ktls_hs_key_update_at(m, sizeof(m)), 0);
	}
	/* Any non-zero request asks for one back. */
	ktls_hs_key_update_msg(m, 7);
	cr_assert_eq(m[4], 1);
}

Test(handshake, what_each_message_means)
{
	/* TLS 1.3 client: tickets dropped, KeyUpdate needs a new key. */
	cr_assert_eq(ktls_msg_kind(0x0304, 0, KTLS_HS_NEW_SESSION_TICKET),
		     KTLS_MSG_DROP);
	cr_assert_eq(ktls_msg_kind(0x0304, 0, KTLS_HS_KEY_UPDATE),
		     KTLS_MSG_KEY_UPDATE);
	cr_assert_eq(ktls_msg_kind(0x0304, 1, KTLS_HS_KEY_UPDATE),
		     KTLS_MSG_KEY_UPDATE);
	/* A server is never sent tickets; nor does 1.3 renegotiate. */
	cr_assert_eq(ktls_msg_kind(0x0304, 1, 4), KTLS_MSG_UNEXPECTED);
	cr_assert_eq(ktls_msg_kind(0x0304, 0, 0), KTLS_MSG_UNEXPECTED);
	cr_assert_eq(ktls_msg_kind(0x0304, 1, 1), KTLS_MSG_UNEXPECTED);
	/* TLS 1.2: HelloRequest to a client, ClientHello to a server. */
	cr_assert_eq(ktls_msg_kind(0x0303, 0, 0), KTLS_MSG_REHANDSHAKE);
	cr_assert_eq(ktls_msg_kind(0x0303, 1, 1), KTLS_MSG_REHANDSHAKE);
	cr_assert_eq(ktls_msg_kind(0x0303, 1, 0), KTLS_MSG_UNEXPECTED);
	cr_assert_eq(ktls_msg_kind(0x0303, 0, 4), KTLS_MSG_UNEXPECTED);
	/* A KeyUpdate in TLS 1.2 is no such thing. */
	cr_assert_eq(ktls_msg_kind(0x0303, 0, 24), KTLS_MSG_UNEXPECTED);
}
