/*
 * child.c -- child watchers: a watched pid changed state.
 *
 * The loop that starts the first child watcher takes SIGCHLD (signal.c).
 * When it arrives, each watched pid is asked with waitpid(pid, WNOHANG):
 * only pids that have a watcher are ever reaped, so children that belong to
 * someone else (a subprocess module, another library) are never stolen.
 * Starting a watcher also triggers one such pass, for a child that exited
 * before the watcher existed (its SIGCHLD may have come and gone).
 *
 * Every watcher of the pid receives the same rpid and rstatus.  A pid that
 * terminated (exited or was killed) is gone for good, so its watchers are
 * stopped by the loop; with `trace`, stops and continues are reported too
 * and leave the watcher active.  If waitpid says the pid is not our child
 * (someone else reaped it, or it never was), its watchers stop and get
 * STL_CHILD | STL_ERROR with rstatus 0.
 */
#include "loop_int.h"

#include <sys/wait.h>

int stl_child_init(stl_child *w, stl_cb cb, pid_t pid, int trace)
{
    stl__watcher_init(&w->w, cb);
    w->pid = pid > 0 ? pid : 0;
    w->trace = trace ? 1 : 0;
    w->rpid = 0;
    w->rstatus = 0;
    return pid > 0 ? 0 : -EINVAL;
}

int stl_child_start(stl_loop *loop, stl_child *w)
{
    if (w->w.active)
        return 0;
    if (w->pid <= 0)
        return -EINVAL;
    int rc = stl__sig_acquire(loop, SIGCHLD);
    if (rc)
        return rc;
    stl__list_append(&loop->children, &w->w, STL__LINK);
    stl__activate(loop, &w->w);
    stl__sig_raise(loop, SIGCHLD);
    return 0;
}

void stl_child_stop(stl_loop *loop, stl_child *w)
{
    stl_clear_pending(loop, &w->w);
    if (!w->w.active)
        return;
    stl__list_remove(&loop->children, &w->w, STL__LINK);
    stl__deactivate(loop, &w->w);
    stl__sig_release(loop, SIGCHLD);
}

/* Marks every watcher of pid that wants this status (stops only with trace). */
static void stl__child_mark(stl_loop *loop, pid_t pid, int status, int err)
{
    int change = !err && (WIFSTOPPED(status) || WIFCONTINUED(status));
    for (stl_watcher *x = loop->children.head; x; x = x->link.next) {
        stl_child *c = (stl_child *)x;
        if (c->pid != pid || (change && !c->trace))
            continue;
        c->rpid = pid;
        c->rstatus = err ? 0 : status;
        c->w.flags |= STL__W_HIT | (err ? STL__W_CHILDERR : 0);
    }
}

/* waitpid for one pid, without blocking; EINTR retried. */
static pid_t stl__child_wait(const stl_child *c, int *status)
{
    int options = WNOHANG | (c->trace ? (WUNTRACED | WCONTINUED) : 0);
    pid_t r;
    do
        r = waitpid(c->pid, status, options);
    while (r < 0 && errno == EINTR);
    return r;
}

/*
 * From the SIGCHLD dispatch: ask each watched pid once (pass 1, marking
 * every watcher of a pid that changed), then deliver (pass 2), stopping the
 * watchers of pids that are gone.
 */
void stl__children_reap(stl_loop *loop)
{
    for (stl_watcher *x = loop->children.head; x; x = x->link.next) {
        stl_child *c = (stl_child *)x;
        int status = 0;
        if (c->w.flags & STL__W_HIT)
            continue;
        pid_t r = stl__child_wait(c, &status);
        if (r == c->pid)
            stl__child_mark(loop, c->pid, status, 0);
        else if (r < 0 && errno == ECHILD)
            stl__child_mark(loop, c->pid, 0, 1);
    }
    stl_watcher *x = loop->children.head;
    while (x) {
        stl_watcher *next = x->link.next;
        stl_child *c = (stl_child *)x;
        if (c->w.flags & STL__W_HIT) {
            int err = c->w.flags & STL__W_CHILDERR;
            c->w.flags &= ~(STL__W_HIT | STL__W_CHILDERR);
            if (err || WIFEXITED(c->rstatus) || WIFSIGNALED(c->rstatus))
                stl_child_stop(loop, c);
            stl_feed_event(loop, &c->w, STL_CHILD | (err ? STL_ERROR : 0));
        }
        x = next;
    }
}
