/*
 * loop.c -- the loop itself: creation, the iteration (a list of phases),
 * the pending queues, references, time, fork detection, destruction.
 *
 * One iteration, in this order (docs/loop.md explains each step):
 *
 *    1. fork check      in a forked child: queue fork watchers and run them
 *    2. prepare         queue prepare watchers and run them; a break stops here
 *    3. fd changes      rebuild kernel state after a fork; push fd interest
 *    4. timeout         0 if anything is pending, idle or NOWAIT; else until
 *                       the next timer (on a refreshed now), or forever
 *    5. poll            the backend waits; ready fds make io watchers pending
 *    6. time            refresh the cached now
 *    7. timers          due timers become pending, earliest deadline first
 *    8. idle            idle watchers, if nothing of their priority or higher is pending
 *    9. check           queue check watchers
 *   10. invoke          run every pending callback, priority 2 down to -2,
 *                       first come first served within a priority
 *
 * Signals, child exits and async sends arrive through one internal io
 * watcher on the wake-up fd (wakeup.c), so they are delivered in step 10.
 */
#include "loop_int.h"

#include <pthread.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* postfork bits */
#define STL__PF_REBUILD 1  /* kernel state (backend set, wake-up fd) is the parent's */
#define STL__PF_WATCHERS 2 /* fork watchers have not run yet */

/* Bumped in every child by pthread_atfork: each loop compares it with its own. */
unsigned stl__fork_gen;
static pthread_once_t stl__atfork_once = PTHREAD_ONCE_INIT;

/* In the child only the forking thread exists: process-wide state that
 * other threads could have held at the fork is made consistent again. */
static void stl__atfork_child(void)
{
    stl__fork_gen++;
    stl__sig_atfork_child();
    stl__wakeup_atfork_child();
}

static void stl__atfork_register(void)
{
    pthread_atfork(stl__sig_atfork_prepare, stl__sig_atfork_parent, stl__atfork_child);
}

/*
 * The one allocator of csrc/loop: realloc semantics, and free for n == 0.
 * Tests build with STL_LOOP_REALLOC set to a counting one.
 */
void *stl__realloc(void *p, size_t n)
{
    if (n == 0) {
        STL_LOOP_FREE(p);
        return NULL;
    }
    return STL_LOOP_REALLOC(p, n);
}

/* The monotonic clock in nanoseconds. */
int64_t stl__clock_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * STL__NS + ts.tv_nsec;
}

/* ---- backends ---- */

static const stl__backend *const stl__backends[] = {
#ifdef STL__HAVE_EPOLL
    &stl__backend_epoll,
#endif
#ifdef STL__HAVE_KQUEUE
    &stl__backend_kqueue,
#endif
    &stl__backend_poll,
};
#define STL__NBACKENDS (sizeof stl__backends / sizeof stl__backends[0])

unsigned stl_loop_supported_backends(void)
{
    unsigned bits = 0;
    for (size_t i = 0; i < STL__NBACKENDS; i++)
        bits |= stl__backends[i]->id;
    return bits;
}

/* The backend named by one STL_BACKEND_* bit, or the first (best) for 0. */
static const stl__backend *stl__pick_backend(unsigned id)
{
    if (id == 0)
        return stl__backends[0];
    for (size_t i = 0; i < STL__NBACKENDS; i++)
        if (stl__backends[i]->id == id)
            return stl__backends[i];
    return NULL;
}

/* ---- creation and destruction ---- */

/*
 * A new loop: the backend's kernel state and the wake-up fd (with its
 * internal, unreferenced io watcher) exist from the start, so that nothing
 * later needs to create them in a signal handler or another thread.
 */
int stl_loop_new(stl_loop **out, unsigned flags)
{
    *out = NULL;
    unsigned id = flags & STL_BACKEND_MASK;
    if ((flags & ~(STL_BACKEND_MASK | STL_LOOP_PIDCHECK)) || (id & (id - 1))
        || (id & ~(unsigned)(STL_BACKEND_EPOLL | STL_BACKEND_POLL | STL_BACKEND_KQUEUE)))
        return -EINVAL;
    const stl__backend *backend = stl__pick_backend(id);
    if (!backend)
        return -ENOSYS;
    pthread_once(&stl__atfork_once, stl__atfork_register);

    stl_loop *loop = stl__realloc(NULL, sizeof *loop);
    if (!loop)
        return -ENOMEM;
    memset(loop, 0, sizeof *loop);
    loop->backend = backend;
    loop->flags = flags;
    loop->changes = -1;
    loop->wake_r = loop->wake_w = -1;
    loop->backend_fd = -1;
    loop->pid = getpid();
    loop->fork_gen = STL__LOAD(&stl__fork_gen);
    loop->now = stl__clock_ns();

    int rc = backend->init(loop);
    if (rc == 0) {
        rc = stl__wakeup_open(loop);
        if (rc)
            backend->destroy(loop);
    }
    if (rc) {
        stl__realloc(loop->fds, 0);
        stl__realloc(loop, 0);
        return rc;
    }
    *out = loop;
    return 0;
}

/* Marks every watcher of a list inactive and forgets it (loop teardown). */
void stl__list_release(stl__list *l)
{
    stl_watcher *w = l->head;
    while (w) {
        stl_watcher *next = w->link.next;
        w->active = 0;
        w->link.next = w->link.prev = NULL;
        w = next;
    }
    l->head = l->tail = NULL;
    l->count = 0;
}

/* Heap walk callback: a timer forgotten by a dying loop. */
static void stl__timer_forget(stl_loop *loop, stl_timer *t)
{
    (void)loop;
    t->w.active = 0;
    t->hidx = -1;
}

/*
 * Frees the loop.  Signal handlers go back to what they were, the wake-up
 * fd and the backend's kernel state are closed (never edited: after a fork
 * the parent may still use them), and every watcher, active or pending, is
 * marked inactive and not pending and is never touched again.
 */
int stl_loop_free(stl_loop *loop)
{
    if (!loop)
        return 0;
    if (loop->depth)
        return -EBUSY;
    stl__signals_disown(loop);
    stl__wakeup_close(loop);
    for (int p = 0; p < STL__NPRI; p++) {
        stl_watcher *w = loop->pending[p].head;
        while (w) {
            stl_watcher *next = w->pend.next;
            w->pending = 0;
            w->revents = 0;
            w->pend.next = w->pend.prev = NULL;
            w = next;
        }
        stl__list_release(&loop->idles[p]);
    }
    for (int s = 0; s < STL__NSIG; s++)
        stl__list_release(&loop->sigs[s]);
    for (int fd = 0; fd < loop->nfds; fd++)
        stl__list_release(&loop->fds[fd].watchers);
    stl__list_release(&loop->prepares);
    stl__list_release(&loop->checks);
    stl__list_release(&loop->forks);
    stl__list_release(&loop->asyncs);
    stl__list_release(&loop->children);
    stl__heap_each(loop, stl__timer_forget);
    loop->backend->destroy(loop);
    stl__realloc(loop->fds, 0);
    stl__realloc(loop, 0);
    return 0;
}

/* ---- watchers: activity, references, the pending queues ---- */

/* The common part of every init: inactive, not pending, priority 0, referenced. */
void stl__watcher_init(stl_watcher *w, stl_cb cb)
{
    memset(w, 0, sizeof *w);
    w->cb = cb;
}

/* A watcher enters its container: count its reference. */
void stl__activate(stl_loop *loop, stl_watcher *w)
{
    w->active = 1;
    if (!(w->flags & STL__W_UNREF))
        loop->refcount++;
}

/* A watcher left its container. */
void stl__deactivate(stl_loop *loop, stl_watcher *w)
{
    w->active = 0;
    if (!(w->flags & STL__W_UNREF))
        loop->refcount--;
}

void stl_ref(stl_loop *loop, stl_watcher *w)
{
    if (!(w->flags & STL__W_UNREF))
        return;
    w->flags &= ~STL__W_UNREF;
    if (w->active)
        loop->refcount++;
}

void stl_unref(stl_loop *loop, stl_watcher *w)
{
    if (w->flags & STL__W_UNREF)
        return;
    w->flags |= STL__W_UNREF;
    if (w->active)
        loop->refcount--;
}

int stl_is_ref(const stl_watcher *w)
{
    return !(w->flags & STL__W_UNREF);
}

int stl_set_priority(stl_watcher *w, int priority)
{
    if (priority < STL_MINPRI || priority > STL_MAXPRI)
        return -EINVAL;
    if (w->active || w->pending)
        return -EBUSY;
    w->priority = (signed char)priority;
    return 0;
}

/*
 * Makes w pending.  A pending watcher is in the FIFO of its priority once;
 * later events are ORed into the same delivery, so a callback sees each
 * kind of event at most once per delivery.
 */
void stl_feed_event(stl_loop *loop, stl_watcher *w, int revents)
{
    if (w->pending) {
        w->revents |= revents;
        return;
    }
    w->pending = 1;
    w->revents = revents;
    stl__list_append(&loop->pending[STL__PRI(w)], w, STL__PEND);
    loop->npending++;
}

/* Takes w off its pending queue; stop does this first, touching nothing else
 * for a watcher that is not pending. */
int stl_clear_pending(stl_loop *loop, stl_watcher *w)
{
    if (!w->pending)
        return 0;
    int revents = w->revents;
    stl__list_remove(&loop->pending[STL__PRI(w)], w, STL__PEND);
    loop->npending--;
    w->pending = 0;
    w->revents = 0;
    return revents;
}

/* Feeds every watcher of a list (prepare, check, fork, idle). */
void stl__queue_list(stl_loop *loop, stl__list *l, int revents)
{
    for (stl_watcher *w = l->head; w; w = w->link.next)
        stl_feed_event(loop, w, revents);
}

/*
 * Step 10: one callback at a time, always from the highest priority that
 * has something, taken off its queue before the call.  Nothing is held
 * across the call, so the callback may stop or free anything (itself too),
 * feed more events (they run in this same pass) or switch stacks and come
 * back much later.
 */
void stl_loop_invoke_pending(stl_loop *loop)
{
    while (loop->npending) {
        int p = STL__NPRI - 1;
        while (!loop->pending[p].head)
            p--;
        stl_watcher *w = loop->pending[p].head;
        stl__list_remove(&loop->pending[p], w, STL__PEND);
        loop->npending--;
        int revents = w->revents;
        w->pending = 0;
        w->revents = 0;
        if (w->cb)
            w->cb(loop, w, revents);
    }
}

/* ---- time ---- */

double stl_loop_now(const stl_loop *loop)
{
    return (double)loop->now / 1e9;
}

int64_t stl_loop_now_ns(const stl_loop *loop)
{
    return loop->now;
}

void stl_loop_update_now(stl_loop *loop)
{
    loop->now = stl__clock_ns();
}

/* ---- the iteration ---- */

/* Step 1's test: a fork announced, or noticed through pthread_atfork (and,
 * with STL_LOOP_PIDCHECK, through getpid() for forks that bypass it). */
static int stl__forked(stl_loop *loop)
{
    unsigned gen = STL__LOAD(&stl__fork_gen);
    if (STL__UNLIKELY(gen != loop->fork_gen)) {
        loop->fork_gen = gen;
        loop->postfork = STL__PF_REBUILD | STL__PF_WATCHERS;
    }
    if ((loop->flags & STL_LOOP_PIDCHECK) && getpid() != loop->pid)
        loop->postfork = STL__PF_REBUILD | STL__PF_WATCHERS;
    return loop->postfork & STL__PF_WATCHERS;
}

/*
 * Step 3, first half: fresh kernel state.  After a fork the backend's set
 * and the wake-up fd are shared with the parent; the backend also asks for
 * this (loop->rebuild) when epoll reports a file description that can no
 * longer be removed from its set.
 */
static int stl__rebuild(stl_loop *loop)
{
    int rc = loop->backend->fork(loop);
    if (rc)
        return rc;
    if (loop->postfork & STL__PF_REBUILD) {
        rc = stl__wakeup_reopen(loop);
        if (rc)
            return rc;
        loop->pid = getpid();
    }
    loop->postfork &= ~STL__PF_REBUILD;
    loop->rebuild = 0;
    return 0;
}

/*
 * Step 4: how long the poll may block, in ns; -1 is forever.  The clock is
 * read only when a timer bounds the wait: otherwise the answer does not
 * depend on the present, and step 6 refreshes the time anyway.
 */
static int64_t stl__timeout(stl_loop *loop, int mode)
{
    if (mode == STL_RUN_NOWAIT || loop->npending || loop->nidles || !loop->refcount)
        return 0;
    if (!loop->ntimers)
        return -1;
    stl_loop_update_now(loop);
    int64_t left = loop->heap[0].at - loop->now;
    return left > 0 ? left : 0;
}

/*
 * Step 5.  The block hook runs only around a poll that will wait: the
 * embedding layer releases its lock (Python's GIL) there, and a poll that
 * returns at once is not worth the release and the re-take.
 */
static int stl__poll(stl_loop *loop, int64_t timeout)
{
    stl_block_cb hook = timeout != 0 ? loop->block_hook : NULL;
    if (hook) {
        /* A busy loop usually finds something ready: look without waiting
         * first, and release the lock only if the poll is really going to
         * wait (one more syscall then, when the loop is idle anyway). */
        int rc = loop->backend->poll(loop, 0);
        if (rc < 0 || loop->npending)
            return rc;
        hook(loop, 1);
    }
    int rc = loop->backend->poll(loop, timeout);
    if (hook)
        hook(loop, 0);
    return rc;
}

/* One iteration: the phases of the comment at the top of this file. */
static int stl__iterate(stl_loop *loop, int mode)
{
    int rc;
    if (STL__UNLIKELY(stl__forked(loop))) {                     /* 1 */
        loop->postfork &= ~STL__PF_WATCHERS;
        stl__queue_list(loop, &loop->forks, STL_FORK);
        stl_loop_invoke_pending(loop);
    }
    stl__queue_list(loop, &loop->prepares, STL_PREPARE);        /* 2 */
    stl_loop_invoke_pending(loop);
    if (loop->break_how)
        return 0;
    if (STL__UNLIKELY(loop->postfork || loop->rebuild)) {       /* 3 */
        if ((rc = stl__rebuild(loop)) != 0)
            return rc;
    }
    stl__fd_reify(loop);
    int64_t timeout = stl__timeout(loop, mode);                 /* 4 */
    loop->iteration++;                                          /* 5 */
    if ((rc = stl__poll(loop, timeout)) != 0)
        return rc;
    stl_loop_update_now(loop);                                  /* 6 */
    stl__timers_due(loop);                                      /* 7 */
    stl__idles_queue(loop);                                     /* 8 */
    stl__queue_list(loop, &loop->checks, STL_CHECK);            /* 9 */
    stl_loop_invoke_pending(loop);                              /* 10 */
    return 0;
}

/*
 * Runs iterations until nothing referenced is active, a break, or one
 * iteration for ONCE and NOWAIT.  Watchers already pending run first.  A
 * break made before the call is forgotten (as in libev); BREAK_ONE ends
 * only this call, BREAK_ALL every nested one.
 */
int stl_loop_run(stl_loop *loop, int mode)
{
    if (mode != STL_RUN_DEFAULT && mode != STL_RUN_ONCE && mode != STL_RUN_NOWAIT)
        return -EINVAL;
    int rc;
    loop->depth++;
    loop->break_how = STL_BREAK_CANCEL;
    stl_loop_invoke_pending(loop);
    do {
        rc = stl__iterate(loop, mode);
    } while (rc == 0 && loop->refcount && !loop->break_how && mode == STL_RUN_DEFAULT);
    if (loop->break_how == STL_BREAK_ONE)
        loop->break_how = STL_BREAK_CANCEL;
    loop->depth--;
    return rc < 0 ? rc : loop->refcount > 0;
}

void stl_loop_break(stl_loop *loop, int how)
{
    if (how == STL_BREAK_CANCEL || how == STL_BREAK_ONE || how == STL_BREAK_ALL)
        loop->break_how = how;
}

void stl_loop_fork(stl_loop *loop)
{
    loop->postfork = STL__PF_REBUILD | STL__PF_WATCHERS;
}

/* ---- introspection ---- */

uint64_t stl_loop_iteration(const stl_loop *loop) { return loop->iteration; }
int stl_loop_depth(const stl_loop *loop) { return loop->depth; }
long stl_loop_refcount(const stl_loop *loop) { return loop->refcount; }
long stl_loop_pending_count(const stl_loop *loop) { return loop->npending; }
unsigned stl_loop_backend(const stl_loop *loop) { return loop->backend->id; }
const char *stl_loop_backend_name(const stl_loop *loop) { return loop->backend->name; }
int stl_loop_backend_fd(const stl_loop *loop) { return loop->backend_fd; }
int stl_loop_sig_pending(const stl_loop *loop) { return STL__LOAD(&loop->sig_pending) != 0; }
void stl_loop_set_data(stl_loop *loop, void *data) { loop->data = data; }
void stl_loop_set_block_hook(stl_loop *loop, stl_block_cb fn) { loop->block_hook = fn; }
void *stl_loop_get_data(const stl_loop *loop) { return loop->data; }
