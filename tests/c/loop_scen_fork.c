/*
 * loop_scen_fork.c -- scenarios across processes: child watchers (status,
 * never stealing, early exits, strangers, tracing) and fork (the child keeps
 * working, the parent is undisturbed, signals reach the child, announce and
 * pidcheck, forks while signal handlers run in other threads).
 */
#define _GNU_SOURCE 1
#include "loop_tests.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#ifdef __linux__
#include <sys/syscall.h>
#endif
#include <sys/wait.h>
#include <unistd.h>

#define TAG(x, t) ((x).w.data = (void *)(intptr_t)(t))

static int wait_status(pid_t pid)
{
    int status = -1;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    return status;
}

/* ---- child processes ---- */

static pid_t spawn_exit(int code, int delay_ms)
{
    pid_t pid = fork();
    if (pid == 0) {
        if (delay_ms)
            tl_sleep_ms(delay_ms);
        _exit(code);
    }
    return pid;
}

/* A child's exit status arrives; the watcher stops itself. */
int tl_child_exit_status(unsigned backend)
{
    stl_loop *loop = tl_loop(backend);
    stl_child c;
    TL_CHECK(stl_child_init(&c, tl_record, 0, 0) == -EINVAL);
    TL_CHECK(stl_child_start(loop, &c) == -EINVAL);
    pid_t pid = spawn_exit(7, 20);
    TL_CHECK(pid > 0);
    TL_CHECK(stl_child_init(&c, tl_record, pid, 0) == 0); TAG(c, 'c');
    TL_CHECK(stl_child_start(loop, &c) == 0);
    TL_CHECK(stl_loop_run(loop, STL_RUN_DEFAULT) == 0);
    TL_CHECK(tl_nlog == 1 && tl_log[0].revents == STL_CHILD);
    TL_CHECK(c.rpid == pid && WIFEXITED(c.rstatus) && WEXITSTATUS(c.rstatus) == 7);
    TL_CHECK(!c.w.active);
    stl_loop_free(loop);
    return 0;
}

/* Only watched pids are reaped: an unwatched child stays for its owner. */
int tl_child_only_watched_reaped(unsigned backend)
{
    stl_loop *loop = tl_loop(backend);
    stl_child a, a2;
    pid_t pa = spawn_exit(1, 30), pb = spawn_exit(2, 0);
    TL_CHECK(pa > 0 && pb > 0);
    stl_child_init(&a, tl_record, pa, 0), TAG(a, 'a');
    stl_child_init(&a2, tl_record, pa, 0), TAG(a2, 'A');
    stl_child_start(loop, &a);
    stl_child_start(loop, &a2);
    TL_CHECK(stl_loop_run(loop, STL_RUN_DEFAULT) == 0);
    static const long both[] = {'a', 'A'};
    TL_CHECK(tl_log_is(both, 2));
    TL_CHECK(WEXITSTATUS(a.rstatus) == 1 && WEXITSTATUS(a2.rstatus) == 1);
    int status;
    TL_CHECK(waitpid(pb, &status, 0) == pb && WEXITSTATUS(status) == 2);
    stl_loop_free(loop);
    return 0;
}

/* A child that exited before its watcher started is still reported. */
int tl_child_exited_before_start(unsigned backend)
{
    stl_loop *loop = tl_loop(backend);
    stl_child c;
    pid_t pid = spawn_exit(3, 0);
    siginfo_t info;
    TL_CHECK(waitid(P_PID, (id_t)pid, &info, WEXITED | WNOWAIT) == 0); /* a zombie now */
    stl_child_init(&c, tl_record, pid, 0), TAG(c, 'c');
    stl_child_start(loop, &c);
    TL_CHECK(stl_loop_run(loop, STL_RUN_DEFAULT) == 0);
    TL_CHECK(tl_nlog == 1 && WEXITSTATUS(c.rstatus) == 3);
    stl_loop_free(loop);
    return 0;
}

/* A pid that is not our child: STL_ERROR, and the watcher stops. */
int tl_child_not_ours(unsigned backend)
{
    stl_loop *loop = tl_loop(backend);
    stl_child c;
    stl_child_init(&c, tl_record, getppid(), 0), TAG(c, 'c');
    stl_child_start(loop, &c);
    TL_CHECK(stl_loop_run(loop, STL_RUN_DEFAULT) == 0);
    TL_CHECK(tl_nlog == 1 && tl_log[0].revents == (STL_CHILD | STL_ERROR));
    TL_CHECK(!c.w.active && c.rstatus == 0);
    stl_loop_free(loop);
    return 0;
}

static void trace_cb(stl_loop *loop, stl_watcher *w, int revents)
{
    stl_child *c = (stl_child *)w;
    tl_record(loop, w, revents);
    tl_log[tl_nlog - 1].tag = c->rstatus;
    if (WIFSTOPPED(c->rstatus))
        kill(c->pid, SIGCONT);
}

/* With trace, a stop (and the continue) are reported and leave the watcher
 * active; the exit ends it. */
int tl_child_trace(unsigned backend)
{
    stl_loop *loop = tl_loop(backend);
    stl_child c;
    pid_t pid = fork();
    if (pid == 0) {
        raise(SIGSTOP);
        _exit(5);
    }
    TL_CHECK(pid > 0);
    stl_child_init(&c, trace_cb, pid, 1);
    stl_child_start(loop, &c);
    TL_CHECK(stl_loop_run(loop, STL_RUN_DEFAULT) == 0);
    TL_CHECK(tl_nlog >= 2 && tl_nlog <= 3);
    TL_CHECK(WIFSTOPPED(tl_log[0].tag));
    TL_CHECK(WIFEXITED(tl_log[tl_nlog - 1].tag) && WEXITSTATUS(tl_log[tl_nlog - 1].tag) == 5);
    if (tl_nlog == 3)
        TL_CHECK(WIFCONTINUED(tl_log[1].tag));
    stl_loop_free(loop);
    return 0;
}

/* ---- fork ---- */

static int fk_forks, fk_prepares_before_fork;
static int fk_prepares;
static void fk_fork_cb(stl_loop *loop, stl_watcher *w, int revents)
{
    (void)loop, (void)w, (void)revents;
    fk_forks++;
    fk_prepares_before_fork = fk_prepares;
}

static void fk_prepare_cb(stl_loop *loop, stl_watcher *w, int revents)
{
    (void)loop, (void)w, (void)revents;
    fk_prepares++;
}

/* In the child: fork watchers first, then timers and io (fds created and
 * watched in the parent, and new ones) keep working.  Exit code = check. */
static int fk_child(stl_loop *loop, int sv[2], stl_io *r, stl_timer *t)
{
    int sv2[2];
    stl_io n;
    fk_prepares = 0;
    if (write(sv[1], "c", 1) != 1)
        return 10;
    stl_timer_start(loop, t);
    stl_loop_run(loop, STL_RUN_ONCE);
    if (fk_forks != 1 || fk_prepares_before_fork != 0)
        return 11;
    if (tl_log_count('r') < 1)
        return 12;
    stl_io_stop(loop, r);
    for (int k = 0; k < 100 && tl_log_count('t') < 1; k++)
        stl_loop_run(loop, STL_RUN_ONCE);
    if (tl_log_count('t') < 1)
        return 13;
    if (tl_socketpair(sv2))
        return 14;
    stl_io_init(&n, tl_record, sv2[0], STL_READ), n.w.data = (void *)'n';
    stl_io_start(loop, &n);
    if (write(sv2[1], "x", 1) != 1)
        return 15;
    stl_loop_run(loop, STL_RUN_ONCE);
    if (tl_log_count('n') != 1)
        return 16;
    stl_loop_run(loop, STL_RUN_NOWAIT);
    if (fk_forks != 1)
        return 17;
    stl_loop_free(loop);
    return 0;
}

int tl_fork_child_keeps_working(unsigned backend)
{
    stl_loop *loop = tl_loop(backend);
    int sv[2];
    stl_io r;
    stl_timer t;
    stl_fork f;
    stl_prepare p;
    TL_CHECK(tl_socketpair(sv) == 0);
    stl_io_init(&r, tl_record, sv[0], STL_READ), TAG(r, 'r');
    stl_timer_init(&t, tl_record, 0.005, 0), TAG(t, 't');
    stl_fork_init(&f, fk_fork_cb);
    stl_prepare_init(&p, fk_prepare_cb);
    stl_io_start(loop, &r);
    stl_fork_start(loop, &f);
    stl_prepare_start(loop, &p);
    stl_timer_start(loop, &t);
    TL_CHECK(stl_loop_run(loop, STL_RUN_ONCE) == 1);
    stl_loop_run(loop, STL_RUN_NOWAIT);
    TL_CHECK(fk_forks == 0);
    tl_log_reset();
    pid_t pid = fork();
    TL_CHECK(pid >= 0);
    if (pid == 0)
        _exit(fk_child(loop, sv, &r, &t));
    int status = wait_status(pid);
    TL_CHECK(WIFEXITED(status));
    tl_set_value(WEXITSTATUS(status));
    TL_CHECK(WEXITSTATUS(status) == 0);
    /* the parent never ran its fork watcher */
    stl_loop_run(loop, STL_RUN_NOWAIT);
    TL_CHECK(fk_forks == 0);
    stl_loop_free(loop);
    close(sv[0]);
    close(sv[1]);
    return 0;
}

/* The child rebuilds and edits its own kernel set, never the parent's: the
 * parent's watcher still sees the data the child wrote after it stopped
 * and deleted its copy of the watch. */
int tl_fork_parent_unaffected(unsigned backend)
{
    stl_loop *loop = tl_loop(backend);
    int sv[2];
    stl_io r;
    TL_CHECK(tl_socketpair(sv) == 0);
    stl_io_init(&r, tl_record, sv[0], STL_READ), TAG(r, 'r');
    stl_io_start(loop, &r);
    TL_CHECK(stl_loop_run(loop, STL_RUN_NOWAIT) == 1);
    pid_t pid = fork();
    TL_CHECK(pid >= 0);
    if (pid == 0) {
        stl_loop_run(loop, STL_RUN_NOWAIT);  /* rebuild, re-add sv[0] */
        stl_io_stop(loop, &r);
        if (write(sv[1], "x", 1) != 1)
            _exit(20);
        stl_loop_run(loop, STL_RUN_NOWAIT);  /* unwanted event: narrow/DEL */
        stl_loop_run(loop, STL_RUN_NOWAIT);
        stl_loop_free(loop);
        _exit(0);
    }
    int status = wait_status(pid);
    TL_CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    TL_CHECK(tl_nlog == 0);
    TL_CHECK(stl_loop_run(loop, STL_RUN_ONCE) == 1);
    TL_CHECK(tl_nlog == 1 && tl_log[0].tag == 'r');
    stl_loop_free(loop);
    close(sv[0]);
    close(sv[1]);
    return 0;
}

static void fs_child_cb(stl_loop *loop, stl_watcher *w, int revents)
{
    (void)revents;
    tl_record(loop, w, revents);
    stl_signal_stop(loop, (stl_signal *)w);
}

/* A signal watcher started in the parent works in the child (its loop made
 * a new wake-up fd); the parent's loop sees nothing of the child's signal. */
int tl_fork_signal_to_child(unsigned backend)
{
    stl_loop *loop = tl_loop(backend);
    stl_signal s;
    int ready[2];
    TL_CHECK(pipe(ready) == 0);
    stl_signal_init(&s, fs_child_cb, SIGUSR1), TAG(s, 's');
    TL_CHECK(stl_signal_start(loop, &s) == 0);
    stl_loop_run(loop, STL_RUN_NOWAIT);
    pid_t pid = fork();
    TL_CHECK(pid >= 0);
    if (pid == 0) {
        stl_loop_run(loop, STL_RUN_NOWAIT); /* the rebuild */
        if (write(ready[1], "r", 1) != 1)
            _exit(30);
        if (stl_loop_run(loop, STL_RUN_DEFAULT) != 0)
            _exit(31);
        stl_loop_free(loop);
        _exit(tl_nlog == 1 && tl_log[0].revents == STL_SIGNAL ? 0 : 32);
    }
    char c;
    TL_CHECK(read(ready[0], &c, 1) == 1);
    kill(pid, SIGUSR1);
    int status = wait_status(pid);
    TL_CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    TL_CHECK(stl_loop_run(loop, STL_RUN_NOWAIT) == 1);
    TL_CHECK(tl_nlog == 0);
    stl_loop_free(loop);
    close(ready[0]);
    close(ready[1]);
    return 0;
}

static int fa_forks;
static void fa_cb(stl_loop *loop, stl_watcher *w, int revents)
{
    (void)loop, (void)w, (void)revents;
    fa_forks++;
}

/* stl_loop_fork in one process: fork watchers once, kernel state rebuilt,
 * io still works.  A raw clone (no pthread_atfork) is seen only with
 * STL_LOOP_PIDCHECK. */
int tl_fork_announced_and_pidcheck(unsigned backend)
{
    stl_loop *loop = tl_loop(backend);
    int sv[2];
    stl_io r;
    stl_fork f;
    TL_CHECK(tl_socketpair(sv) == 0);
    stl_io_init(&r, tl_record, sv[0], STL_READ), TAG(r, 'r');
    stl_fork_init(&f, fa_cb);
    stl_io_start(loop, &r);
    stl_fork_start(loop, &f);
    stl_loop_run(loop, STL_RUN_NOWAIT);
    stl_loop_fork(loop);
    TL_CHECK(write(sv[1], "x", 1) == 1);
    stl_loop_run(loop, STL_RUN_NOWAIT);
    TL_CHECK(fa_forks == 1 && tl_log_count('r') == 1);
    stl_loop_run(loop, STL_RUN_NOWAIT);
    TL_CHECK(fa_forks == 1 && tl_log_count('r') == 2);
    stl_loop_free(loop);

#ifdef __linux__
    stl_loop *plain = tl_loop(backend), *checked = tl_loop(backend | STL_LOOP_PIDCHECK);
    stl_fork f2;
    stl_fork_init(&f2, fa_cb);
    stl_fork_start(plain, &f);
    stl_fork_start(checked, &f2);
    fa_forks = 0;
    long pid = syscall(SYS_clone, (unsigned long)SIGCHLD, 0L, 0L, 0L, 0L);
    TL_CHECK(pid >= 0);
    if (pid == 0) {
        stl_loop_run(plain, STL_RUN_NOWAIT);
        int a = fa_forks;
        stl_loop_run(checked, STL_RUN_NOWAIT);
        stl_loop_free(plain);
        stl_loop_free(checked);
        syscall(SYS_exit_group, a == 0 && fa_forks == 1 ? 0 : 40 + a * 2 + fa_forks);
    }
    int status = wait_status((pid_t)pid);
    TL_CHECK(WIFEXITED(status));
    tl_set_value(WEXITSTATUS(status));
    TL_CHECK(WEXITSTATUS(status) == 0);
    stl_loop_free(plain);
    stl_loop_free(checked);
#endif
    close(sv[0]);
    close(sv[1]);
    return 0;
}

static volatile int ff_stop;
static void *ff_signaller(void *arg)
{
    (void)arg;
    while (!ff_stop)
        kill(getpid(), SIGUSR1);
    return NULL;
}

/*
 * Forks while another thread is inside the signal handler as often as it
 * can be: a child must never inherit "a writer is busy" (its rebuild waits
 * for writers) or a locked signal table.  Each child rebuilds, stops and
 * starts its signal watcher, frees the loop, and exits 0.
 */
int tl_fork_while_signals_fly(unsigned backend)
{
    stl_loop *loop = tl_loop(backend);
    stl_signal s;
    pthread_t th;
    sigset_t set;
    stl_signal_init(&s, tl_record, SIGUSR1);
    TL_CHECK(stl_signal_start(loop, &s) == 0);
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    TL_CHECK(pthread_create(&th, NULL, ff_signaller, NULL) == 0);
    pthread_sigmask(SIG_BLOCK, &set, NULL); /* the handler runs in the other thread */
    int forks = tl_scale(40);
    for (int k = 0; k < forks; k++) {
        stl_loop_run(loop, STL_RUN_NOWAIT);
        pid_t pid = fork();
        TL_CHECK(pid >= 0);
        if (pid == 0) {
            stl_loop_run(loop, STL_RUN_NOWAIT);
            stl_signal_stop(loop, &s);
            int rc = stl_signal_start(loop, &s);
            stl_loop_run(loop, STL_RUN_NOWAIT);
            stl_loop_free(loop);
            _exit(rc == 0 ? 0 : 50);
        }
        int status = wait_status(pid);
        TL_CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }
    ff_stop = 1;
    pthread_join(th, NULL);
    stl_signal_stop(loop, &s);
    pthread_sigmask(SIG_UNBLOCK, &set, NULL);
    stl_loop_free(loop);
    return 0;
}
