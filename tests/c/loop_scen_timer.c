/*
 * loop_scen_timer.c -- timer scenarios: FIFO among equal deadlines, never
 * early, after 0, repeat/again/remaining, random operations checked against
 * the heap's invariants, and a million timers started and stopped without
 * a single allocation.
 */
#define _GNU_SOURCE 1
#include "loop_tests.h"
#include "loop_int.h" /* the heap checker reads the private heap */

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Checks the heap array: every entry's timer points back at its slot,
 * carries the entry's key, is active, and no entry is before its parent. */
static int heap_ok(stl_loop *loop)
{
    if (loop->ntimers < 0 || loop->ntimers > loop->heapcap)
        return 0;
    for (long i = 0; i < loop->ntimers; i++) {
        const stl__hent *e = &loop->heap[i], *p = &loop->heap[(i - 1) / 4];
        if (e->w->hidx != i || e->w->at != e->at || e->w->seq != e->seq || !e->w->w.active)
            return 0;
        if (i > 0 && (e->at < p->at || (e->at == p->at && e->seq < p->seq)))
            return 0;
    }
    return 1;
}

/* Equal deadlines fire in start order; different ones by deadline. */
int tl_timer_fifo_ties(unsigned backend)
{
    enum { N = 300 };
    static stl_timer t[N];
    static long want[N];
    stl_loop *loop = tl_loop(backend);
    for (int i = 0; i < N; i++) {
        double after = (double)((i * 7) % 5) * 0.002;
        stl_timer_init(&t[i], tl_record, after, 0);
        t[i].w.data = (void *)(intptr_t)i;
        stl_timer_start(loop, &t[i]);
    }
    TL_CHECK(heap_ok(loop));
    int k = 0;
    for (int slot = 0; slot < 5; slot++)
        for (int i = 0; i < N; i++)
            if ((i * 7) % 5 == slot)
                want[k++] = i;
    TL_CHECK(stl_loop_run(loop, STL_RUN_DEFAULT) == 0);
    TL_CHECK(tl_log_is(want, N));
    stl_loop_free(loop);
    return 0;
}

static int64_t ne_start;
static int64_t ne_late_max;
static void ne_cb(stl_loop *loop, stl_watcher *w, int revents)
{
    stl_timer *t = (stl_timer *)w;
    (void)revents;
    int64_t clock = tl_now_ns();
    int64_t due = ne_start + (int64_t)(intptr_t)w->data * 1000; /* data: after in us */
    TL_EXPECT(stl_loop_now_ns(loop) >= due);
    TL_EXPECT(clock >= due);
    if (clock - due > ne_late_max)
        ne_late_max = clock - due;
    (void)t;
}

static int ne_rep_calls;
static void ne_rep_cb(stl_loop *loop, stl_watcher *w, int revents)
{
    (void)revents;
    ne_rep_calls++;
    /* k-th expiry: no earlier than after + (k-1) * repeat */
    int64_t due = ne_start + 3000000 + (int64_t)(ne_rep_calls - 1) * 7000000;
    TL_EXPECT(stl_loop_now_ns(loop) >= due);
    if (ne_rep_calls == 5)
        stl_timer_stop(loop, (stl_timer *)w);
}

/* No timer fires before its deadline, by the loop's clock or the real one. */
int tl_timer_never_early(unsigned backend)
{
    enum { N = 40 };
    static stl_timer t[N];
    stl_timer rep;
    stl_loop *loop = tl_loop(backend);
    stl_loop_update_now(loop);
    ne_start = stl_loop_now_ns(loop);
    for (int i = 0; i < N; i++) {
        long us = 100 + i * 997;  /* 0.1 ms .. 39 ms, not on ms boundaries */
        stl_timer_init(&t[i], ne_cb, (double)us / 1e6, 0);
        t[i].w.data = (void *)(intptr_t)us;
        stl_timer_start(loop, &t[i]);
    }
    stl_timer_init(&rep, ne_rep_cb, 0.003, 0.007);
    stl_timer_start(loop, &rep);
    TL_CHECK(stl_loop_run(loop, STL_RUN_DEFAULT) == 0);
    TL_CHECK(ne_rep_calls == 5);
    tl_set_value(ne_late_max / 1000);
    stl_loop_free(loop);
    return tl_failed();
}

static stl_timer zn_b;
static uint64_t zn_iter_a;
static void zn_a(stl_loop *loop, stl_watcher *w, int revents)
{
    (void)w, (void)revents;
    zn_iter_a = stl_loop_iteration(loop);
    stl_timer_start(loop, &zn_b);
}

/* after 0 started in a callback runs at the next iteration, not in the
 * same pass (a callback cannot starve the loop with zero timers). */
int tl_timer_zero_next_iteration(unsigned backend)
{
    stl_loop *loop = tl_loop(backend);
    stl_timer a;
    stl_timer_init(&a, zn_a, 0, 0);
    stl_timer_init(&zn_b, tl_record, 0, 0), zn_b.w.data = (void *)'b';
    stl_timer_start(loop, &a);
    TL_CHECK(stl_loop_run(loop, STL_RUN_ONCE) == 1);
    TL_CHECK(zn_iter_a == 1 && tl_nlog == 0);
    TL_CHECK(stl_loop_run(loop, STL_RUN_ONCE) == 0);
    TL_CHECK(tl_nlog == 1 && tl_log[0].iteration == 2);
    stl_loop_free(loop);
    return 0;
}

static int rar_calls;
static void rar_cb(stl_loop *loop, stl_watcher *w, int revents)
{
    (void)revents;
    if (++rar_calls == 3)
        stl_timer_stop(loop, (stl_timer *)w);
}

/* repeat, again (all four cases), remaining, set and its errors. */
int tl_timer_repeat_again_remaining(unsigned backend)
{
    stl_loop *loop = tl_loop(backend);
    stl_timer t, r;
    TL_CHECK(stl_timer_init(&t, tl_record, -1, 0) == -EINVAL);
    TL_CHECK(stl_timer_init(&t, tl_record, 0, -0.5) == -EINVAL);
    TL_CHECK(stl_timer_init(&t, tl_record, NAN, 0) == -EINVAL);
    TL_CHECK(stl_timer_init(&t, tl_record, INFINITY, 0) == 0);
    TL_CHECK(stl_timer_set_repeat(&t, NAN) == -EINVAL);
    TL_CHECK(stl_timer_init(&t, tl_record, 1.5, 0) == 0);
    t.w.data = (void *)'t';
    TL_CHECK(stl_timer_remaining(loop, &t) == 1.5);
    stl_timer_start(loop, &t);
    TL_CHECK(stl_timer_set(&t, 1, 1) == -EBUSY);
    double left = stl_timer_remaining(loop, &t);
    TL_CHECK(left > 1.49 && left <= 1.5);

    /* active one-shot: again stops it */
    stl_timer_again(loop, &t);
    TL_CHECK(!t.w.active);
    /* inactive, repeat 0: again does nothing */
    stl_timer_again(loop, &t);
    TL_CHECK(!t.w.active);
    /* inactive with repeat: again starts it with repeat as the delay */
    stl_timer_set_repeat(&t, 0.25);
    TL_CHECK(stl_timer_repeat(&t) == 0.25);
    stl_timer_again(loop, &t);
    TL_CHECK(t.w.active);
    left = stl_timer_remaining(loop, &t);
    TL_CHECK(left > 0.24 && left <= 0.25);
    /* active with repeat: again moves it to now + repeat */
    stl_timer_set_repeat(&t, 2);
    stl_timer_again(loop, &t);
    left = stl_timer_remaining(loop, &t);
    TL_CHECK(left > 1.99 && left <= 2);
    /* again forgets a pending expiry */
    stl_feed_event(loop, &t.w, STL_TIMER);
    stl_timer_again(loop, &t);
    TL_CHECK(!t.w.pending);
    stl_timer_stop(loop, &t);
    TL_CHECK(stl_loop_run(loop, STL_RUN_NOWAIT) == 0);
    TL_CHECK(tl_nlog == 0);

    /* repeat: fires until stopped; an infinite timer never keeps it from returning */
    stl_timer_init(&r, rar_cb, 0.001, 0.002);
    stl_timer_start(loop, &r);
    TL_CHECK(stl_loop_run(loop, STL_RUN_DEFAULT) == 0);
    TL_CHECK(rar_calls == 3);
    TL_CHECK(stl_timer_init(&t, tl_record, INFINITY, 0) == 0);
    stl_timer_start(loop, &t);
    TL_CHECK(stl_timer_remaining(loop, &t) > 1e9);
    TL_CHECK(stl_loop_run(loop, STL_RUN_NOWAIT) == 1);
    stl_timer_stop(loop, &t);
    stl_loop_free(loop);
    return 0;
}

/* ---- random operations ---- */

enum { RO_N = 3000 };
static stl_timer ro_t[RO_N];
static int64_t ro_last_at;
static uint64_t ro_last_seq;
static int ro_fired, ro_ops;
static uint64_t ro_rng = 88172645463325252ULL;

static unsigned ro_next(unsigned n)
{
    ro_rng ^= ro_rng << 13;
    ro_rng ^= ro_rng >> 7;
    ro_rng ^= ro_rng << 17;
    return (unsigned)(ro_rng % n);
}

/* Each expiry: not early, in (at, seq) order; then a few random operations. */
static void ro_cb(stl_loop *loop, stl_watcher *w, int revents)
{
    stl_timer *t = (stl_timer *)w;
    (void)revents;
    TL_EXPECT(t->at <= stl_loop_now_ns(loop));
    TL_EXPECT(t->at > ro_last_at || (t->at == ro_last_at && t->seq > ro_last_seq));
    ro_last_at = t->at;
    ro_last_seq = t->seq;
    ro_fired++;
    for (int k = 0; k < 3 && ro_ops < 20000; k++, ro_ops++) {
        stl_timer *o = &ro_t[ro_next(RO_N)];
        switch (ro_next(4)) {
        case 0:
            stl_timer_stop(loop, o);
            break;
        case 1:
            if (!o->w.active) {
                stl_timer_stop(loop, o); /* forget a pending expiry */
                stl_timer_set(o, (double)ro_next(20000) / 1e6, 0);
                stl_timer_start(loop, o);
            }
            break;
        case 2:
            stl_timer_set_repeat(o, (double)(1 + ro_next(5000)) / 1e6);
            stl_timer_again(loop, o);
            stl_timer_set_repeat(o, 0);
            break;
        default:
            break;
        }
    }
    TL_EXPECT(heap_ok(loop));
}

/* Thousands of random starts, stops and agains from inside callbacks; the
 * heap stays a heap and expiries come in order, never early. */
int tl_timer_random_ops(unsigned backend)
{
    stl_loop *loop = tl_loop(backend);
    int n = tl_scale(RO_N);
    for (int i = 0; i < n; i++) {
        stl_timer_init(&ro_t[i], ro_cb, (double)ro_next(20000) / 1e6, 0);
        stl_timer_start(loop, &ro_t[i]);
    }
    TL_CHECK(heap_ok(loop));
    /* stop a third in random order, check, restart */
    for (int i = 0; i < n / 3; i++)
        stl_timer_stop(loop, &ro_t[ro_next((unsigned)n)]);
    TL_CHECK(heap_ok(loop));
    TL_CHECK(stl_loop_run(loop, STL_RUN_DEFAULT) == 0);
    TL_CHECK(loop->ntimers == 0);
    tl_set_value(ro_fired);
    stl_loop_free(loop);
    return tl_failed();
}

static long mil_fired;
static int64_t mil_last;
static void mil_cb(stl_loop *loop, stl_watcher *w, int revents)
{
    (void)loop, (void)revents;
    int64_t at = ((stl_timer *)w)->at;
    TL_EXPECT(at >= mil_last);
    mil_last = at;
    mil_fired++;
}

/*
 * A million timers active at once.  The heap's array grows only while the
 * count of active timers climbs past its high-water mark (doubling: a few
 * dozen allocations for the first fill at most); after that, starting and
 * stopping them allocates nothing (counted by the test allocator), and then
 * they all fire, in deadline order.  The measured value is ns per
 * start+stop pair, taken after the first fill.
 */
int tl_timer_million_no_alloc(unsigned backend)
{
    long n = tl_scale(1000000);
    stl_timer *t = calloc((size_t)n, sizeof *t);
    TL_CHECK(t != NULL);
    stl_loop *loop = tl_loop(backend);
    for (long i = 0; i < n; i++)
        stl_timer_init(&t[i], mil_cb, (double)(i % 1000) / 1e6, 0);
    stl_loop_run(loop, STL_RUN_NOWAIT); /* the backend's first registrations */
    tl_alloc_reset();
    for (long i = 0; i < n; i++)
        TL_CHECK(stl_timer_start(loop, &t[i]) == 0);
    TL_CHECK(tl_alloc_calls() > 0 && tl_alloc_calls() <= 32); /* doubling, not per start */
    for (long i = 0; i < n; i++)
        stl_timer_stop(loop, &t[(i * 7919) % n]);
    TL_CHECK(loop->ntimers == 0);
    tl_alloc_reset();
    int64_t t0 = tl_now_ns();
    for (long i = 0; i < n; i++)
        stl_timer_start(loop, &t[i]);
    for (long i = 0; i < n; i++)
        stl_timer_stop(loop, &t[(i * 7919) % n]);
    int64_t t1 = tl_now_ns();
    TL_CHECK(loop->ntimers == 0);
    for (long i = 0; i < n; i++)
        stl_timer_start(loop, &t[i]);
    TL_CHECK(tl_alloc_calls() == 0);
    TL_CHECK(loop->ntimers == n);
    TL_CHECK(heap_ok(loop));
    TL_CHECK(stl_loop_run(loop, STL_RUN_DEFAULT) == 0);
    TL_CHECK(mil_fired == n);
    TL_CHECK(tl_alloc_calls() == 0);
    tl_set_value((long)((t1 - t0) / n));
    stl_loop_free(loop);
    free(t);
    return tl_failed();
}

/*
 * The heap's growth fails: stl_timer_start (and stl_timer_again on an
 * inactive repeating timer) return -ENOMEM and leave the timer inactive,
 * the loop's counts and the heap untouched; once memory is back the same
 * start succeeds, and every timer fires once.
 */
int tl_timer_heap_enomem(unsigned backend)
{
    enum { N = 200 };
    static stl_timer t[N + 2];
    stl_loop *loop = tl_loop(backend);
    tl_log_reset();
    for (int i = 0; i < N + 2; i++) {
        stl_timer_init(&t[i], tl_record, 0.001, 0);
        t[i].w.data = (void *)(intptr_t)i;
    }
    int started = 0, failed = 0;
    for (int i = 0; i < N; i++) {
        tl_alloc_fail_from(1); /* any allocation fails from now on */
        int rc = stl_timer_start(loop, &t[i]);
        tl_alloc_fail_from(0);
        if (rc == 0) {
            started++;
            continue;
        }
        /* the heap was full: nothing changed, then a start with memory works */
        TL_CHECK(rc == -ENOMEM);
        TL_CHECK(!t[i].w.active && loop->ntimers == started);
        TL_CHECK(stl_loop_refcount(loop) == started);
        TL_CHECK(heap_ok(loop));
        failed++;
        TL_CHECK(stl_timer_start(loop, &t[i]) == 0);
        started++;
    }
    TL_CHECK(failed >= 2); /* the first start, and at least one doubling */
    /* fill the array to its capacity without growing it, then again() on
     * an inactive repeating timer needs the growth and gets -ENOMEM */
    static stl_timer fill[1024];
    int nfill = 0;
    while (loop->ntimers < loop->heapcap && nfill < 1024) {
        stl_timer_init(&fill[nfill], tl_record, 0.001, 0);
        fill[nfill].w.data = (void *)(intptr_t)(N + 10 + nfill);
        TL_CHECK(stl_timer_start(loop, &fill[nfill++]) == 0);
    }
    TL_CHECK(loop->ntimers == loop->heapcap);
    stl_timer_set(&t[N], 0.001, 0.001);
    tl_alloc_fail_from(1);
    int rc = stl_timer_again(loop, &t[N]);
    tl_alloc_fail_from(0);
    TL_CHECK(rc == -ENOMEM && !t[N].w.active && loop->ntimers == started + nfill);
    TL_CHECK(stl_timer_again(loop, &t[N]) == 0 && t[N].w.active);
    stl_timer_stop(loop, &t[N]);
    TL_CHECK(heap_ok(loop));
    TL_CHECK(stl_loop_run(loop, STL_RUN_DEFAULT) == 0);
    TL_CHECK(tl_nlog == started + nfill);
    stl_loop_free(loop);
    return tl_failed();
}
