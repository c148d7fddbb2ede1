/*
 * idle.c -- idle watchers: work for when there is nothing else to do.
 *
 * Step 8 queues the idle watchers of the highest priority that has any,
 * and only if no watcher of that priority or higher is pending: an idle
 * watcher is locked out by anything at least as important.  While any idle
 * watcher is active the poll does not block (step 4), so idle callbacks
 * keep coming, one round per iteration, interleaved with real events.
 */
#include "loop_int.h"

void stl_idle_init(stl_idle *w, stl_cb cb)
{
    stl__watcher_init(&w->w, cb);
}

int stl_idle_start(stl_loop *loop, stl_idle *w)
{
    if (w->w.active)
        return 0;
    stl__list_append(&loop->idles[STL__PRI(&w->w)], &w->w, STL__LINK);
    loop->nidles++;
    stl__activate(loop, &w->w);
    return 0;
}

void stl_idle_stop(stl_loop *loop, stl_idle *w)
{
    stl_clear_pending(loop, &w->w);
    if (!w->w.active)
        return;
    stl__list_remove(&loop->idles[STL__PRI(&w->w)], &w->w, STL__LINK);
    loop->nidles--;
    stl__deactivate(loop, &w->w);
}

/* Step 8: from the highest priority down; the first with pending work or idlers ends it. */
void stl__idles_queue(stl_loop *loop)
{
    if (!loop->nidles)
        return;
    for (int p = STL__NPRI - 1; p >= 0; p--) {
        if (loop->pending[p].head)
            return;
        if (loop->idles[p].head) {
            stl__queue_list(loop, &loop->idles[p], STL_IDLE);
            return;
        }
    }
}
