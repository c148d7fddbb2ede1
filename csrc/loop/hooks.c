/*
 * hooks.c -- prepare, check and fork watchers: the loop's own moments.
 *
 * prepare: queued and run at step 2, just before the loop polls (the place
 *   for an embedding layer to run its queued callbacks, or to learn that
 *   the loop is about to block);
 * check: queued at step 9, just after the poll, with the events it found;
 * fork: queued and run at step 1 of the first iteration in a forked child.
 * Each list is fed in start order, so watchers of one kind and priority run
 * in the order they were started.
 */
#include "loop_int.h"

/* Start and stop for a watcher that lives on one plain list of the loop. */
static int stl__hook_start(stl_loop *loop, stl__list *l, stl_watcher *w)
{
    if (w->active)
        return 0;
    stl__list_append(l, w, STL__LINK);
    stl__activate(loop, w);
    return 0;
}

/* The list is named by its offset in the loop, so that stopping an inert
 * watcher (after stl_loop_free) never computes an address from the loop. */
static void stl__hook_stop(stl_loop *loop, size_t list, stl_watcher *w)
{
    stl_clear_pending(loop, w);
    if (!w->active)
        return;
    stl__list_remove((stl__list *)((char *)loop + list), w, STL__LINK);
    stl__deactivate(loop, w);
}

#define STL__HOOK(name) offsetof(stl_loop, name)

void stl_prepare_init(stl_prepare *w, stl_cb cb) { stl__watcher_init(&w->w, cb); }
int stl_prepare_start(stl_loop *loop, stl_prepare *w) { return stl__hook_start(loop, &loop->prepares, &w->w); }
void stl_prepare_stop(stl_loop *loop, stl_prepare *w) { stl__hook_stop(loop, STL__HOOK(prepares), &w->w); }

void stl_check_init(stl_check *w, stl_cb cb) { stl__watcher_init(&w->w, cb); }
int stl_check_start(stl_loop *loop, stl_check *w) { return stl__hook_start(loop, &loop->checks, &w->w); }
void stl_check_stop(stl_loop *loop, stl_check *w) { stl__hook_stop(loop, STL__HOOK(checks), &w->w); }

void stl_fork_init(stl_fork *w, stl_cb cb) { stl__watcher_init(&w->w, cb); }
int stl_fork_start(stl_loop *loop, stl_fork *w) { return stl__hook_start(loop, &loop->forks, &w->w); }
void stl_fork_stop(stl_loop *loop, stl_fork *w) { stl__hook_stop(loop, STL__HOOK(forks), &w->w); }
