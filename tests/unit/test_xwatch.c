#define _GNU_SOURCE
/*
 * Unit tests of shim/session/xwatch.c: proving a program's own transport
 * from what its calls did, with TCP played by the test (fds 5 and 6 are
 * TCP sockets, 7 is not; tcp_read is what TCP says the program read).
 */
#include <criterion/criterion.h>

#include <string.h>
#include <sys/socket.h>

#include "session/xwatch.h"

static uint64_t tcp_read[8];

static int fake_is_tcp(int fd)
{
	return fd == 5 || fd == 6;
}

static int fake_bytes_read(int fd, uint64_t *out)
{
	if (fd < 0 || fd >= 8)
		return -1;
	*out = tcp_read[fd];
	return 0;
}

static const struct ktls_xw_ops fake = { fake_is_tcp, fake_bytes_read };

static struct ktls_xwatch w;

static void setup(void)
{
	memset(tcp_read, 0, sizeof(tcp_read));
	tcp_read[5] = 1000; /* bytes read before the handshake (STARTTLS) */
	ktls_xw_init(&w, &fake);
}

static void teardown(void)
{
	ktls_xw_release(&w);
}

/* push(data) through a transport that writes it to fd in pieces. */
static void push(const char *data, int fd, const size_t *pieces, int n,
		 ssize_t ret)
{
	struct iovec v = { (void *)data, strlen(data) };
	ktls_xw_call_begin_tx(&w, &v, 1);
	size_t off = 0;
	for (int i = 0; i < n; i++) {
		struct iovec p = { (void *)(data + off), pieces[i] };
		ktls_xw_sent(&w, fd, &p, 1, (ssize_t)pieces[i], 0);
		off += pieces[i];
	}
	ktls_xw_call_end(&w, ret, NULL);
}

static void push_all(const char *data, int fd)
{
	size_t n = strlen(data);
	push(data, fd, &n, 1, (ssize_t)n);
}

/* pull(cap) through a transport that reads wire from fd and returns
 * what it hands up (ret bytes of out). */
static void pull(size_t cap, int fd, const char *wire, const char *out,
		 ssize_t ret)
{
	char buf[256] = { 0 };
	ktls_xw_call_begin_rx(&w, cap);
	ktls_xw_before_read(&w, fd);
	size_t n = strlen(wire);
	char tmp[256];
	memcpy(tmp, wire, n);
	tcp_read[fd] += n;
	struct iovec v = { tmp, n };
	ktls_xw_received(&w, fd, &v, 1, (ssize_t)n, 0);
	if (ret > 0)
		memcpy(buf, out, (size_t)ret);
	ktls_xw_call_end(&w, ret, buf);
}

/* The verdict must be r; returns the fd it names. */
static int expect(enum ktls_reason r)
{
	int fd = -2;
	cr_assert_eq(ktls_xw_verdict(&w, &fd), r, "verdict %s, expected %s",
		     ktls_reason_name(ktls_xw_verdict(&w, &fd)),
		     ktls_reason_name(r));
	return fd;
}

TestSuite(xwatch, .init = setup, .fini = teardown);

Test(xwatch, a_pass_through_transport_is_proven)
{
	static const size_t pieces[] = { 3, 4, 5 };
	push("hello, world", 5, pieces, 3, 12);
	pull(5, 5, "\x17\x03\x03\x01\x10", "\x17\x03\x03\x01\x10", 5);
	pull(16, 5, "0123456789abcdef", "0123456789abcdef", 16);
	cr_assert_eq(expect(KTLS_R_MOVED), 5);
}

Test(xwatch, iovecs_cut_differently_on_both_sides_still_match)
{
	char a[] = "abc", b[] = "defg", c[] = "hi";
	struct iovec exp[] = { { a, 3 }, { b, 4 }, { c, 2 } };
	ktls_xw_call_begin_tx(&w, exp, 3);
	char x[] = "abcde", y[] = "fghi";
	struct iovec s1[] = { { x, 2 }, { x + 2, 3 } }, s2 = { y, 4 };
	ktls_xw_sent(&w, 5, s1, 2, 5, MSG_NOSIGNAL);
	ktls_xw_sent(&w, 5, &s2, 1, 4, 0);
	ktls_xw_call_end(&w, 9, NULL);
	pull(4, 5, "rec!", "rec!", 4);
	expect(KTLS_R_MOVED);
}

Test(xwatch, a_log_line_to_another_fd_is_the_programs_own)
{
	struct iovec v = { "hello", 5 };
	ktls_xw_call_begin_tx(&w, &v, 1);
	struct iovec log = { "push 5 bytes\n", 13 };
	ktls_xw_sent(&w, 2, &log, 1, 13, 0);
	ktls_xw_sent(&w, 5, &v, 1, 5, 0);
	ktls_xw_call_end(&w, 5, NULL);
	pull(3, 5, "abc", "abc", 3);
	expect(KTLS_R_MOVED);
}

Test(xwatch, a_transport_that_waits_returns_eagain_without_bytes)
{
	push_all("hello", 5);
	ktls_xw_call_begin_rx(&w, 5);
	ktls_xw_before_read(&w, 5);
	struct iovec v = { NULL, 5 };
	ktls_xw_received(&w, 5, &v, 1, -1, MSG_DONTWAIT);
	ktls_xw_call_end(&w, -1, NULL);
	pull(5, 5, "world", "world", 5);
	expect(KTLS_R_MOVED);
}

Test(xwatch, bytes_queued_in_the_transport_keep_it_in_userspace)
{
	size_t none = 0;
	push("hello", 5, &none, 0, 5); /* took 5, wrote nothing yet */
	push_all("hello", 5);          /* the queue goes out later */
	pull(3, 5, "abc", "abc", 3);
	expect(KTLS_R_XPORT_QUEUES);
}

Test(xwatch, a_partial_write_the_transport_keeps_is_queued)
{
	static const size_t part[] = { 2 };
	push("hello", 5, part, 1, 5);
	cr_assert_eq(expect(KTLS_R_XPORT_QUEUES), 5);
}

Test(xwatch, calls_the_shim_does_not_see_are_unseen)
{
	size_t none = 0;
	push("hello", 5, &none, 0, 5);
	ktls_xw_call_begin_rx(&w, 5);
	ktls_xw_call_end(&w, 5, "world");
	cr_assert_eq(expect(KTLS_R_XPORT_UNSEEN), -1);
}

Test(xwatch, reading_ahead_keeps_it_in_userspace)
{
	push_all("hello", 5);
	pull(5, 5, "0123456789", "01234", 5);
	expect(KTLS_R_XPORT_READS_AHEAD);
}

Test(xwatch, bytes_from_an_earlier_read_ahead_are_not_proven)
{
	push_all("hello", 5);
	pull(5, 5, "0123", "01234", 5);
	expect(KTLS_R_XPORT_READS_AHEAD);
}

Test(xwatch, changed_bytes_on_the_socket_keep_it_in_userspace)
{
	pull(3, 5, "abc", "abc", 3);
	struct iovec v = { "hello", 5 }, framed = { "\x82\x05hel", 5 };
	ktls_xw_call_begin_tx(&w, &v, 1);
	ktls_xw_sent(&w, 5, &framed, 1, 5, 0);
	ktls_xw_call_end(&w, 5, NULL);
	expect(KTLS_R_XPORT_CHANGES);
}

Test(xwatch, handed_up_bytes_that_differ_from_the_wire_are_changed)
{
	push_all("hello", 5);
	pull(3, 5, "abc", "abd", 3);
	expect(KTLS_R_XPORT_CHANGES);
}

Test(xwatch, writes_through_one_fd_and_reads_through_another_are_two)
{
	push_all("hello", 6);
	pull(3, 5, "abc", "abc", 3);
	cr_assert_eq(expect(KTLS_R_XPORT_TWO_FDS), 6);
}

Test(xwatch, a_pipe_or_unix_socket_is_not_tcp)
{
	push_all("hello", 7);
	cr_assert_eq(expect(KTLS_R_XPORT_NOT_TCP), 7);
}

Test(xwatch, reading_from_a_pipe_is_not_tcp)
{
	push_all("hello", 5);
	pull(3, 7, "abc", "abc", 3);
	expect(KTLS_R_XPORT_NOT_TCP);
}

Test(xwatch, tcp_counting_more_reads_than_the_transport_made)
{
	push_all("hello", 5);
	pull(3, 5, "abc", "abc", 3);
	tcp_read[5] += 17; /* another thread read the socket */
	expect(KTLS_R_XPORT_OTHER_READER);
}

Test(xwatch, one_direction_never_seen_is_unseen)
{
	push_all("hello", 5);
	expect(KTLS_R_XPORT_UNSEEN);
}

Test(xwatch, a_send_with_msg_dontwait_is_remembered)
{
	struct iovec v = { "hello", 5 };
	ktls_xw_call_begin_tx(&w, &v, 1);
	ktls_xw_sent(&w, 5, &v, 1, 5, MSG_DONTWAIT);
	ktls_xw_call_end(&w, 5, NULL);
	cr_assert_eq(w.dontwait, 1);
}

Test(xwatch, a_pull_asking_past_the_copy_limit_is_not_proven)
{
	push_all("hello", 5);
	static char big[KTLS_XW_RX_MAX + 16];
	ktls_xw_call_begin_rx(&w, sizeof(big));
	ktls_xw_before_read(&w, 5);
	struct iovec v = { big, sizeof(big) };
	tcp_read[5] += sizeof(big);
	ktls_xw_received(&w, 5, &v, 1, (ssize_t)sizeof(big), 0);
	ktls_xw_call_end(&w, (ssize_t)sizeof(big), big);
	expect(KTLS_R_XPORT_READS_AHEAD);
}
