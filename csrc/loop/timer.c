/*
 * timer.c -- relative timers on the monotonic clock.
 *
 * Deadlines are integers: nanoseconds on the loop's clock, counted from the
 * cached now (stl_loop_now), so every timer started in one callback pass
 * measures from the same instant.  A timer is due when now >= at: with
 * integer time that test is exact, so a timer never fires early relative
 * to the now it was started from.  The poll's timeout is rounded up by the
 * backend, and a wake-up that comes too soon simply finds nothing due.
 *
 * Repeating timers are re-armed at at + repeat, or at now + repeat when the
 * loop fell behind by a whole period: at most one expiry per iteration, and
 * no burst of catch-up calls after a long callback.
 */
#include "loop_int.h"

#include <math.h>

/* Far enough to be "never", small enough that now + it cannot overflow. */
#define STL__TIME_MAX (INT64_C(1) << 62)

/* Seconds to ns, rounded up; -EINVAL for negative or NaN. */
static int stl__to_ns(double seconds, int64_t *ns)
{
    if (!(seconds >= 0.0))
        return -EINVAL;
    if (seconds >= (double)STL__TIME_MAX / 1e9) {
        *ns = STL__TIME_MAX;
        return 0;
    }
    *ns = (int64_t)ceil(seconds * 1e9);
    return 0;
}

/* now + delta without overflow (both are below 2^62). */
static inline int64_t stl__deadline(const stl_loop *loop, int64_t delta)
{
    return loop->now + delta;
}

int stl_timer_init(stl_timer *w, stl_cb cb, double after, double repeat)
{
    stl__watcher_init(&w->w, cb);
    w->hidx = -1;
    w->at = w->seq = 0;
    w->after = w->repeat = 0;
    return stl_timer_set(w, after, repeat);
}

int stl_timer_set(stl_timer *w, double after, double repeat)
{
    int64_t a, r;
    if (w->w.active)
        return -EBUSY;
    if (stl__to_ns(after, &a) || stl__to_ns(repeat, &r))
        return -EINVAL;
    w->after = a;
    w->repeat = r;
    return 0;
}

int stl_timer_set_repeat(stl_timer *w, double repeat)
{
    int64_t r;
    if (stl__to_ns(repeat, &r))
        return -EINVAL;
    w->repeat = r;
    return 0;
}

double stl_timer_repeat(const stl_timer *w)
{
    return (double)w->repeat / 1e9;
}

double stl_timer_at(const stl_timer *w)
{
    return (double)w->at / 1e9;
}

/* Enters the heap at `at`, behind every timer already started with the same
 * deadline; -ENOMEM (and still inactive) if the heap could not grow. */
static int stl__timer_arm(stl_loop *loop, stl_timer *w, int64_t at)
{
    w->at = at;
    w->seq = ++loop->timer_seq;
    int rc = stl__heap_insert(loop, w);
    if (rc)
        return rc;
    stl__activate(loop, &w->w);
    return 0;
}

int stl_timer_start(stl_loop *loop, stl_timer *w)
{
    if (w->w.active)
        return 0;
    return stl__timer_arm(loop, w, stl__deadline(loop, w->after));
}

void stl_timer_stop(stl_loop *loop, stl_timer *w)
{
    stl_clear_pending(loop, &w->w);
    if (!w->w.active)
        return;
    stl__heap_remove(loop, w);
    stl__deactivate(loop, &w->w);
}

/*
 * libev's again: forget a pending expiry; an active repeating timer moves
 * to now + repeat in place (cheaper than stop and start), an active one-shot
 * stops, and an inactive repeating timer starts with repeat as its delay.
 */
int stl_timer_again(stl_loop *loop, stl_timer *w)
{
    stl_clear_pending(loop, &w->w);
    if (w->w.active) {
        if (w->repeat) {
            w->at = stl__deadline(loop, w->repeat);
            w->seq = ++loop->timer_seq;
            stl__heap_adjust(loop, w);
        } else {
            stl_timer_stop(loop, w);
        }
    } else if (w->repeat) {
        return stl__timer_arm(loop, w, stl__deadline(loop, w->repeat));
    }
    return 0;
}

double stl_timer_remaining(const stl_loop *loop, const stl_timer *w)
{
    if (!w->w.active)
        return (double)w->after / 1e9;
    int64_t left = w->at - loop->now;
    return left > 0 ? (double)left / 1e9 : 0.0;
}

/*
 * Step 7: every due timer becomes pending, in heap order, so callbacks run
 * by deadline and, for equal deadlines, by start order.  A repeating timer
 * is re-armed strictly after now, so this loop always ends.
 */
void stl__timers_due(stl_loop *loop)
{
    while (loop->ntimers && loop->heap[0].at <= loop->now) {
        stl_timer *w = loop->heap[0].w;
        if (w->repeat) {
            w->at += w->repeat;
            if (w->at <= loop->now)
                w->at = stl__deadline(loop, w->repeat);
            w->seq = ++loop->timer_seq;
            stl__heap_adjust(loop, w);
        } else {
            stl__heap_remove(loop, w);
            stl__deactivate(loop, &w->w);
        }
        stl_feed_event(loop, &w->w, STL_TIMER);
    }
}
