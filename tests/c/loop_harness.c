/*
 * loop_harness.c -- the loop scenarios' table, the two ways to run one (in
 * this process, or in a forked child with a timeout, so that a hang or a
 * crash fails one scenario and not the whole run), and the helpers of
 * loop_tests.h.
 */
#define _GNU_SOURCE 1
#include "loop_tests.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

typedef struct tl_scenario {
    const char *name;
    int (*fn)(unsigned backend);
} tl_scenario;

#define TL_ENTRY(name) {#name, tl_##name},
static const tl_scenario tl_table[] = {TL_SCENARIOS(TL_ENTRY)};
#undef TL_ENTRY
#define TL_N ((int)(sizeof tl_table / sizeof tl_table[0]))

int tl_count(void) { return TL_N; }
const char *tl_name(int i) { return (i >= 0 && i < TL_N) ? tl_table[i].name : NULL; }

static int tl_divisor = 1;
void tl_set_scale(int divisor) { tl_divisor = divisor > 0 ? divisor : 1; }
int tl_scale(int n) { return n / tl_divisor > 0 ? n / tl_divisor : 1; }

/* ---- failures ---- */

static int tl_code;
static long tl_value;
static char tl_what[240];

int tl_fail(const char *expr, const char *file, int line)
{
    if (!tl_code) {
        const char *base = strrchr(file, '/');
        tl_code = line;
        snprintf(tl_what, sizeof tl_what, "%s:%d: %s", base ? base + 1 : file, line, expr);
    }
    return tl_code;
}

int tl_failed(void) { return tl_code; }
void tl_set_value(long v) { tl_value = v; }

int tl_run(int i, unsigned backend, tl_result *r)
{
    memset(r, 0, sizeof *r);
    if (i < 0 || i >= TL_N) {
        r->code = -1;
        snprintf(r->what, sizeof r->what, "no scenario %d", i);
        return r->code;
    }
    tl_code = 0;
    tl_value = 0;
    tl_what[0] = 0;
    tl_log_reset();
    tl_alloc_reset();
    int rc = tl_table[i].fn(backend);
    r->code = rc ? rc : tl_code;
    if (r->code && !tl_code)
        snprintf(tl_what, sizeof tl_what, "returned %d", rc);
    r->value = tl_value;
    snprintf(r->what, sizeof r->what, "%s", tl_what);
    return r->code;
}

/* Full writes and reads of the result through the pipe. */
static void tl_write_all(int fd, const void *buf, size_t n)
{
    const char *p = buf;
    while (n > 0) {
        ssize_t k = write(fd, p, n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return;
        p += k;
        n -= (size_t)k;
    }
}

static size_t tl_read_all(int fd, void *buf, size_t n)
{
    size_t got = 0;
    while (got < n) {
        ssize_t k = read(fd, (char *)buf + got, n - got);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            break;
        got += (size_t)k;
    }
    return got;
}

/* The child: default signal state (the parent may be pytest), the scenario, the result. */
static void tl_child(int i, unsigned backend, unsigned timeout_s, int fd)
{
    tl_result r;
    sigset_t all;
    for (int s = 1; s < NSIG; s++)
        if (s != SIGKILL && s != SIGSTOP)
            signal(s, SIG_DFL);
    signal(SIGPIPE, SIG_IGN);
    sigemptyset(&all);
    sigprocmask(SIG_SETMASK, &all, NULL);
    alarm(timeout_s);
    tl_run(i, backend, &r);
    alarm(0);
    tl_write_all(fd, &r, sizeof r);
    _exit(r.code == 0 ? 0 : 1);
}

int tl_run_isolated(int i, unsigned backend, unsigned timeout_s, tl_result *r)
{
    int p[2];
    memset(r, 0, sizeof *r);
    if (pipe(p) < 0)
        return r->code = -errno;
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
        return r->code = -errno;
    if (pid == 0) {
        setpgid(0, 0);
        close(p[0]);
        tl_child(i, backend, timeout_s, p[1]);
    }
    /* The child leads its own process group: once it has ended, whatever it
     * forked and left behind (hung, or holding the pipe) is killed too. */
    setpgid(pid, pid);
    close(p[1]);
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    kill(-pid, SIGKILL);
    size_t got = tl_read_all(p[0], r, sizeof *r);
    close(p[0]);
    if (WIFSIGNALED(status)) {
        r->code = 1000 + WTERMSIG(status);
        snprintf(r->what, sizeof r->what, "%s", WTERMSIG(status) == SIGALRM
                 ? "timed out (hang?)" : "killed by a signal");
        return r->code;
    }
    int st = WIFEXITED(status) ? WEXITSTATUS(status) : 255;
    if (got != sizeof *r) {
        r->code = 2000 + st;
        snprintf(r->what, sizeof r->what, "exited with status %d before reporting", st);
    } else if ((r->code == 0) != (st == 0)) {
        r->code = 3000 + st;
        snprintf(r->what, sizeof r->what, "passed but exited with status %d (valgrind error?)", st);
    }
    return r->code;
}

/* ---- the recorder ---- */

tl_rec tl_log[TL_LOG_MAX];
int tl_nlog;

void tl_log_reset(void) { tl_nlog = 0; }

void tl_record(stl_loop *loop, stl_watcher *w, int revents)
{
    if (tl_nlog >= TL_LOG_MAX) {
        tl_fail("log full", __FILE__, __LINE__);
        return;
    }
    tl_log[tl_nlog].tag = (long)(intptr_t)w->data;
    tl_log[tl_nlog].revents = revents;
    tl_log[tl_nlog].iteration = stl_loop_iteration(loop);
    tl_nlog++;
}

const char *tl_log_string(void)
{
    static char buf[512];
    size_t n = 0;
    buf[0] = 0;
    for (int i = 0; i < tl_nlog && n + 24 < sizeof buf; i++) {
        long t = tl_log[i].tag;
        if (t >= 32 && t < 127)
            n += (size_t)snprintf(buf + n, sizeof buf - n, "%c ", (char)t);
        else
            n += (size_t)snprintf(buf + n, sizeof buf - n, "%ld ", t);
    }
    return buf;
}

int tl_log_is(const long *tags, int n)
{
    if (tl_nlog != n)
        return 0;
    for (int i = 0; i < n; i++)
        if (tl_log[i].tag != tags[i])
            return 0;
    return 1;
}

int tl_log_count(long tag)
{
    int c = 0;
    for (int i = 0; i < tl_nlog; i++)
        c += tl_log[i].tag == tag;
    return c;
}

/* ---- helpers ---- */

stl_loop *tl_loop(unsigned backend)
{
    stl_loop *loop;
    int rc = stl_loop_new(&loop, backend);
    if (rc) {
        fprintf(stderr, "stl_loop_new(%u): %d\n", backend, rc);
        _exit(99);
    }
    return loop;
}

int tl_nonblock(int fd)
{
    return fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
}

int tl_socketpair(int sv[2])
{
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
        return -errno;
    for (int i = 0; i < 2; i++) {
        tl_nonblock(sv[i]);
        fcntl(sv[i], F_SETFD, FD_CLOEXEC);
    }
    return 0;
}

int64_t tl_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

void tl_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

/* ---- the counting allocator ---- */

static long tl_calls;
static long tl_fail_at;

void tl_alloc_reset(void) { tl_calls = 0; tl_fail_at = 0; }
long tl_alloc_calls(void) { return tl_calls; }
void tl_alloc_fail_from(long n) { tl_fail_at = n > 0 ? __atomic_load_n(&tl_calls, __ATOMIC_RELAXED) + n : 0; }

void *tl_realloc(void *p, size_t n)
{
    long c = __atomic_add_fetch(&tl_calls, 1, __ATOMIC_RELAXED);
    if (tl_fail_at && c >= tl_fail_at)
        return NULL;
    return realloc(p, n);
}

void tl_free(void *p)
{
    free(p);
}
