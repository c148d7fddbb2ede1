/*
 * signal.c -- signal watchers: one process-wide table, one owning loop per
 * signal.
 *
 * Signal dispositions are process-wide, so the table is too.  Each signal
 * that some loop watches has an owner: the first loop that started a
 * watcher for it.  Any number of watchers on the owning loop may watch it;
 * another loop asking for it gets -EBUSY until the owner's last watcher of
 * it stops (then the previous disposition is restored and the signal is
 * free again).  SIGCHLD is also taken by child watchers (child.c).
 *
 * The handler runs in whatever thread the kernel picks and does only
 * async-signal-safe work: it sets the signal's pending flag and the owner's
 * sig_pending flag, and writes the owner's wake-up fd if sig_pending was
 * clear.  The loop's wake-up callback later clears the flags and feeds the
 * watchers, so callbacks run in the loop's thread, in the loop, never in
 * the handler.  Several deliveries before the loop looks may give one
 * callback.
 *
 * Lifetime: the handler brackets its use of the owner with
 * stl__wakeup_enter/leave; releasing a signal clears the owner and then
 * waits until no handler is inside (stl__wakeup_quiesce), so a handler in
 * another thread never writes to a loop that is being freed.
 */
#include "loop_int.h"

#include <pthread.h>
#include <string.h>

typedef struct stl__sigslot {
    stl_loop *owner;        /* atomic */
    int pending;            /* atomic */
    struct sigaction old;   /* the disposition before the owner took it */
} stl__sigslot;

static stl__sigslot stl__sigtab[STL__NSIG];
static pthread_mutex_t stl__sig_mutex = PTHREAD_MUTEX_INITIALIZER;

/* fork() holds the table's lock across the fork, so the child never
 * inherits it locked by a thread that does not exist there. */
void stl__sig_atfork_prepare(void)
{
    pthread_mutex_lock(&stl__sig_mutex);
}

void stl__sig_atfork_parent(void)
{
    pthread_mutex_unlock(&stl__sig_mutex);
}

void stl__sig_atfork_child(void)
{
    pthread_mutex_unlock(&stl__sig_mutex);
}

/* The handler: flags and one write, errno preserved. */
static void stl__sig_handler(int signum)
{
    int saved = errno;
    stl__wakeup_enter();
    stl_loop *loop = STL__LOAD(&stl__sigtab[signum].owner);
    if (loop) {
        STL__STORE(&stl__sigtab[signum].pending, 1);
        if (!STL__XCHG(&loop->sig_pending, 1))
            stl__wakeup_write(loop);
    }
    stl__wakeup_leave();
    errno = saved;
}

static int stl__sig_valid(int signum)
{
    return signum > 0 && signum < STL__NSIG && signum != SIGKILL && signum != SIGSTOP;
}

/*
 * Counts one more user of signum on loop; the first one takes ownership
 * and installs the handler (owner first, so no delivery is lost).
 */
int stl__sig_acquire(stl_loop *loop, int signum)
{
    if (!stl__sig_valid(signum))
        return -EINVAL;
    if (loop->sigrefs[signum]++ > 0)
        return 0;
    stl__sigslot *slot = &stl__sigtab[signum];
    int rc = 0;
    pthread_mutex_lock(&stl__sig_mutex);
    stl_loop *owner = STL__LOAD(&slot->owner);
    if (owner && owner != loop) {
        rc = -EBUSY;
    } else {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = stl__sig_handler;
        sigfillset(&sa.sa_mask);
        sa.sa_flags = SA_RESTART;
        STL__STORE(&slot->pending, 0);
        STL__STORE(&slot->owner, loop);
        if (sigaction(signum, &sa, &slot->old) < 0) {
            rc = -errno;
            STL__STORE(&slot->owner, (stl_loop *)NULL);
        }
    }
    pthread_mutex_unlock(&stl__sig_mutex);
    if (rc)
        loop->sigrefs[signum]--;
    return rc;
}

/* Gives signum back: the old disposition returns, then no handler may still use loop. */
static void stl__sig_disown(stl_loop *loop, int signum)
{
    stl__sigslot *slot = &stl__sigtab[signum];
    pthread_mutex_lock(&stl__sig_mutex);
    if (STL__LOAD(&slot->owner) == loop) {
        sigaction(signum, &slot->old, NULL);
        STL__STORE(&slot->owner, (stl_loop *)NULL);
    }
    pthread_mutex_unlock(&stl__sig_mutex);
    stl__wakeup_quiesce();
}

/* One user less; the last one gives the signal back. */
void stl__sig_release(stl_loop *loop, int signum)
{
    if (--loop->sigrefs[signum] == 0)
        stl__sig_disown(loop, signum);
}

/* As if signum had arrived (child.c: look for exits that happened before the start). */
void stl__sig_raise(stl_loop *loop, int signum)
{
    STL__STORE(&stl__sigtab[signum].pending, 1);
    if (!STL__XCHG(&loop->sig_pending, 1))
        stl__wakeup_write(loop);
}

/* Loop teardown: every signal it owns goes back. */
void stl__signals_disown(stl_loop *loop)
{
    for (int s = 1; s < STL__NSIG; s++) {
        if (loop->sigrefs[s]) {
            loop->sigrefs[s] = 0;
            stl__sig_disown(loop, s);
        }
    }
}

int stl_signal_init(stl_signal *w, stl_cb cb, int signum)
{
    stl__watcher_init(&w->w, cb);
    w->signum = signum;
    return stl__sig_valid(signum) ? 0 : -EINVAL;
}

int stl_signal_start(stl_loop *loop, stl_signal *w)
{
    if (w->w.active)
        return 0;
    int rc = stl__sig_acquire(loop, w->signum);
    if (rc)
        return rc;
    stl__list_append(&loop->sigs[w->signum], &w->w, STL__LINK);
    stl__activate(loop, &w->w);
    return 0;
}

void stl_signal_stop(stl_loop *loop, stl_signal *w)
{
    stl_clear_pending(loop, &w->w);
    if (!w->w.active)
        return;
    stl__list_remove(&loop->sigs[w->signum], &w->w, STL__LINK);
    stl__deactivate(loop, &w->w);
    stl__sig_release(loop, w->signum);
}

/*
 * From the wake-up callback: for each signal this loop owns that arrived,
 * feed its watchers (and reap children for SIGCHLD).  Flags are cleared
 * before they are acted on, so a delivery during this pass is not lost.
 */
void stl__signals_dispatch(stl_loop *loop)
{
    if (!STL__XCHG(&loop->sig_pending, 0))
        return;
    for (int s = 1; s < STL__NSIG; s++) {
        if (!loop->sigrefs[s] || STL__LOAD(&stl__sigtab[s].owner) != loop)
            continue;
        if (!STL__XCHG(&stl__sigtab[s].pending, 0))
            continue;
        stl__queue_list(loop, &loop->sigs[s], STL_SIGNAL);
        if (s == SIGCHLD && loop->children.head)
            stl__children_reap(loop);
    }
}
