"""The load client of the echo benchmark cases, as C source.

It is kept here as a string (not as a .c file) so that an installed wheel, which holds
Python files only, still has it: cases/echo.py writes it out and builds it with the
system's C compiler on first use.  The source explains itself in its first comment.
"""

SOURCE = r"""/*
 * echo_client.c -- the load generator of the echo-server benchmark cases.
 *
 * Written in C so that the client is never the bottleneck: on a small
 * machine the client and the server under test share the CPUs, and a Python
 * client would spend more of them than the server it measures.
 *
 * Usage: echo_client HOST PORT CONNECTIONS MESSAGE_BYTES WARMUP_MS RUN_MS
 *        echo_client bulk HOST PORT MEBIBYTES
 *        echo_client idle HOST PORT CONNECTIONS
 *        echo_client http HOST PORT CONNECTIONS WARMUP_MS RUN_MS
 *
 * Requests: opens CONNECTIONS TCP connections (TCP_NODELAY), each with one
 * request in flight: send MESSAGE_BYTES, wait for all of them to come back,
 * send again.  Requests completed during the warm-up are not counted.
 * Prints one line: "requests=N seconds=S p50_us=A p99_us=B errors=E".
 *
 * bulk: one connection streams MEBIBYTES of a fixed pseudo-random pattern
 * while reading the echo back, and checks every byte that returns.  Prints
 * "bytes=N seconds=S errors=E" (errors: mismatched or missing bytes).
 *
 * http: the request/response load with "GET / HTTP/1.1" on keep-alive
 * connections; the answer's size is learnt from a first request (Content-
 * Length), and every answer must have that size.
 *
 * idle: opens CONNECTIONS connections, sends one byte on each and waits for
 * every echo (so the server has accepted each one and its handler is
 * parked in a read), prints "ready", then holds them until stdin closes.
 *
 * Exits 0, or 1 with a message on stderr if the setup fails.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define HIST_BUCKETS 200000     /* latency histogram: 1 us buckets up to 200 ms */
#define HIST_STEP_NS 1000

typedef struct {
    int fd;
    size_t sent, got;           /* bytes of the current request */
    int64_t started;            /* ns */
} conn;

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int die(const char *what)
{
    fprintf(stderr, "echo_client: %s: %s\n", what, strerror(errno));
    return 1;
}

static int open_conn(const struct sockaddr_in *addr)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(fd, (const struct sockaddr *)addr, sizeof *addr) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Sends what is left of the request; 0, or -1 on error. */
static int pump_send(conn *c, const char *msg, size_t size)
{
    while (c->sent < size) {
        ssize_t n = send(c->fd, msg + c->sent, size - c->sent, MSG_NOSIGNAL);
        if (n < 0)
            return errno == EAGAIN ? 0 : -1;
        c->sent += (size_t)n;
    }
    return 0;
}

static double percentile(const uint64_t *hist, uint64_t total, double q)
{
    uint64_t want = (uint64_t)(q * (double)total), seen = 0;
    for (int i = 0; i < HIST_BUCKETS; i++) {
        seen += hist[i];
        if (seen > want)
            return (i + 0.5) * HIST_STEP_NS / 1000.0;
    }
    return HIST_BUCKETS * (double)HIST_STEP_NS / 1000.0;
}

#define BULK_PATTERN (256 * 1024)

/* The bytes of the bulk stream: a xorshift sequence, so a shifted or
 * repeated chunk cannot pass for the right one. */
static void fill_pattern(unsigned char *p, size_t n)
{
    uint32_t x = 2463534242u;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        p[i] = (unsigned char)x;
    }
}

static int set_nonblocking_nodelay(int fd)
{
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
}

static int run_bulk(const struct sockaddr_in *addr, long mebibytes)
{
    size_t total = (size_t)mebibytes << 20, sent = 0, got = 0;
    uint64_t errors = 0;
    unsigned char *pattern = malloc(BULK_PATTERN), *buf = malloc(BULK_PATTERN);
    int fd = open_conn(addr), ep = epoll_create1(0);
    if (!pattern || !buf || fd < 0 || ep < 0 || set_nonblocking_nodelay(fd) < 0)
        return die("bulk setup");
    fill_pattern(pattern, BULK_PATTERN);
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0)
        return die("epoll_ctl");
    int64_t t0 = now_ns();
    while (got < total) {
        struct epoll_event out;
        int n = epoll_wait(ep, &out, 1, 10000);
        if (n == 0) {
            fprintf(stderr, "echo_client: bulk: no progress for 10 s at %zu of %zu bytes\n", got, total);
            return 1;
        }
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return die("epoll_wait");
        }
        while (sent < total) {
            size_t off = sent % BULK_PATTERN, len = BULK_PATTERN - off;
            if (len > total - sent)
                len = total - sent;
            ssize_t w = send(fd, pattern + off, len, MSG_NOSIGNAL);
            if (w < 0) {
                if (errno == EAGAIN)
                    break;
                return die("bulk send");
            }
            sent += (size_t)w;
        }
        if (sent == total && (ev.events & EPOLLOUT)) {
            ev.events = EPOLLIN;
            epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ev);
        }
        for (;;) {
            size_t off = got % BULK_PATTERN;
            ssize_t r = recv(fd, buf, BULK_PATTERN - off, 0);
            if (r < 0) {
                if (errno == EAGAIN)
                    break;
                return die("bulk recv");
            }
            if (r == 0) {
                errors += total - got;      /* the server closed early */
                got = total;
                break;
            }
            if (memcmp(buf, pattern + off, (size_t)r) != 0)
                errors++;
            got += (size_t)r;
        }
    }
    double seconds = (now_ns() - t0) / 1e9;
    printf("bytes=%zu seconds=%.6f errors=%llu\n", got, seconds, (unsigned long long)errors);
    close(fd);
    return 0;
}

static int run_idle(const struct sockaddr_in *addr, int nconn)
{
    struct rlimit lim;
    if (getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur < (rlim_t)nconn + 64) {
        lim.rlim_cur = (rlim_t)nconn + 64 <= lim.rlim_max ? (rlim_t)nconn + 64 : lim.rlim_max;
        setrlimit(RLIMIT_NOFILE, &lim);
    }
    int *fds = calloc((size_t)nconn, sizeof *fds);
    if (!fds)
        return die("idle setup");
    for (int i = 0; i < nconn; i++) {
        char byte = 'x';
        fds[i] = open_conn(addr);
        if (fds[i] < 0)
            return die("idle connect");
        if (send(fds[i], &byte, 1, MSG_NOSIGNAL) != 1 || recv(fds[i], &byte, 1, 0) != 1)
            return die("idle echo");
    }
    printf("ready\n");
    fflush(stdout);
    char sink[256];
    while (read(0, sink, sizeof sink) > 0)
        ;
    for (int i = 0; i < nconn; i++)
        close(fds[i]);
    return 0;
}

static int parse_addr(const char *host, const char *port, struct sockaddr_in *addr)
{
    *addr = (struct sockaddr_in){.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(port))};
    if (inet_pton(AF_INET, host, &addr->sin_addr) != 1) {
        fprintf(stderr, "echo_client: bad address %s\n", host);
        return -1;
    }
    return 0;
}

/* The request/response load: nconn connections, one request of msg_size bytes in
 * flight on each, each answered by reply_size bytes; prints the result line. */
static int run_requests(const struct sockaddr_in *addr, int nconn, const char *msg, size_t msg_size,
                        size_t reply_size, long warmup_ms, long run_ms)
{
    int64_t warmup = warmup_ms * 1000000LL, run = run_ms * 1000000LL;
    if (nconn < 1 || msg_size < 1 || reply_size < 1 || run <= 0) {
        fprintf(stderr, "echo_client: connections, message bytes and run time must be positive\n");
        return 2;
    }
    char *buf = malloc(reply_size);
    conn *conns = calloc((size_t)nconn, sizeof *conns);
    uint64_t *hist = calloc(HIST_BUCKETS, sizeof *hist);
    struct epoll_event *events = calloc((size_t)nconn, sizeof *events);
    int ep = epoll_create1(0);
    if (!buf || !conns || !hist || !events || ep < 0)
        return die("setup");

    int64_t t0 = now_ns();
    for (int i = 0; i < nconn; i++) {
        conns[i].fd = open_conn(addr);
        if (conns[i].fd < 0)
            return die("connect");
        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)i};
        if (epoll_ctl(ep, EPOLL_CTL_ADD, conns[i].fd, &ev) < 0)
            return die("epoll_ctl");
        conns[i].started = now_ns();
        if (pump_send(&conns[i], msg, msg_size) < 0)
            return die("send");
    }
    int64_t measure_from = t0 + warmup, stop = measure_from + run;
    uint64_t done = 0, errors = 0;
    for (;;) {
        int64_t now = now_ns();
        if (now >= stop)
            break;
        int n = epoll_wait(ep, events, nconn, (int)((stop - now) / 1000000) + 1);
        if (n < 0 && errno != EINTR)
            return die("epoll_wait");
        for (int k = 0; k < n; k++) {
            conn *c = &conns[events[k].data.u32];
            ssize_t r = recv(c->fd, buf, reply_size - c->got, 0);
            if (r <= 0) {
                if (r < 0 && errno == EAGAIN)
                    continue;
                errors++;
                epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
                continue;
            }
            c->got += (size_t)r;
            if (c->got < reply_size)
                continue;
            int64_t end = now_ns();
            if (c->started >= measure_from && end <= stop) {
                int64_t b = (end - c->started) / HIST_STEP_NS;
                hist[b < HIST_BUCKETS ? b : HIST_BUCKETS - 1]++;
                done++;
            }
            c->got = c->sent = 0;
            c->started = end;
            if (pump_send(c, msg, msg_size) < 0)
                errors++;
        }
    }
    printf("requests=%llu seconds=%.6f p50_us=%.1f p99_us=%.1f errors=%llu\n",
           (unsigned long long)done, run / 1e9, percentile(hist, done, 0.50),
           percentile(hist, done, 0.99), (unsigned long long)errors);
    for (int i = 0; i < nconn; i++)
        close(conns[i].fd);
    return 0;
}

/* The byte count of the server's answer to one request (headers, then a body of
 * Content-Length bytes); every answer of the run must have it.  0 on failure. */
static size_t http_reply_size(const struct sockaddr_in *addr, const char *request, size_t len)
{
    char buf[65536];
    size_t got = 0, total = 0;
    int fd = open_conn(addr);
    if (fd < 0)
        return 0;
    if (send(fd, request, len, MSG_NOSIGNAL) == (ssize_t)len) {
        while (got < sizeof buf - 1 && (total == 0 || got < total)) {
            ssize_t r = recv(fd, buf + got, sizeof buf - 1 - got, 0);
            if (r <= 0)
                break;
            got += (size_t)r;
            buf[got] = 0;
            char *end = strstr(buf, "\r\n\r\n");
            if (end != NULL && total == 0) {
                char *length = strcasestr(buf, "\r\ncontent-length:");
                if (length == NULL || length > end)
                    break;
                total = (size_t)(end + 4 - buf) + strtoul(length + 17, NULL, 10);
            }
        }
    }
    close(fd);
    return total != 0 && got == total ? total : 0;
}

int main(int argc, char **argv)
{
    struct sockaddr_in addr;
    if (argc == 5 && (strcmp(argv[1], "bulk") == 0 || strcmp(argv[1], "idle") == 0)) {
        long count = atol(argv[4]);
        if (parse_addr(argv[2], argv[3], &addr) < 0 || count < 1) {
            fprintf(stderr, "echo_client: %s needs an address and a positive count\n", argv[1]);
            return 2;
        }
        return argv[1][0] == 'b' ? run_bulk(&addr, count) : run_idle(&addr, (int)count);
    }
    if (argc == 7 && strcmp(argv[1], "http") == 0) {
        static const char request[] = "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
        int nconn = atoi(argv[4]);
        if (parse_addr(argv[2], argv[3], &addr) < 0 || nconn < 1) {
            fprintf(stderr, "echo_client: http needs an address and a positive connection count\n");
            return 2;
        }
        size_t reply = http_reply_size(&addr, request, sizeof request - 1);
        if (reply == 0) {
            fprintf(stderr, "echo_client: http: the first answer has no Content-Length, or did not come\n");
            return 1;
        }
        return run_requests(&addr, nconn, request, sizeof request - 1, reply, atol(argv[5]), atol(argv[6]));
    }
    if (argc != 7) {
        fprintf(stderr, "usage: echo_client HOST PORT CONNECTIONS MESSAGE_BYTES WARMUP_MS RUN_MS\n"
                        "       echo_client bulk HOST PORT MEBIBYTES\n"
                        "       echo_client idle HOST PORT CONNECTIONS\n"
                        "       echo_client http HOST PORT CONNECTIONS WARMUP_MS RUN_MS\n");
        return 2;
    }
    if (parse_addr(argv[1], argv[2], &addr) < 0)
        return 2;
    size_t size = (size_t)atol(argv[4]);
    char *msg = malloc(size ? size : 1);
    if (!msg)
        return die("setup");
    memset(msg, 'x', size);
    return run_requests(&addr, atoi(argv[3]), msg, size, size, atol(argv[5]), atol(argv[6]));
}
"""
