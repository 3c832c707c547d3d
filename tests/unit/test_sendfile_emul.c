/* sendfile emulation over fake file and SSL operations: offsets, file
 * position, partial sends and EAGAIN behave like sendfile(2). */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "openssl/sendfile_emul.h"

static unsigned char file[100000];
static off_t pos;                 /* the fake file position */
static unsigned char wire[200000];
static size_t wired;
static int write_budget;          /* SSL_write calls before WANT_WRITE */
static int fail_hard;

static ssize_t f_pread(int fd, void *b, size_t n, off_t off)
{
	(void)fd;
	if (off >= (off_t)sizeof(file))
		return 0;
	if (n > sizeof(file) - (size_t)off)
		n = sizeof(file) - (size_t)off;
	memcpy(b, file + off, n);
	return (ssize_t)n;
}

static ssize_t f_read(int fd, void *b, size_t n)
{
	ssize_t r = f_pread(fd, b, n, pos);
	pos += r;
	return r;
}

static off_t f_lseek(int fd, off_t off, int whence)
{
	(void)fd;
	cr_assert_eq(whence, SEEK_CUR);
	return pos += off;
}

static int f_write(SSL *s, const void *b, int n)
{
	(void)s;
	if (fail_hard)
		return -1;
	if (write_budget-- <= 0)
		return -1;
	memcpy(wire + wired, b, (size_t)n);
	wired += (size_t)n;
	return n;
}

static int f_err(const SSL *s, int r)
{
	(void)s;
	(void)r;
	return fail_hard ? SSL_ERROR_SSL : SSL_ERROR_WANT_WRITE;
}

static const struct ktls_emul_ops ops = { f_pread, f_read, f_lseek, f_write,
					  f_err };

static void setup(void)
{
	for (size_t i = 0; i < sizeof(file); i++)
		file[i] = (unsigned char)(i * 7 + 3);
	pos = 0;
	wired = 0;
	write_budget = 1000;
	fail_hard = 0;
}

TestSuite(sendfile_emul, .init = setup);

Test(sendfile_emul, offset_advances_and_position_untouched)
{
	off_t off = 10;
	ssize_t n = ktls_sendfile_emulate(&ops, NULL, 3, &off, 50000);
	cr_assert_eq(n, 50000);
	cr_assert_eq(off, 50010);
	cr_assert_eq(pos, 0);
	cr_assert(memcmp(wire, file + 10, 50000) == 0);
}

Test(sendfile_emul, file_position_advances_without_offset)
{
	pos = 5;
	ssize_t n = ktls_sendfile_emulate(&ops, NULL, 3, NULL, 40000);
	cr_assert_eq(n, 40000);
	cr_assert_eq(pos, 40005);
	cr_assert(memcmp(wire, file + 5, 40000) == 0);
}

Test(sendfile_emul, short_at_end_of_file_then_zero)
{
	off_t off = sizeof(file) - 100;
	cr_assert_eq(ktls_sendfile_emulate(&ops, NULL, 3, &off, 5000), 100);
	cr_assert_eq(ktls_sendfile_emulate(&ops, NULL, 3, &off, 5000), 0);
}

Test(sendfile_emul, eagain_after_progress_is_a_partial_send)
{
	write_budget = 2; /* two 16 KiB records, then WANT_WRITE */
	ssize_t n = ktls_sendfile_emulate(&ops, NULL, 3, NULL, 60000);
	cr_assert_eq(n, 2 * 16384);
	/* The chunk that did not go out was given back. */
	cr_assert_eq(pos, 2 * 16384);
}

Test(sendfile_emul, eagain_before_progress)
{
	write_budget = 0;
	off_t off = 0;
	errno = 0;
	cr_assert_eq(ktls_sendfile_emulate(&ops, NULL, 3, &off, 60000), -1);
	cr_assert_eq(errno, EAGAIN);
	cr_assert_eq(off, 0);
	cr_assert_eq(ktls_sendfile_emulate(&ops, NULL, 3, NULL, 100), -1);
	cr_assert_eq(pos, 0);
}

Test(sendfile_emul, tls_failure_is_epipe)
{
	fail_hard = 1;
	errno = 0;
	cr_assert_eq(ktls_sendfile_emulate(&ops, NULL, 3, NULL, 100), -1);
	cr_assert_eq(errno, EPIPE);
	cr_assert_eq(wired, 0);
}
