/*
 * The calls the shim interposes, on file descriptors that are not TLS
 * sockets, in a loop: what every preloaded program pays on its ordinary I/O.
 *   interpose_loop read|close|sendfile|write|sendmsg|recvmsg|send|recv N [time]
 * sendmsg, recvmsg, send and recv use a UNIX socket pair whose other end is served by
 * raw system calls, which the shim does not see.
 * With "time", prints the loop's own wall time per call (ns) on stdout:
 * bench/run-bench uses it for wall-time ratios (start-up not included).
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	if (argc != 3 && !(argc == 4 && !strcmp(argv[3], "time"))) {
		fprintf(stderr, "usage: interpose_loop "
				"read|close|sendfile|write|sendmsg|recvmsg|"
				"send|recv N "
				"[time]\n");
		return 2;
	}
	long n = atol(argv[2]);
	int zero = open("/dev/zero", O_RDONLY), null = open("/dev/null", O_WRONLY);
	char b[64] = "x";
	int sp[2];
	if (zero < 0 || null < 0 ||
	    socketpair(AF_UNIX, SOCK_DGRAM, 0, sp) != 0)
		return 1;
	struct iovec iov = { b, 1 };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1 };
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (long i = 0; i < n; i++) {
		if (!strcmp(argv[1], "read")) {
			if (read(zero, b, 1) != 1)
				return 1;
		} else if (!strcmp(argv[1], "write")) {
			if (write(null, b, 1) != 1)
				return 1;
		} else if (!strcmp(argv[1], "close")) {
			/* dup+close: close needs something to close */
			if (close(dup(zero)) != 0)
				return 1;
		} else if (!strcmp(argv[1], "sendmsg")) {
			if (sendmsg(sp[0], &m, 0) != 1 ||
			    syscall(SYS_read, sp[1], b, 1) != 1)
				return 1;
		} else if (!strcmp(argv[1], "recvmsg")) {
			if (syscall(SYS_write, sp[1], b, 1) != 1 ||
			    recvmsg(sp[0], &m, 0) != 1)
				return 1;
		} else if (!strcmp(argv[1], "send")) {
			if (send(sp[0], b, 1, 0) != 1 ||
			    syscall(SYS_read, sp[1], b, 1) != 1)
				return 1;
		} else if (!strcmp(argv[1], "recv")) {
			if (syscall(SYS_write, sp[1], b, 1) != 1 ||
			    recv(sp[0], b, 1, 0) != 1)
				return 1;
		} else if (!strcmp(argv[1], "sendfile")) {
			off_t off = 0;
			if (sendfile(null, zero, &off, 1) != 1)
				return 1;
		} else {
			return 2;
		}
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	if (argc == 4)
		printf("%.2f\n", ((double)(t1.tv_sec - t0.tv_sec) * 1e9 +
				  (double)(t1.tv_nsec - t0.tv_nsec)) /
					 (double)(n > 0 ? n : 1));
	return 0;
}
