/*
 * loop_scen_core.c -- scenarios for the loop itself: creation, the order
 * of the phases, priorities, idle's lock-out, references and exit, break,
 * nested runs, fed events, callbacks that free watchers, destruction.
 */
#define _GNU_SOURCE 1
#include "loop_tests.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define TAG(x, t) ((x).w.data = (void *)(intptr_t)(t))

int tl_new_and_free(unsigned backend)
{
    stl_loop *loop;
    TL_CHECK(stl_loop_supported_backends() & backend);
    TL_CHECK(stl_loop_new(&loop, backend) == 0);
    TL_CHECK(stl_loop_backend(loop) == backend);
    TL_CHECK(strcmp(stl_loop_backend_name(loop), backend == STL_BACKEND_EPOLL ? "epoll"
                    : backend == STL_BACKEND_POLL ? "poll" : "kqueue") == 0);
    TL_CHECK(stl_loop_refcount(loop) == 0);
    TL_CHECK(stl_loop_depth(loop) == 0);
    /* Nothing referenced: run returns at once, having iterated once. */
    TL_CHECK(stl_loop_run(loop, STL_RUN_DEFAULT) == 0);
    TL_CHECK(stl_loop_iteration(loop) == 1);
    TL_CHECK(stl_loop_run(loop, 7) == -EINVAL);
    int x;
    stl_loop_set_data(loop, &x);
    TL_CHECK(stl_loop_get_data(loop) == &x);
    TL_CHECK(stl_loop_free(loop) == 0);
    TL_CHECK(stl_loop_free(NULL) == 0);

    TL_CHECK(stl_loop_new(&loop, STL_BACKEND_EPOLL | STL_BACKEND_POLL) == -EINVAL);
    TL_CHECK(loop == NULL);
    TL_CHECK(stl_loop_new(&loop, 0x80) == -EINVAL);
    TL_CHECK(stl_loop_new(&loop, 0x10000) == -EINVAL);
    unsigned all = stl_loop_supported_backends();
    for (unsigned b = STL_BACKEND_EPOLL; b <= STL_BACKEND_KQUEUE; b <<= 1) {
        if (all & b) {
            TL_CHECK(stl_loop_new(&loop, b) == 0);
            stl_loop_free(loop);
        } else {
            TL_CHECK(stl_loop_new(&loop, b) == -ENOSYS);
        }
    }
    TL_CHECK(stl_loop_new(&loop, 0) == 0);
#ifdef __linux__
    TL_CHECK(stl_loop_backend(loop) == STL_BACKEND_EPOLL);
#endif
    stl_loop_free(loop);

    /* Creation fails cleanly when memory does. */
    for (long n = 1; n <= 4; n++) {
        tl_alloc_fail_from(n);
        int rc = stl_loop_new(&loop, backend);
        tl_alloc_fail_from(0);
        TL_CHECK(rc == 0 || rc == -ENOMEM);
        if (rc == 0)
            stl_loop_free(loop);
        else
            TL_CHECK(loop == NULL);
    }
    return 0;
}

/*
 * The order of one iteration: prepare before the poll; then io (found by
 * the poll), timers, and check, first come first served; idle is locked
 * out while io and timer events of its priority are pending.
 */
int tl_phase_order(unsigned backend)
{
    stl_loop *loop = tl_loop(backend);
    int sv[2];
    stl_prepare p;
    stl_check c;
    stl_idle i;
    stl_timer t;
    stl_io w;
    stl_fork f;
    TL_CHECK(tl_socketpair(sv) == 0);
    stl_prepare_init(&p, tl_record), TAG(p, 'P');
    stl_check_init(&c, tl_record), TAG(c, 'C');
    stl_idle_init(&i, tl_record), TAG(i, 'I');
    stl_fork_init(&f, tl_record), TAG(f, 'F');
    TL_CHECK(stl_timer_init(&t, tl_record, 0, 0) == 0); TAG(t, 'T');
    TL_CHECK(stl_io_init(&w, tl_record, sv[0], STL_WRITE) == 0); TAG(w, 'W');
    stl_prepare_start(loop, &p);
    stl_check_start(loop, &c);
    stl_idle_start(loop, &i);
    stl_fork_start(loop, &f);
    stl_timer_start(loop, &t);
    TL_CHECK(stl_io_start(loop, &w) == 0);

    TL_CHECK(stl_loop_run(loop, STL_RUN_ONCE) == 1);
    static const long first[] = {'P', 'W', 'T', 'C'};
    TL_CHECK(tl_log_is(first, 4));
    TL_CHECK(tl_log[0].iteration == 0 && tl_log[1].iteration == 1 && tl_log[3].iteration == 1);
    TL_CHECK(tl_log[1].revents == STL_WRITE && tl_log[2].revents == STL_TIMER);
    TL_CHECK(tl_log[0].revents == STL_PREPARE && tl_log[3].revents == STL_CHECK);
    TL_CHECK(!t.w.active);

    stl_io_stop(loop, &w);
    tl_log_reset();
    TL_CHECK(stl_loop_run(loop, STL_RUN_ONCE) == 1);
    static const long second[] = {'P', 'I', 'C'};
    TL_CHECK(tl_log_is(second, 3));
    TL_CHECK(tl_log[1].revents == STL_IDLE);
    stl_loop_free(loop);
    close(sv[0]);
    close(sv[1]);
    return 0;
}

/* Higher priorities first; within one priority, the order events came in. */
int tl_priorities_fifo(unsigned backend)
{
    static const int pri[10] = {0, -2, 2, 1, 0, -1, 2, -2, 1, 0};
    static const long want[10] = {2, 6, 3, 8, 0, 4, 9, 5, 1, 7};
    stl_loop *loop = tl_loop(backend);
    stl_prepare w[10];
    for (int k = 0; k < 10; k++) {
        stl_prepare_init(&w[k], tl_record);
        TAG(w[k], k);
        TL_CHECK(stl_set_priority(&w[k].w, pri[k]) == 0);
    }
    TL_CHECK(stl_set_priority(&w[0].w, 3) == -EINVAL);
    TL_CHECK(stl_set_priority(&w[0].w, -3) == -EINVAL);
    for (int k = 0; k < 10; k++)
        stl_feed_event(loop, &w[k].w, STL_CUSTOM);
    TL_CHECK(stl_loop_pending_count(loop) == 10);
    TL_CHECK(stl_set_priority(&w[0].w, 1) == -EBUSY);
    stl_loop_invoke_pending(loop);
    TL_CHECK(tl_log_is(want, 10));
    TL_CHECK(stl_loop_pending_count(loop) == 0);
    stl_prepare_start(loop, &w[0]);
    TL_CHECK(stl_set_priority(&w[0].w, 1) == -EBUSY);
    stl_prepare_stop(loop, &w[0]);
    TL_CHECK(stl_set_priority(&w[0].w, 1) == 0);
    stl_loop_free(loop);
    return 0;
}

/* Idle runs only for the highest priority that has idlers, and only when
 * nothing of that priority or higher is pending. */
int tl_idle_lockout(unsigned backend)
{
    stl_loop *loop = tl_loop(backend);
    stl_idle lo, hi;
    stl_timer t;
    stl_idle_init(&lo, tl_record), TAG(lo, 'i');
    stl_idle_init(&hi, tl_record), TAG(hi, 'I');
    stl_timer_init(&t, tl_record, 0, 0), TAG(t, 'T');
    stl_set_priority(&hi.w, 1);
    stl_idle_start(loop, &lo);
    stl_idle_start(loop, &hi);
    stl_timer_start(loop, &t);
    stl_loop_run(loop, STL_RUN_ONCE);
    static const long a[] = {'I', 'T'};
    TL_CHECK(tl_log_is(a, 2));

    stl_idle_stop(loop, &hi);
    tl_log_reset();
    stl_loop_run(loop, STL_RUN_ONCE);
    static const long b[] = {'i'};
    TL_CHECK(tl_log_is(b, 1));

    /* A pending event below the idler's priority does not lock it out. */
    stl_set_priority(&t.w, -1);
    stl_timer_start(loop, &t);
    tl_log_reset();
    stl_loop_run(loop, STL_RUN_ONCE);
    static const long c[] = {'i', 'T'};
    TL_CHECK(tl_log_is(c, 2));

    /* Same priority: locked out. */
    stl_set_priority(&t.w, 0);
    stl_timer_start(loop, &t);
    tl_log_reset();
    stl_loop_run(loop, STL_RUN_ONCE);
    static const long d[] = {'T'};
    TL_CHECK(tl_log_is(d, 1));
    stl_loop_free(loop);
    return 0;
}

static int idle_calls;
static int idle_timer_seen;
static void idle_five(stl_loop *loop, stl_watcher *w, int revents)
{
    (void)revents;
    if (++idle_calls == 5) {
        idle_timer_seen = tl_log_count('T');
        stl_idle_stop(loop, (stl_idle *)w);
    }
}

/* While an idle watcher is active the loop does not block; once it stops,
 * the loop waits for the timer; with only an idle watcher, stopping it ends run. */
int tl_idle_keeps_loop_awake(unsigned backend)
{
    stl_loop *loop = tl_loop(backend);
    stl_idle i;
    stl_timer t;
    stl_idle_init(&i, idle_five);
    stl_timer_init(&t, tl_record, 0.2, 0), TAG(t, 'T');
    stl_idle_start(loop, &i);
    stl_timer_start(loop, &t);
    TL_CHECK(stl_loop_run(loop, STL_RUN_DEFAULT) == 0);
    TL_CHECK(idle_calls == 5);
    TL_CHECK(idle_timer_seen == 0); /* five idle rounds before the 200 ms timer */
    TL_CHECK(tl_log_count('T') == 1);

    idle_calls = 0;
    stl_idle_start(loop, &i);
    TL_CHECK(stl_loop_run(loop, STL_RUN_DEFAULT) == 0);
    TL_CHECK(idle_calls == 5);
    stl_loop_free(loop);
    return 0;
}

/* Only referenced active watchers keep run going. */
int tl_ref_unref_exit(unsigned backend)
{
    stl_loop *loop = tl_loop(backend);
    stl_timer longt, shortt, tick;
    stl_timer_init(&longt, tl_record, 10, 0), TAG(longt, 'L');
    stl_timer_init(&shortt, tl_record, 0.03, 0), TAG(shortt, 'S');
    stl_timer_init(&tick, tl_record, 0.001, 0.001), TAG(tick, 't');

    stl_unref(loop, &longt.w);
    stl_unref(loop, &longt.w);
    TL_CHECK(!stl_is_ref(&longt.w));
    stl_timer_start(loop, &longt);
    TL_CHECK(stl_loop_refcount(loop) == 0);
    int64_t t0 = tl_now_ns();
    TL_CHECK(stl_loop_run(loop, STL_RUN_DEFAULT) == 0);
    TL_CHECK(tl_now_ns() - t0 < 1000000000);
    TL_CHECK(longt.w.active);

    /* A referenced short timer keeps the loop for itself only; an
     * unreferenced repeating one fires meanwhile. */
    stl_unref(loop, &tick.w);
    stl_timer_start(loop, &tick);
    stl_timer_start(loop, &shortt);
    TL_CHECK(stl_loop_refcount(loop) == 1);
    TL_CHECK(stl_loop_run(loop, STL_RUN_DEFAULT) == 0);
    TL_CHECK(tl_log_count('S') == 1);
    TL_CHECK(tl_log_count('t') >= 1); /* due no later than S, so fed first */
    TL_CHECK(tl_log_count('L') == 0);

    /* ref on an active unreferenced watcher counts it again; stop uncounts. */
    stl_ref(loop, &longt.w);
    TL_CHECK(stl_loop_refcount(loop) == 1);
    stl_timer_stop(loop, &longt);
    TL_CHECK(stl_loop_refcount(loop) == 0);
    stl_timer_stop(loop, &longt);
    TL_CHECK(stl_loop_refcount(loop) == 0);
    stl_unref(loop, &longt.w);
    stl_timer_start(loop, &longt);
    TL_CHECK(stl_loop_refcount(loop) == 0);
    stl_ref(loop, &longt.w);
    TL_CHECK(stl_loop_refcount(loop) == 1);
    stl_loop_free(loop);
    return 0;
}

static int brk_calls;
static int brk_depth_seen[4];
static void brk_one_at_three(stl_loop *loop, stl_watcher *w, int revents)
{
    (void)w, (void)revents;
    if (++brk_calls % 3 == 0)
        stl_loop_break(loop, STL_BREAK_ONE);
}

static stl_timer brk_inner;
static void brk_all(stl_loop *loop, stl_watcher *w, int revents)
{
    (void)w, (void)revents;
    brk_depth_seen[1] = stl_loop_depth(loop);
    stl_loop_break(loop, STL_BREAK_ALL);
}

static void brk_nest(stl_loop *loop, stl_watcher *w, int revents)
{
    (void)w, (void)revents;
    brk_depth_seen[0] = stl_loop_depth(loop);
    TL_EXPECT(stl_loop_free(loop) == -EBUSY);
    stl_timer_start(loop, &brk_inner);
    int rc = stl_loop_run(loop, STL_RUN_DEFAULT);
    brk_depth_seen[2] = stl_loop_depth(loop);
    TL_EXPECT(rc == 1);
}

/* BREAK_ONE ends the innermost run; BREAK_ALL every nested one; a break
 * before run is forgotten. */
int tl_break_modes(unsigned backend)
{
    stl_loop *loop = tl_loop(backend);
    stl_timer rep, outer, keep;
    stl_timer_init(&rep, brk_one_at_three, 0.001, 0.001);
    stl_timer_start(loop, &rep);
    TL_CHECK(stl_loop_run(loop, STL_RUN_DEFAULT) == 1);
    TL_CHECK(brk_calls == 3);
    TL_CHECK(rep.w.active);

    stl_loop_break(loop, STL_BREAK_ALL);
    TL_CHECK(stl_loop_run(loop, STL_RUN_DEFAULT) == 1);
    TL_CHECK(brk_calls == 6);
    stl_timer_stop(loop, &rep);

    stl_timer_init(&keep, tl_record, 60, 0);
    stl_timer_start(loop, &keep);
    stl_timer_init(&outer, brk_nest, 0.001, 0);
    stl_timer_init(&brk_inner, brk_all, 0.001, 0);
    stl_timer_start(loop, &outer);
    TL_CHECK(stl_loop_run(loop, STL_RUN_DEFAULT) == 1);
    TL_CHECK(brk_depth_seen[0] == 1 && brk_depth_seen[1] == 2 && brk_depth_seen[2] == 1);
    TL_CHECK(stl_loop_depth(loop) == 0);
    TL_CHECK(keep.w.active);
    stl_loop_free(loop);
    return tl_failed();
}

static int nest_log[8], nest_n;
static stl_timer nest_b;
static void nest_a(stl_loop *loop, stl_watcher *w, int revents)
{
    (void)w, (void)revents;
    nest_log[nest_n++] = 10 + stl_loop_depth(loop);
    stl_timer_start(loop, &nest_b);
    TL_EXPECT(stl_loop_run(loop, STL_RUN_ONCE) == 0);
    nest_log[nest_n++] = 30 + stl_loop_depth(loop);
}

static void nest_b_cb(stl_loop *loop, stl_watcher *w, int revents)
{
    (void)w, (void)revents;
    nest_log[nest_n++] = 20 + stl_loop_depth(loop);
}

/* A callback may run the loop again: depth counts the nesting. */
int tl_nested_run_depth(unsigned backend)
{
    stl_loop *loop = tl_loop(backend);
    stl_timer a;
    stl_timer_init(&a, nest_a, 0, 0);
    stl_timer_init(&nest_b, nest_b_cb, 0, 0);
    stl_timer_start(loop, &a);
    TL_CHECK(stl_loop_run(loop, STL_RUN_DEFAULT) == 0);
    TL_CHECK(nest_n == 3 && nest_log[0] == 11 && nest_log[1] == 22 && nest_log[2] == 31);
    TL_CHECK(stl_loop_depth(loop) == 0);
    TL_CHECK(stl_loop_free(loop) == 0);
    return tl_failed();
}

/* Fed events: OR together while pending, can be cleared, die with stop. */
int tl_feed_and_clear(unsigned backend)
{
    stl_loop *loop = tl_loop(backend);
    stl_io w;
    stl_timer t;
    TL_CHECK(stl_io_init(&w, tl_record, 0, STL_READ) == 0); TAG(w, 'w');
    stl_timer_init(&t, tl_record, 60, 0), TAG(t, 't');

    stl_feed_event(loop, &w.w, STL_READ);
    stl_feed_event(loop, &w.w, STL_CUSTOM);
    TL_CHECK(w.w.pending && !w.w.active);
    TL_CHECK(stl_loop_pending_count(loop) == 1);
    stl_loop_invoke_pending(loop);
    TL_CHECK(tl_nlog == 1 && tl_log[0].revents == (STL_READ | STL_CUSTOM));
    TL_CHECK(!w.w.pending);

    stl_feed_event(loop, &w.w, STL_WRITE);
    TL_CHECK(stl_clear_pending(loop, &w.w) == STL_WRITE);
    TL_CHECK(stl_clear_pending(loop, &w.w) == 0);
    stl_loop_invoke_pending(loop);
    TL_CHECK(tl_nlog == 1);

    stl_timer_start(loop, &t);
    stl_feed_event(loop, &t.w, STL_TIMER);
    stl_timer_stop(loop, &t);
    TL_CHECK(!t.w.pending && !t.w.active);
    stl_loop_invoke_pending(loop);
    TL_CHECK(tl_nlog == 1);

    /* Already pending before run: delivered first, even with nothing active. */
    stl_feed_event(loop, &t.w, STL_CUSTOM);
    TL_CHECK(stl_loop_run(loop, STL_RUN_NOWAIT) == 0);
    TL_CHECK(tl_nlog == 2 && tl_log[1].tag == 't' && tl_log[1].iteration == 0);
    stl_loop_free(loop);
    return 0;
}

static stl_timer *cf_victim;
static int cf_calls;
static void cf_free_self(stl_loop *loop, stl_watcher *w, int revents)
{
    (void)revents;
    cf_calls++;
    if (cf_victim) {
        stl_timer_stop(loop, cf_victim);
        memset(cf_victim, 0xAA, sizeof *cf_victim);
        free(cf_victim);
        cf_victim = NULL;
    }
    stl_timer_stop(loop, (stl_timer *)w);
    memset(w, 0xAA, sizeof(stl_timer));
    free(w);
}

/* A callback that stops and frees its own watcher, and another pending one:
 * the loop never touches either again (valgrind checks). */
int tl_callback_frees_itself(unsigned backend)
{
    stl_loop *loop = tl_loop(backend);
    for (int round = 0; round < 50; round++) {
        stl_timer *a = malloc(sizeof *a), *b = malloc(sizeof *b);
        stl_timer_init(a, cf_free_self, 0, 0.001);
        stl_timer_init(b, cf_free_self, 0, 0.001);
        stl_timer_start(loop, a);
        stl_timer_start(loop, b);
        cf_victim = b;  /* a fires first (FIFO) and frees b, pending or not */
        cf_calls = 0;
        TL_CHECK(stl_loop_run(loop, STL_RUN_DEFAULT) == 0);
        TL_CHECK(cf_calls == 1);
    }
    stl_loop_free(loop);
    return 0;
}

/*
 * A loop freed with watchers of every kind active (and some pending) leaves
 * them inactive and not pending; stopping them afterwards touches no loop
 * (NULL is passed); the signal's old disposition is back.
 */
int tl_destroy_with_active_watchers(unsigned backend)
{
    stl_loop *loop = tl_loop(backend);
    int sv[2], gate[2];
    TL_CHECK(tl_socketpair(sv) == 0 && pipe(gate) == 0);
    pid_t pid = fork();
    TL_CHECK(pid >= 0);
    if (pid == 0) {
        char c;
        close(gate[1]);
        while (read(gate[0], &c, 1) < 0 && errno == EINTR)
            ;
        _exit(0);
    }
    close(gate[0]);
    stl_io io;
    stl_timer t;
    stl_signal s;
    stl_child ch;
    stl_idle i;
    stl_prepare p;
    stl_check c;
    stl_fork f;
    stl_async a;
    stl_io_init(&io, tl_record, sv[0], STL_READ | STL_WRITE);
    stl_timer_init(&t, tl_record, 60, 0);
    TL_CHECK(stl_signal_init(&s, tl_record, SIGUSR1) == 0);
    TL_CHECK(stl_child_init(&ch, tl_record, pid, 0) == 0);
    stl_idle_init(&i, tl_record);
    stl_prepare_init(&p, tl_record);
    stl_check_init(&c, tl_record);
    stl_fork_init(&f, tl_record);
    stl_async_init(&a, tl_record);
    stl_watcher *all[] = {&io.w, &t.w, &s.w, &ch.w, &i.w, &p.w, &c.w, &f.w, &a.w};
    TL_CHECK(stl_io_start(loop, &io) == 0);
    stl_timer_start(loop, &t);
    TL_CHECK(stl_signal_start(loop, &s) == 0);
    TL_CHECK(stl_child_start(loop, &ch) == 0);
    stl_idle_start(loop, &i);
    stl_prepare_start(loop, &p);
    stl_check_start(loop, &c);
    stl_fork_start(loop, &f);
    stl_async_start(loop, &a);
    stl_loop_run(loop, STL_RUN_NOWAIT);
    stl_async_send(loop, &a);
    stl_feed_event(loop, &t.w, STL_TIMER);
    stl_feed_event(loop, &s.w, STL_SIGNAL);
    TL_CHECK(stl_loop_refcount(loop) == 9);
    TL_CHECK(stl_loop_free(loop) == 0);
    for (int k = 0; k < 9; k++)
        TL_CHECK(!all[k]->active && !all[k]->pending);
    stl_io_stop(NULL, &io);
    stl_timer_stop(NULL, &t);
    stl_signal_stop(NULL, &s);
    stl_child_stop(NULL, &ch);
    stl_idle_stop(NULL, &i);
    stl_prepare_stop(NULL, &p);
    stl_check_stop(NULL, &c);
    stl_fork_stop(NULL, &f);
    stl_async_stop(NULL, &a);
    struct sigaction now;
    sigaction(SIGUSR1, NULL, &now);
    TL_CHECK(now.sa_handler == SIG_DFL);
    sigaction(SIGCHLD, NULL, &now);
    TL_CHECK(now.sa_handler == SIG_DFL);

    /* A new loop can take the signal again. */
    loop = tl_loop(backend);
    TL_CHECK(stl_signal_start(loop, &s) == 0);
    stl_loop_free(loop);

    close(gate[1]);
    int status;
    TL_CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status));
    close(sv[0]);
    close(sv[1]);
    return 0;
}

static int pc_prepares, pc_checks;
static stl_timer pc_zero;
static void pc_prepare(stl_loop *loop, stl_watcher *w, int revents)
{
    (void)w, (void)revents;
    pc_prepares++;
    if (pc_prepares == 3)
        stl_timer_start(loop, &pc_zero); /* must not let the poll block */
}

static void pc_check(stl_loop *loop, stl_watcher *w, int revents)
{
    (void)loop, (void)w, (void)revents;
    pc_checks++;
}

static void pc_break(stl_loop *loop, stl_watcher *w, int revents)
{
    (void)w, (void)revents;
    stl_loop_break(loop, STL_BREAK_ONE);
}

/* Every poll is surrounded by one prepare and one check; a timer started in
 * a prepare callback counts for that iteration's timeout; a break from a
 * prepare callback ends the run before the poll. */
int tl_prepare_check_pairs(unsigned backend)
{
    stl_loop *loop = tl_loop(backend);
    stl_prepare p, pb;
    stl_check c;
    stl_timer tick;
    stl_prepare_init(&p, pc_prepare);
    stl_check_init(&c, pc_check);
    stl_timer_init(&tick, tl_record, 0.002, 0.002), TAG(tick, 't');
    stl_timer_init(&pc_zero, tl_record, 0, 0), TAG(pc_zero, 'z');
    stl_prepare_start(loop, &p);
    stl_check_start(loop, &c);
    stl_timer_start(loop, &tick);
    for (int k = 0; k < 10; k++)
        stl_loop_run(loop, STL_RUN_ONCE);
    TL_CHECK(pc_prepares == 10 && pc_checks == 10);
    TL_CHECK(stl_loop_iteration(loop) == 10);
    TL_CHECK(tl_log_count('z') == 1);
    stl_prepare_init(&pb, pc_break);
    stl_prepare_start(loop, &pb);
    TL_CHECK(stl_loop_run(loop, STL_RUN_DEFAULT) == 1);
    TL_CHECK(stl_loop_iteration(loop) == 10);
    TL_CHECK(pc_prepares == 11 && pc_checks == 10);
    stl_loop_free(loop);
    return 0;
}

/* ---- the block hook ---- */

static int bh_enter, bh_leave, bh_inside;
static void bh_hook(stl_loop *loop, int entering)
{
    (void)loop;
    TL_EXPECT(bh_inside == !entering); /* strictly paired */
    bh_inside = entering;
    if (entering)
        bh_enter++;
    else
        bh_leave++;
}

/*
 * The hook runs around a poll that may block (a timer in the future, or
 * forever) and never around one that cannot (NOWAIT, something pending, an
 * idle watcher, a timer already due).
 */
int tl_block_hook_only_when_blocking(unsigned backend)
{
    stl_loop *loop = tl_loop(backend);
    stl_timer t, due;
    stl_idle idle;
    stl_loop_set_block_hook(loop, bh_hook);
    stl_timer_init(&t, tl_record, 0.3, 0); /* far enough for Valgrind's pace */
    stl_timer_init(&due, tl_record, 0, 0);
    stl_idle_init(&idle, tl_record);
    TL_CHECK(stl_timer_start(loop, &t) == 0);
    TL_CHECK(stl_loop_run(loop, STL_RUN_NOWAIT) == 1);
    TL_CHECK(bh_enter == 0);
    TL_CHECK(stl_idle_start(loop, &idle) == 0);
    TL_CHECK(stl_loop_run(loop, STL_RUN_ONCE) == 1);
    TL_CHECK(bh_enter == 0);
    stl_idle_stop(loop, &idle);
    stl_feed_event(loop, &idle.w, STL_CUSTOM); /* pending: handled before the poll, */
    TL_CHECK(stl_timer_start(loop, &due) == 0);  /* and a timer due now */
    stl_loop_update_now(loop);
    TL_CHECK(stl_loop_run(loop, STL_RUN_ONCE) == 1);
    TL_CHECK(bh_enter == 0);
    TL_CHECK(stl_loop_run(loop, STL_RUN_DEFAULT) == 0); /* waits for t */
    TL_CHECK(bh_enter >= 1 && bh_enter == bh_leave && !bh_inside);
    stl_loop_set_block_hook(loop, NULL);
    int before = bh_enter;
    TL_CHECK(stl_timer_start(loop, &t) == 0);
    TL_CHECK(stl_loop_run(loop, STL_RUN_DEFAULT) == 0);
    TL_CHECK(bh_enter == before);
    stl_loop_free(loop);
    return tl_failed();
}
