/*
 * async.c -- async watchers: a wake-up that any thread, or a signal
 * handler, may send.
 *
 * stl_async_send touches only two flags and, at most, the wake-up fd:
 *   1. the watcher's `sent` flag is set; if it already was, a delivery is
 *      on its way and the send coalesces into it;
 *   2. the loop's async_pending flag is set; if it already was, another
 *      sender's write will wake the loop, and this send rides along;
 *   3. otherwise this sender writes the wake-up fd.
 * The loop clears async_pending before it scans the watchers (clearing each
 * `sent` as it feeds), so a send that races with the scan either is seen by
 * it or writes the fd again: none is lost, and N sends before the loop
 * looks give one callback.  All flag operations are sequentially
 * consistent atomics; nothing here allocates, locks or reads errno.
 */
#include "loop_int.h"

void stl_async_init(stl_async *w, stl_cb cb)
{
    stl__watcher_init(&w->w, cb);
    w->sent = 0;
}

int stl_async_start(stl_loop *loop, stl_async *w)
{
    if (w->w.active)
        return 0;
    STL__STORE(&w->sent, 0);
    stl__list_append(&loop->asyncs, &w->w, STL__LINK);
    stl__activate(loop, &w->w);
    return 0;
}

void stl_async_stop(stl_loop *loop, stl_async *w)
{
    stl_clear_pending(loop, &w->w);
    if (!w->w.active)
        return;
    stl__list_remove(&loop->asyncs, &w->w, STL__LINK);
    stl__deactivate(loop, &w->w);
}

void stl_async_send(stl_loop *loop, stl_async *w)
{
    if (STL__XCHG(&w->sent, 1))
        return;
    if (STL__XCHG(&loop->async_pending, 1))
        return;
    stl__wakeup_enter();
    stl__wakeup_write(loop);
    stl__wakeup_leave();
}

int stl_async_pending(const stl_async *w)
{
    return STL__LOAD(&w->sent);
}

/* From the wake-up callback: every active watcher that was sent becomes pending. */
void stl__asyncs_dispatch(stl_loop *loop)
{
    if (!STL__XCHG(&loop->async_pending, 0))
        return;
    for (stl_watcher *w = loop->asyncs.head; w; w = w->link.next)
        if (STL__XCHG(&((stl_async *)w)->sent, 0))
            stl_feed_event(loop, w, STL_ASYNC);
}
