/*
 * loop_scen_proc.c -- scenarios across threads: signals (several watchers,
 * one owning loop, delivery to other threads), async sends (coalescing, from
 * threads without lost wake-ups, from a signal handler), loops in threads.
 * Child processes and fork are in loop_scen_fork.c.
 */
#define _GNU_SOURCE 1
#include "loop_tests.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define TAG(x, t) ((x).w.data = (void *)(intptr_t)(t))
#define LOAD(p) __atomic_load_n((p), __ATOMIC_SEQ_CST)
#define STORE(p, v) __atomic_store_n((p), (v), __ATOMIC_SEQ_CST)
#define ADD(p, v) __atomic_add_fetch((p), (v), __ATOMIC_SEQ_CST)

/* ---- signals ---- */

/* Several watchers of one signal each get it; deliveries before the loop
 * looks coalesce; the handler goes away with the last watcher. */
int tl_signal_basic(unsigned backend)
{
    stl_loop *loop = tl_loop(backend);
    stl_signal a, b;
    TL_CHECK(stl_signal_init(&a, tl_record, SIGUSR1) == 0); TAG(a, 'a');
    TL_CHECK(stl_signal_init(&b, tl_record, SIGUSR1) == 0); TAG(b, 'b');
    TL_CHECK(stl_signal_init(&b, tl_record, SIGKILL) == -EINVAL);
    TL_CHECK(stl_signal_init(&b, tl_record, 0) == -EINVAL);
    TL_CHECK(stl_signal_init(&b, tl_record, NSIG) == -EINVAL);
    TL_CHECK(stl_signal_start(loop, &b) == -EINVAL);
    TL_CHECK(!b.w.active);
    stl_signal_init(&b, tl_record, SIGUSR1), TAG(b, 'b');
    TL_CHECK(stl_signal_start(loop, &a) == 0);
    TL_CHECK(stl_signal_start(loop, &b) == 0);
    raise(SIGUSR1);
    raise(SIGUSR1);
    raise(SIGUSR1);
    TL_CHECK(stl_loop_run(loop, STL_RUN_ONCE) == 1);
    static const long ab[] = {'a', 'b'};
    TL_CHECK(tl_log_is(ab, 2) && tl_log[0].revents == STL_SIGNAL);
    stl_signal_stop(loop, &a);
    raise(SIGUSR1);
    tl_log_reset();
    stl_loop_run(loop, STL_RUN_ONCE);
    static const long bonly[] = {'b'};
    TL_CHECK(tl_log_is(bonly, 1));
    stl_signal_stop(loop, &b);
    struct sigaction now;
    sigaction(SIGUSR1, NULL, &now);
    TL_CHECK(now.sa_handler == SIG_DFL);
    stl_loop_free(loop);
    return 0;
}

/* A signal belongs to one loop at a time. */
int tl_signal_one_owner(unsigned backend)
{
    stl_loop *one = tl_loop(backend), *two = tl_loop(backend);
    stl_signal a, b;
    stl_child c;
    stl_signal_init(&a, tl_record, SIGUSR2);
    stl_signal_init(&b, tl_record, SIGUSR2), TAG(b, 'b');
    TL_CHECK(stl_signal_start(one, &a) == 0);
    TL_CHECK(stl_signal_start(two, &b) == -EBUSY);
    TL_CHECK(!b.w.active && stl_loop_refcount(two) == 0);
    stl_signal_stop(one, &a);
    TL_CHECK(stl_signal_start(two, &b) == 0);
    raise(SIGUSR2);
    stl_loop_run(two, STL_RUN_ONCE);
    TL_CHECK(tl_nlog == 1 && tl_log[0].tag == 'b');
    /* SIGCHLD, through a child watcher, is owned the same way */
    stl_child_init(&c, tl_record, getpid(), 0);
    TL_CHECK(stl_child_start(one, &c) == 0);
    stl_signal_init(&a, tl_record, SIGCHLD);
    TL_CHECK(stl_signal_start(two, &a) == -EBUSY);
    stl_child_stop(one, &c);
    TL_CHECK(stl_signal_start(two, &a) == 0);
    stl_loop_free(one);
    stl_loop_free(two);
    return 0;
}

static int sig_acked;
static void sig_ack(stl_loop *loop, stl_watcher *w, int revents)
{
    (void)loop, (void)w, (void)revents;
    ADD(&sig_acked, 1);
}

static int sig_rounds, sig_stop;
static stl_loop *sig_loop;
static stl_async sig_done;

/* Sends SIGUSR1 to the process, waiting for each to be acknowledged. */
static void *sig_sender(void *arg)
{
    (void)arg;
    for (int k = 1; k <= sig_rounds; k++) {
        kill(getpid(), SIGUSR1);
        int64_t t0 = tl_now_ns();
        while (LOAD(&sig_acked) < k && tl_now_ns() - t0 < 5000000000LL)
            sched_yield();
    }
    stl_async_send(sig_loop, &sig_done);
    return NULL;
}

static void sig_done_cb(stl_loop *loop, stl_watcher *w, int revents)
{
    (void)revents;
    stl_async_stop(loop, (stl_async *)w);
    STORE(&sig_stop, 1);
}

/* The loop's thread blocks SIGUSR1, so the handler runs in other threads;
 * each delivery still reaches the loop (ping-pong: none may be lost). */
int tl_signal_from_threads(unsigned backend)
{
    stl_loop *loop = sig_loop = tl_loop(backend);
    stl_signal s;
    pthread_t th;
    sigset_t set;
    sig_rounds = tl_scale(300);
    stl_signal_init(&s, sig_ack, SIGUSR1);
    stl_async_init(&sig_done, sig_done_cb);
    TL_CHECK(stl_signal_start(loop, &s) == 0);
    stl_unref(loop, &s.w);
    stl_async_start(loop, &sig_done);
    TL_CHECK(pthread_create(&th, NULL, sig_sender, NULL) == 0);
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    TL_CHECK(stl_loop_run(loop, STL_RUN_DEFAULT) == 0);
    pthread_join(th, NULL);
    pthread_sigmask(SIG_UNBLOCK, &set, NULL);
    TL_CHECK(LOAD(&sig_acked) == sig_rounds);
    stl_loop_free(loop);
    return 0;
}

static void *sig_loop_thread(void *arg)
{
    (void)arg;
    stl_loop_run(sig_loop, STL_RUN_DEFAULT);
    return NULL;
}

/* The loop runs in another thread; the main thread sends the signals. */
int tl_signal_loop_in_thread(unsigned backend)
{
    stl_signal s;
    pthread_t th;
    sig_loop = tl_loop(backend);
    sig_rounds = tl_scale(300);
    stl_signal_init(&s, sig_ack, SIGUSR1);
    stl_async_init(&sig_done, sig_done_cb);
    TL_CHECK(stl_signal_start(sig_loop, &s) == 0);
    stl_unref(sig_loop, &s.w);
    stl_async_start(sig_loop, &sig_done);
    TL_CHECK(pthread_create(&th, NULL, sig_loop_thread, NULL) == 0);
    sig_sender(NULL);
    pthread_join(th, NULL);
    TL_CHECK(LOAD(&sig_acked) == sig_rounds && LOAD(&sig_stop) == 1);
    stl_loop_free(sig_loop);
    return 0;
}

/* ---- async ---- */

/* Many sends before the loop looks give one callback; a send to a stopped
 * watcher is forgotten when it starts. */
int tl_async_coalesce(unsigned backend)
{
    stl_loop *loop = tl_loop(backend);
    stl_async a, b;
    stl_async_init(&a, tl_record), TAG(a, 'a');
    stl_async_init(&b, tl_record), TAG(b, 'b');
    stl_async_start(loop, &a);
    for (int k = 0; k < 100; k++)
        stl_async_send(loop, &a);
    TL_CHECK(stl_async_pending(&a));
    stl_async_send(loop, &b);
    TL_CHECK(stl_loop_run(loop, STL_RUN_ONCE) == 1);
    TL_CHECK(tl_nlog == 1 && tl_log[0].tag == 'a' && tl_log[0].revents == STL_ASYNC);
    TL_CHECK(!stl_async_pending(&a));
    stl_async_start(loop, &b);
    TL_CHECK(!stl_async_pending(&b));
    TL_CHECK(stl_loop_run(loop, STL_RUN_NOWAIT) == 1);
    TL_CHECK(tl_nlog == 1);
    stl_async_send(loop, &b);
    stl_async_send(loop, &a);
    stl_loop_run(loop, STL_RUN_ONCE);
    TL_CHECK(tl_nlog == 3 && tl_log_count('b') == 1 && tl_log_count('a') == 2);
    stl_loop_free(loop);
    return 0;
}

enum { AT_THREADS = 4 };
static stl_async at_w[AT_THREADS];
static int at_seq[AT_THREADS], at_ack[AT_THREADS], at_done, at_calls, at_rounds;
static stl_loop *at_loop;

static void at_cb(stl_loop *loop, stl_watcher *w, int revents)
{
    int i = (int)(intptr_t)w->data;
    (void)revents;
    at_calls++;
    STORE(&at_ack[i], LOAD(&at_seq[i]));
    if (LOAD(&at_done) == AT_THREADS)
        for (int k = 0; k < AT_THREADS; k++)
            stl_async_stop(loop, &at_w[k]);
}

/* Each round: publish a number, send, wait for the loop to see it. */
static void *at_thread(void *arg)
{
    int i = (int)(intptr_t)arg;
    for (int k = 1; k <= at_rounds; k++) {
        STORE(&at_seq[i], k);
        stl_async_send(at_loop, &at_w[i]);
        int64_t t0 = tl_now_ns();
        while (LOAD(&at_ack[i]) < k) {
            if (tl_now_ns() - t0 > 5000000000LL)
                return (void *)1; /* a lost wake-up */
            sched_yield();
        }
    }
    ADD(&at_done, 1);
    stl_async_send(at_loop, &at_w[i]);
    return NULL;
}

/* Four threads ping-pong with the loop through async watchers: every send
 * is delivered (a lost wake-up would stall a thread for 5 s). */
int tl_async_threads_no_lost_wakeup(unsigned backend)
{
    pthread_t th[AT_THREADS];
    at_loop = tl_loop(backend);
    at_rounds = tl_scale(3000);
    for (int i = 0; i < AT_THREADS; i++) {
        stl_async_init(&at_w[i], at_cb);
        at_w[i].w.data = (void *)(intptr_t)i;
        stl_async_start(at_loop, &at_w[i]);
    }
    for (int i = 0; i < AT_THREADS; i++)
        TL_CHECK(pthread_create(&th[i], NULL, at_thread, (void *)(intptr_t)i) == 0);
    TL_CHECK(stl_loop_run(at_loop, STL_RUN_DEFAULT) == 0);
    for (int i = 0; i < AT_THREADS; i++) {
        void *ret;
        pthread_join(th[i], &ret);
        TL_CHECK(ret == NULL);
    }
    TL_CHECK(at_calls <= AT_THREADS * (at_rounds + 1));
    tl_set_value(at_calls);
    stl_loop_free(at_loop);
    return 0;
}

static stl_loop *ash_loop;
static stl_async ash_w;
static void ash_handler(int s)
{
    (void)s;
    stl_async_send(ash_loop, &ash_w);
}

static void *ash_thread(void *arg)
{
    (void)arg;
    tl_sleep_ms(20);
    kill(getpid(), SIGUSR2);
    return NULL;
}

static void ash_cb(stl_loop *loop, stl_watcher *w, int revents)
{
    tl_record(loop, w, revents);
    if (tl_nlog == 2)
        stl_async_stop(loop, (stl_async *)w);
}

/* stl_async_send from a plain signal handler, before and during the poll. */
int tl_async_from_signal_handler(unsigned backend)
{
    struct sigaction sa;
    pthread_t th;
    ash_loop = tl_loop(backend);
    stl_async_init(&ash_w, ash_cb);
    stl_async_start(ash_loop, &ash_w);
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = ash_handler;
    sa.sa_flags = SA_RESTART;
    sigaction(SIGUSR2, &sa, NULL);
    raise(SIGUSR2);
    TL_CHECK(stl_loop_run(ash_loop, STL_RUN_ONCE) == 1);
    TL_CHECK(tl_nlog == 1);
    TL_CHECK(pthread_create(&th, NULL, ash_thread, NULL) == 0);
    TL_CHECK(stl_loop_run(ash_loop, STL_RUN_DEFAULT) == 0);
    pthread_join(th, NULL);
    TL_CHECK(tl_nlog == 2);
    signal(SIGUSR2, SIG_DFL);
    stl_loop_free(ash_loop);
    return 0;
}

/* ---- loops in threads ---- */

typedef struct lt_ctx {
    unsigned backend;
    int ticks, pongs, failed;
    int sv[2];
    stl_io r;
    stl_timer t;
} lt_ctx;

static void lt_tick(stl_loop *loop, stl_watcher *w, int revents)
{
    lt_ctx *c = w->data;
    (void)revents;
    if (++c->ticks == 20)
        stl_timer_stop(loop, (stl_timer *)w);
}

static void lt_read(stl_loop *loop, stl_watcher *w, int revents)
{
    lt_ctx *c = w->data;
    char buf[8];
    (void)revents;
    if (read(c->sv[0], buf, sizeof buf) != 1)
        c->failed = 1;
    if (++c->pongs == 200)
        stl_io_stop(loop, (stl_io *)w);
    else if (write(c->sv[1], "x", 1) != 1)
        c->failed = 1;
}

/* One loop per thread: timers and a socket ping-pong in each, at once. */
static void *lt_thread(void *arg)
{
    lt_ctx *c = arg;
    stl_loop *loop;
    if (stl_loop_new(&loop, c->backend) || tl_socketpair(c->sv)) {
        c->failed = 1;
        return NULL;
    }
    stl_timer_init(&c->t, lt_tick, 0.001, 0.001);
    c->t.w.data = c;
    stl_io_init(&c->r, lt_read, c->sv[0], STL_READ);
    c->r.w.data = c;
    stl_timer_start(loop, &c->t);
    stl_io_start(loop, &c->r);
    if (write(c->sv[1], "x", 1) != 1)
        c->failed = 1;
    if (stl_loop_run(loop, STL_RUN_DEFAULT) != 0)
        c->failed = 1;
    stl_loop_free(loop);
    close(c->sv[0]);
    close(c->sv[1]);
    return NULL;
}

int tl_loops_in_threads(unsigned backend)
{
    enum { N = 4 };
    lt_ctx ctx[N];
    pthread_t th[N];
    memset(ctx, 0, sizeof ctx);
    for (int i = 0; i < N; i++) {
        ctx[i].backend = backend;
        TL_CHECK(pthread_create(&th[i], NULL, lt_thread, &ctx[i]) == 0);
    }
    for (int i = 0; i < N; i++) {
        pthread_join(th[i], NULL);
        TL_CHECK(!ctx[i].failed && ctx[i].ticks == 20 && ctx[i].pongs == 200);
    }
    return 0;
}

