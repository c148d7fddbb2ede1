/*
 * loop_scen_io.c -- io scenarios: readiness, several watchers per fd,
 * modify, and epoll's traps (fd reuse after close, a closed fd whose file
 * lives on elsewhere, dup'd fds, regular files, bad fds), EINTR, a failed
 * table growth, and 10,000 watched fds.
 */
#define _GNU_SOURCE 1
#include "loop_tests.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#define TAG(x, t) ((x).w.data = (void *)(intptr_t)(t))

static void drain(int fd)
{
    char buf[256];
    while (read(fd, buf, sizeof buf) > 0)
        ;
}

/* Runs NOWAIT iterations; returns how many records were added. */
static int spin(stl_loop *loop, int times)
{
    int before = tl_nlog;
    for (int k = 0; k < times; k++)
        stl_loop_run(loop, STL_RUN_NOWAIT);
    return tl_nlog - before;
}

int tl_io_basic(unsigned backend)
{
    stl_loop *loop = tl_loop(backend);
    int sv[2];
    stl_io r, w;
    TL_CHECK(tl_socketpair(sv) == 0);
    TL_CHECK(stl_io_init(&r, tl_record, sv[0], STL_READ) == 0); TAG(r, 'r');
    TL_CHECK(stl_io_init(&w, tl_record, sv[0], STL_WRITE) == 0); TAG(w, 'w');
    TL_CHECK(stl_io_start(loop, &r) == 0);
    TL_CHECK(r.w.active && stl_loop_refcount(loop) == 1);
    TL_CHECK(spin(loop, 3) == 0);
    TL_CHECK(write(sv[1], "x", 1) == 1);
    TL_CHECK(stl_loop_run(loop, STL_RUN_ONCE) == 1);
    TL_CHECK(tl_nlog == 1 && tl_log[0].tag == 'r' && tl_log[0].revents == STL_READ);
    /* level-triggered: still readable, reported again */
    TL_CHECK(spin(loop, 2) == 2);
    drain(sv[0]);
    TL_CHECK(spin(loop, 2) == 0);
    TL_CHECK(stl_io_start(loop, &w) == 0);
    tl_log_reset();
    TL_CHECK(stl_loop_run(loop, STL_RUN_ONCE) == 1);
    TL_CHECK(tl_nlog == 1 && tl_log[0].tag == 'w' && tl_log[0].revents == STL_WRITE);
    stl_io_stop(loop, &r);
    stl_io_stop(loop, &w);
    TL_CHECK(stl_loop_refcount(loop) == 0);
    TL_CHECK(stl_io_init(&r, tl_record, -1, STL_READ) == -EBADF);
    TL_CHECK(stl_io_start(loop, &r) == -EBADF);
    TL_CHECK(stl_io_init(&r, tl_record, sv[0], 0x10) == -EINVAL);
    TL_CHECK(stl_io_start(loop, &r) == -EBADF);
    TL_CHECK(stl_io_set(&r, sv[0], STL_READ) == 0);
    TL_CHECK(stl_io_start(loop, &r) == 0);
    TL_CHECK(stl_io_set(&r, sv[0], STL_WRITE) == -EBUSY);
    stl_loop_free(loop);
    close(sv[0]);
    close(sv[1]);
    return 0;
}

/* Watchers on one fd get what each asked for; stopping one leaves the others. */
int tl_io_many_per_fd(unsigned backend)
{
    stl_loop *loop = tl_loop(backend);
    int sv[2];
    stl_io a, b, c;
    TL_CHECK(tl_socketpair(sv) == 0);
    stl_io_init(&a, tl_record, sv[0], STL_READ), TAG(a, 'a');
    stl_io_init(&b, tl_record, sv[0], STL_WRITE), TAG(b, 'b');
    stl_io_init(&c, tl_record, sv[0], STL_READ | STL_WRITE), TAG(c, 'c');
    stl_io_start(loop, &a);
    stl_io_start(loop, &b);
    stl_io_start(loop, &c);
    TL_CHECK(stl_loop_run(loop, STL_RUN_ONCE) == 1);
    static const long wr[] = {'b', 'c'};
    TL_CHECK(tl_log_is(wr, 2) && tl_log[1].revents == STL_WRITE);
    TL_CHECK(write(sv[1], "x", 1) == 1);
    tl_log_reset();
    stl_loop_run(loop, STL_RUN_ONCE);
    static const long all[] = {'a', 'b', 'c'};
    TL_CHECK(tl_log_is(all, 3));
    TL_CHECK(tl_log[0].revents == STL_READ && tl_log[2].revents == (STL_READ | STL_WRITE));
    stl_io_stop(loop, &c);
    stl_io_stop(loop, &b);
    tl_log_reset();
    stl_loop_run(loop, STL_RUN_ONCE);
    static const long onlya[] = {'a'};
    TL_CHECK(tl_log_is(onlya, 1));
    stl_io_stop(loop, &a);
    stl_io_start(loop, &b);
    tl_log_reset();
    stl_loop_run(loop, STL_RUN_ONCE);
    static const long onlyb[] = {'b'};
    TL_CHECK(tl_log_is(onlyb, 1));
    stl_loop_free(loop);
    close(sv[0]);
    close(sv[1]);
    return 0;
}

/* modify changes the mask of an active watcher at the next iteration. */
int tl_io_modify_active(unsigned backend)
{
    stl_loop *loop = tl_loop(backend);
    int sv[2];
    stl_io a;
    TL_CHECK(tl_socketpair(sv) == 0);
    stl_io_init(&a, tl_record, sv[0], STL_READ), TAG(a, 'a');
    stl_io_start(loop, &a);
    TL_CHECK(spin(loop, 2) == 0);
    TL_CHECK(stl_io_modify(loop, &a, STL_WRITE) == 0);
    TL_CHECK(spin(loop, 1) == 1 && tl_log[0].revents == STL_WRITE);
    TL_CHECK(stl_io_modify(loop, &a, STL_READ) == 0);
    TL_CHECK(spin(loop, 3) == 0);
    TL_CHECK(stl_io_modify(loop, &a, 0x40) == -EINVAL);
    TL_CHECK(write(sv[1], "x", 1) == 1);
    TL_CHECK(spin(loop, 1) == 1 && tl_log[1].revents == STL_READ);
    stl_loop_free(loop);
    close(sv[0]);
    close(sv[1]);
    return 0;
}

/*
 * Closes the open fd `num` and makes the number name a fresh socket, in one
 * step (dup2), so that nothing else (the loop's own fds) can take the
 * number in between.  The peer end goes to *peer.
 */
static int fresh_socket_at(int num, int *peer)
{
    int sv[2];
    if (tl_socketpair(sv))
        return -1;
    if (dup2(sv[0], num) < 0)
        return -1;
    close(sv[0]);
    *peer = sv[1];
    return 0;
}

/* An fd closed and its number reused for a new socket: a new watcher
 * (init) on it reports the new file, never the old one. */
int tl_io_fd_reuse_after_close(unsigned backend)
{
    stl_loop *loop = tl_loop(backend);
    int p[2], peer;
    stl_io w;
    TL_CHECK(pipe(p) == 0 && tl_nonblock(p[0]) == 0);
    int num = p[0];
    stl_io_init(&w, tl_record, num, STL_READ), TAG(w, 'o');
    stl_io_start(loop, &w);
    TL_CHECK(write(p[1], "x", 1) == 1);
    TL_CHECK(spin(loop, 1) == 1);
    stl_io_stop(loop, &w);
    close(p[1]);
    TL_CHECK(fresh_socket_at(num, &peer) == 0);
    stl_io_init(&w, tl_record, num, STL_READ), TAG(w, 'n');
    stl_io_start(loop, &w);
    TL_CHECK(spin(loop, 3) == 0);
    TL_CHECK(write(peer, "y", 1) == 1);
    TL_CHECK(spin(loop, 1) == 1 && tl_log[1].tag == 'n');
    stl_loop_free(loop);
    close(num);
    close(peer);
    return 0;
}

/*
 * The trap: the closed fd's file lives on (a dup we do not watch), still
 * readable, so epoll keeps reporting the old registration.  The reused
 * number must report only the new file, and the loop must not spin.
 */
int tl_io_closed_fd_alive_elsewhere(unsigned backend)
{
    stl_loop *loop = tl_loop(backend);
    int p[2], peer;
    stl_io w;
    stl_timer t;
    TL_CHECK(pipe(p) == 0 && tl_nonblock(p[0]) == 0);
    int num = p[0];
    int keep = dup(num);
    stl_io_init(&w, tl_record, num, STL_READ), TAG(w, 'o');
    stl_io_start(loop, &w);
    TL_CHECK(write(p[1], "x", 1) == 1);
    TL_CHECK(spin(loop, 1) == 1);
    /* stop and close while readable: the registration outlives the number */
    stl_io_stop(loop, &w);
    close(num);
    stl_timer_init(&t, tl_record, 0.05, 0), TAG(t, 't');
    stl_timer_start(loop, &t);
    uint64_t i0 = stl_loop_iteration(loop);
    TL_CHECK(stl_loop_run(loop, STL_RUN_DEFAULT) == 0);
    TL_CHECK(tl_log_count('t') == 1);
    TL_CHECK(stl_loop_iteration(loop) - i0 < 10); /* no busy loop */
    close(keep);
    close(p[1]);

    /* Again, but the number is reused and watched before the loop looks:
     * the old registration (still readable) and the new one coexist, and
     * only the new file may be reported (epoll: generation mismatch). */
    TL_CHECK(pipe(p) == 0 && tl_nonblock(p[0]) == 0);
    num = p[0];
    keep = dup(num);
    stl_io_init(&w, tl_record, num, STL_READ), TAG(w, 'O');
    stl_io_start(loop, &w);
    TL_CHECK(write(p[1], "x", 1) == 1);
    TL_CHECK(spin(loop, 1) == 1 && tl_log[tl_nlog - 1].tag == 'O');
    stl_io_stop(loop, &w);
    TL_CHECK(fresh_socket_at(num, &peer) == 0);
    stl_io_init(&w, tl_record, num, STL_READ), TAG(w, 'N');
    stl_io_start(loop, &w);
    TL_CHECK(spin(loop, 4) == 0);
    stl_timer_start(loop, &t);
    i0 = stl_loop_iteration(loop);
    stl_unref(loop, &w.w);
    TL_CHECK(stl_loop_run(loop, STL_RUN_DEFAULT) == 0);
    TL_CHECK(stl_loop_iteration(loop) - i0 < 10);
    TL_CHECK(tl_log_count('N') == 0);
    TL_CHECK(write(peer, "y", 1) == 1);
    TL_CHECK(spin(loop, 1) == 1 && tl_log[tl_nlog - 1].tag == 'N');
    stl_loop_free(loop);
    close(keep);
    close(p[1]);
    close(num);
    close(peer);
    return 0;
}

/* An fd and its dup are watched independently; closing one (after
 * stopping its watcher) leaves the other working, without spinning. */
int tl_io_dup_fds(unsigned backend)
{
    stl_loop *loop = tl_loop(backend);
    int sv[2];
    stl_io a, b;
    stl_timer t;
    TL_CHECK(tl_socketpair(sv) == 0);
    int d = dup(sv[0]);
    stl_io_init(&a, tl_record, sv[0], STL_READ), TAG(a, 'a');
    stl_io_init(&b, tl_record, d, STL_READ), TAG(b, 'b');
    stl_io_start(loop, &a);
    stl_io_start(loop, &b);
    TL_CHECK(write(sv[1], "x", 1) == 1);
    TL_CHECK(spin(loop, 1) == 2);
    stl_io_stop(loop, &a);
    close(sv[0]);
    tl_log_reset();
    TL_CHECK(spin(loop, 3) == 3 && tl_log_count('b') == 3);
    drain(d);
    stl_timer_init(&t, tl_record, 0.05, 0), TAG(t, 't');
    stl_timer_start(loop, &t);
    stl_unref(loop, &b.w);
    uint64_t i0 = stl_loop_iteration(loop);
    TL_CHECK(stl_loop_run(loop, STL_RUN_DEFAULT) == 0);
    TL_CHECK(stl_loop_iteration(loop) - i0 < 10);
    TL_CHECK(write(sv[1], "y", 1) == 1);
    tl_log_reset();
    TL_CHECK(spin(loop, 1) == 1 && tl_log[0].tag == 'b');
    stl_loop_free(loop);
    close(d);
    close(sv[1]);
    return 0;
}

/* Regular files are always ready (epoll refuses them: EPERM) and never
 * make the loop block. */
int tl_io_regular_file(unsigned backend)
{
    stl_loop *loop = tl_loop(backend);
    char path[] = "/tmp/stl-loop-test-XXXXXX";
    int fd = mkstemp(path);
    TL_CHECK(fd >= 0);
    unlink(path);
    stl_io r, w;
    stl_timer t;
    stl_io_init(&r, tl_record, fd, STL_READ), TAG(r, 'r');
    stl_io_init(&w, tl_record, fd, STL_WRITE), TAG(w, 'w');
    stl_io_start(loop, &r);
    stl_io_start(loop, &w);
    stl_timer_init(&t, tl_record, 5, 0);
    stl_timer_start(loop, &t);
    int64_t t0 = tl_now_ns();
    for (int k = 0; k < 3; k++)
        TL_CHECK(stl_loop_run(loop, STL_RUN_ONCE) == 1);
    TL_CHECK(tl_now_ns() - t0 < 1000000000);
    TL_CHECK(tl_log_count('r') == 3 && tl_log_count('w') == 3);
    stl_io_stop(loop, &w);
    tl_log_reset();
    TL_CHECK(spin(loop, 2) == 2 && tl_log_count('r') == 2);
    stl_io_stop(loop, &r);
    TL_CHECK(spin(loop, 2) == 0);
    /* the number reused for a socket: watched for real again */
    int peer;
    TL_CHECK(fresh_socket_at(fd, &peer) == 0);
    stl_io_init(&r, tl_record, fd, STL_READ), TAG(r, 's');
    stl_io_start(loop, &r);
    TL_CHECK(spin(loop, 2) == 0);
    TL_CHECK(write(peer, "x", 1) == 1);
    TL_CHECK(spin(loop, 1) == 1 && tl_log[tl_nlog - 1].tag == 's');
    stl_timer_stop(loop, &t);
    stl_loop_free(loop);
    close(fd);
    close(peer);
    return 0;
}

/* A watcher on an fd that is not open: stopped, and told with STL_ERROR. */
int tl_io_bad_fd_error(unsigned backend)
{
    stl_loop *loop = tl_loop(backend);
    int sv[2];
    TL_CHECK(tl_socketpair(sv) == 0);
    int num = sv[0];
    close(sv[0]);
    close(sv[1]);
    stl_io w;
    stl_io_init(&w, tl_record, num, STL_READ), TAG(w, 'e');
    stl_io_start(loop, &w);
    TL_CHECK(stl_loop_run(loop, STL_RUN_DEFAULT) == 0);
    TL_CHECK(tl_nlog == 1 && tl_log[0].revents == (STL_ERROR | STL_READ | STL_WRITE));
    TL_CHECK(!w.w.active);
    stl_loop_free(loop);
    return 0;
}

/* The peer closes: the reader sees readable (EOF). */
int tl_io_hangup(unsigned backend)
{
    stl_loop *loop = tl_loop(backend);
    int sv[2];
    stl_io r;
    TL_CHECK(tl_socketpair(sv) == 0);
    stl_io_init(&r, tl_record, sv[0], STL_READ), TAG(r, 'r');
    stl_io_start(loop, &r);
    TL_CHECK(spin(loop, 2) == 0);
    close(sv[1]);
    TL_CHECK(stl_loop_run(loop, STL_RUN_ONCE) == 1);
    TL_CHECK(tl_nlog == 1 && (tl_log[0].revents & STL_READ));
    char c;
    TL_CHECK(read(sv[0], &c, 1) == 0);
    stl_loop_free(loop);
    close(sv[0]);
    return 0;
}

static volatile int eintr_hits;
static void eintr_handler(int s)
{
    (void)s;
    eintr_hits++;
}

static void *eintr_thread(void *arg)
{
    pthread_t main_thread = *(pthread_t *)arg;
    for (int k = 0; k < 10; k++) {
        tl_sleep_ms(5);
        pthread_kill(main_thread, SIGUSR2);
    }
    return NULL;
}

/* Signals with a plain handler interrupt the poll: not an error, and the
 * timer still fires on time. */
int tl_io_eintr(unsigned backend)
{
    stl_loop *loop = tl_loop(backend);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = eintr_handler;
    sigaction(SIGUSR2, &sa, NULL); /* no SA_RESTART */
    stl_timer t;
    stl_timer_init(&t, tl_record, 0.12, 0), TAG(t, 't');
    stl_loop_update_now(loop);
    int64_t t0 = stl_loop_now_ns(loop);
    stl_timer_start(loop, &t);
    pthread_t self = pthread_self(), th;
    TL_CHECK(pthread_create(&th, NULL, eintr_thread, &self) == 0);
    TL_CHECK(stl_loop_run(loop, STL_RUN_DEFAULT) == 0);
    TL_CHECK(tl_now_ns() - t0 >= 120000000);
    pthread_join(th, NULL);
    TL_CHECK(eintr_hits > 0);
    TL_CHECK(tl_nlog == 1);
    tl_set_value(eintr_hits);
    stl_loop_free(loop);
    return 0;
}

/* A start that must grow the fd table fails cleanly without memory, and
 * works once memory is back. */
int tl_io_enomem_table(unsigned backend)
{
    stl_loop *loop = tl_loop(backend);
    stl_io w;
    int sv[2];
    TL_CHECK(tl_socketpair(sv) == 0);
    int high = 3000;
    TL_CHECK(dup2(sv[0], high) == high);
    stl_io_init(&w, tl_record, high, STL_READ), TAG(w, 'h');
    tl_alloc_fail_from(1);
    TL_CHECK(stl_io_start(loop, &w) == -ENOMEM);
    tl_alloc_fail_from(0);
    TL_CHECK(!w.w.active && stl_loop_refcount(loop) == 0);
    TL_CHECK(stl_io_start(loop, &w) == 0);
    TL_CHECK(write(sv[1], "x", 1) == 1);
    TL_CHECK(spin(loop, 1) == 1);
    stl_loop_free(loop);
    close(high);
    close(sv[0]);
    close(sv[1]);
    return 0;
}

/* 10,000 watched fds (5,000 socket pairs, both ends watched): exactly the
 * readable ones are reported.  The value is ns per io start. */
int tl_io_ten_thousand(unsigned backend)
{
    int pairs = tl_scale(5000);
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    if (rl.rlim_cur < (rlim_t)(2 * pairs + 64)) {
        rl.rlim_cur = (rlim_t)(2 * pairs + 64);
        if (rl.rlim_max != RLIM_INFINITY && rl.rlim_cur > rl.rlim_max)
            rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
        getrlimit(RLIMIT_NOFILE, &rl);
        TL_CHECK(rl.rlim_cur >= (rlim_t)(2 * pairs + 64));
    }
    stl_loop *loop = tl_loop(backend);
    int (*sv)[2] = calloc((size_t)pairs, sizeof *sv);
    stl_io *w = calloc((size_t)pairs * 2, sizeof *w);
    TL_CHECK(sv && w);
    for (int i = 0; i < pairs; i++)
        TL_CHECK(tl_socketpair(sv[i]) == 0);
    int64_t t0 = tl_now_ns();
    for (int i = 0; i < 2 * pairs; i++) {
        stl_io_init(&w[i], tl_record, sv[i / 2][i % 2], STL_READ);
        w[i].w.data = (void *)(intptr_t)i;
        TL_CHECK(stl_io_start(loop, &w[i]) == 0);
    }
    int64_t t1 = tl_now_ns();
    TL_CHECK(stl_loop_refcount(loop) == 2 * pairs);
    TL_CHECK(spin(loop, 1) == 0);
    int expect = 0;
    for (int i = 0; i < pairs; i += 10, expect++)
        TL_CHECK(write(sv[i][1], "x", 1) == 1);
    TL_CHECK(stl_loop_run(loop, STL_RUN_ONCE) == 1);
    TL_CHECK(tl_nlog == expect);
    for (int k = 0; k < tl_nlog; k++)
        TL_CHECK(tl_log[k].tag % 20 == 0);
    for (int i = 0; i < 2 * pairs; i++)
        stl_io_stop(loop, &w[i]);
    TL_CHECK(stl_loop_refcount(loop) == 0);
    tl_set_value((long)((t1 - t0) / (2 * pairs)));
    stl_loop_free(loop);
    for (int i = 0; i < pairs; i++)
        close(sv[i][0]), close(sv[i][1]);
    free(sv);
    free(w);
    return 0;
}

/*
 * closing_fd: every active watcher on the fd is fed its own events (and
 * the count is returned); after the close and a reuse of the number, a new
 * watcher on it sees the new file only; a watcher left active on the
 * closed fd gets STL_ERROR at the next iteration instead of silence.
 */
int tl_io_closing_fd(unsigned backend)
{
    stl_loop *loop = tl_loop(backend);
    int sv[2], sv2[2];
    stl_io r, w, late;
    TL_CHECK(tl_socketpair(sv) == 0);
    TL_CHECK(stl_loop_closing_fd(loop, -1) == -EBADF);
    TL_CHECK(stl_loop_closing_fd(loop, sv[0]) == 0); /* nothing watched */
    TL_CHECK(stl_io_init(&r, tl_record, sv[0], STL_READ) == 0); TAG(r, 'r');
    TL_CHECK(stl_io_init(&w, tl_record, sv[0], STL_WRITE) == 0); TAG(w, 'w');
    TL_CHECK(stl_io_start(loop, &r) == 0 && stl_io_start(loop, &w) == 0);
    TL_CHECK(spin(loop, 1) == 1); /* registered; only writable */
    tl_log_reset();
    TL_CHECK(stl_loop_closing_fd(loop, sv[0]) == 2);
    TL_CHECK(r.w.pending && w.w.pending && r.w.active && w.w.active);
    stl_loop_invoke_pending(loop);
    TL_CHECK(tl_nlog == 2 && tl_log[0].tag == 'r' && tl_log[0].revents == STL_READ);
    TL_CHECK(tl_log[1].tag == 'w' && tl_log[1].revents == STL_WRITE);
    /* w stops (as a waiter would); r is left active across the close */
    stl_io_stop(loop, &w);
    int num = sv[0];
    close(sv[0]);
    tl_log_reset();
    TL_CHECK(stl_loop_run(loop, STL_RUN_NOWAIT) == 0);
    TL_CHECK(tl_nlog == 1 && tl_log[0].tag == 'r' && (tl_log[0].revents & STL_ERROR));
    TL_CHECK(!r.w.active);
    /* the number comes back as a new socket: only its own events are seen */
    TL_CHECK(tl_socketpair(sv2) == 0);
    if (sv2[0] != num) { /* make the reuse happen */
        TL_CHECK(dup2(sv2[0], num) == num);
        close(sv2[0]);
        sv2[0] = num;
    }
    TL_CHECK(stl_io_init(&late, tl_record, num, STL_READ) == 0); TAG(late, 'l');
    TL_CHECK(stl_io_start(loop, &late) == 0);
    tl_log_reset();
    TL_CHECK(spin(loop, 2) == 0);
    TL_CHECK(write(sv2[1], "x", 1) == 1);
    TL_CHECK(stl_loop_run(loop, STL_RUN_ONCE) == 1);
    TL_CHECK(tl_nlog == 1 && tl_log[0].tag == 'l' && tl_log[0].revents == STL_READ);
    stl_io_stop(loop, &late);
    stl_loop_free(loop);
    close(sv2[0]);
    close(sv2[1]);
    close(sv[1]);
    return 0;
}
